import { describe, expect, it } from 'vitest'
import { ProblemError, retryAfterSeconds } from '../api/client'
import { describeProblem, UserError } from './problems'

const problem = (status: number, slug: string, extra: Record<string, unknown> = {}, retryAfter?: number) =>
  new ProblemError({ type: `https://easel.dev/problems/${slug}`, title: slug, status, detail: `detail of ${slug}`, ...extra }, status, retryAfter)

describe('describeProblem', () => {
  it("the app's own checks are said as they are, not as a failure", () => {
    const v = describeProblem(new UserError('big.png is 11.0 MB; a picture may be at most 10 MB.'))
    expect(v).toEqual({ title: 'big.png is 11.0 MB; a picture may be at most 10 MB.' })
    expect(describeProblem(new Error('boom')).title).toBe('Something went wrong.')
  })
  it('402: says how many credits are missing and links to getting more', () => {
    const v = describeProblem(problem(402, 'insufficient-credits', { credits_needed: 12, credits_available: 3 }))
    expect(v.title).toBe('Not enough credits: this needs 12 credits and you have 3 credits.')
    expect(v.action).toEqual({ to: '/account', label: 'Get credits' })
  })

  it('429 rate-limited: says when to retry, from Retry-After', () => {
    const v = describeProblem(problem(429, 'rate-limited', { limit: 10, retry_after: 9 }, 12))
    expect(v.retryAfter).toBe(12)
    // The page counts down to the retry: the sentence names no time.
    expect(v.title).toBe('Too many requests.')
    expect(v.detail).toBe('Your plan allows 10 of these a minute.')
  })

  it('429 rate-limited without the header: uses the problem’s retry_after', () => {
    expect(describeProblem(problem(429, 'rate-limited', { retry_after: 7 })).retryAfter).toBe(7)
  })

  it('429 concurrency-limit: names the plan’s limit and points at the jobs', () => {
    const v = describeProblem(problem(429, 'concurrency-limit', { limit: 1, active: 1 }, 5))
    expect(v.title).toBe('Your plan runs 1 job at a time, and 1 is running.')
    expect(v.action?.to).toBe('/jobs')
    expect(v.retryAfter).toBe(5)
    // One countdown: the page's, not a second time in the words.
    expect(v.detail).toBe('Wait for one to finish or cancel one; a bigger plan runs more at once.')
  })

  it('does not repeat the API’s detail where the sentence already says it', () => {
    const suspended = describeProblem(problem(403, 'account-suspended', { detail: 'this account is suspended' }))
    expect(suspended.title).toBe('Your account is suspended.')
    expect(suspended.detail).not.toMatch(/this account is suspended/)
    expect(suspended.detail).toMatch(/contact Easel support/)
    expect(describeProblem(problem(404, 'not-found', { detail: 'image not found' }))).toEqual({ title: 'Not found: it may have been deleted.' })
    // A detail that adds something stays.
    expect(describeProblem(problem(402, 'payment-method-refused', { detail: 'your card was declined' })).detail).toBe('your card was declined')
  })

  it('403 plan-forbids: says what the plan does not include, with the API’s detail', () => {
    const v = describeProblem(problem(403, 'plan-forbids', { field: 'graph', plan: 'free' }))
    expect(v.title).toBe('Your plan (free) does not include “graph”.')
    expect(v.detail).toBe('detail of plan-forbids')
    expect(v.action?.to).toBe('/account')
  })

  it('403 storage-full: shows the numbers and points at the gallery', () => {
    const v = describeProblem(problem(403, 'storage-full', { used_bytes: 2 ** 30, quota_bytes: 50 * 2 ** 30 }))
    expect(v.title).toBe('Your storage is full: 1 GB of 50 GB used.')
    expect(v.action?.to).toBe('/gallery')
  })

  it('400: lists the invalid fields', () => {
    const errors = [{ field: 'steps', message: 'at most 150' }]
    const v = describeProblem(problem(400, 'invalid-request', { errors }))
    expect(v.fields).toEqual(errors)
    expect(v.detail).toBeUndefined()
  })

  it('a network failure asks to check the connection', () => {
    expect(describeProblem(new TypeError('Failed to fetch')).title).toBe('Easel could not be reached.')
  })

  it('an unknown problem shows its title and detail', () => {
    const v = describeProblem(problem(409, 'something-new'))
    expect(v.title).toBe('something-new.')
    expect(v.detail).toBe('detail of something-new')
  })

  it('a 5xx says to try again', () => {
    expect(describeProblem(problem(500, 'internal')).title).toBe('Easel had a problem: try again.')
  })
})

describe('retryAfterSeconds', () => {
  it('reads seconds and HTTP dates', () => {
    expect(retryAfterSeconds('30')).toBe(30)
    expect(retryAfterSeconds(null)).toBeUndefined()
    expect(retryAfterSeconds('soon')).toBeUndefined()
    const now = Date.parse('2030-01-01T00:00:00Z')
    expect(retryAfterSeconds('Tue, 01 Jan 2030 00:00:10 GMT', now)).toBe(10)
  })
})
