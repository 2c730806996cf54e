import { ProblemError, type Problem } from '../api/client'
import { bytes, credits } from './format'

// A ProblemView is what a page shows for a failed request: a sentence
// saying what happened, the API's detail where it adds to the sentence,
// what to do next (a link), the invalid fields, and when a retry makes
// sense (the page counts down to it, so the sentences name no time).
export interface ProblemView {
  title: string
  detail?: string
  action?: { to: string; label: string }
  fields?: { field: string; message: string }[]
  // Seconds to wait before retrying (429, 503), when the answer said.
  retryAfter?: number
}

// slug is the last part of a problem's type URI.
export function slug(p: Partial<Problem>): string {
  return p.type?.split('/').pop() ?? ''
}


// SUSPENDED says what a suspension means and what to do about it.
export const SUSPENDED = 'Easel refuses every request of this account, its API keys too, until an administrator reactivates it. Your images and settings are kept. To ask why, or to have it reactivated, contact Easel support.'

// isSuspended says whether an error is the API's refusal of a suspended
// account (403 account-suspended), which every request of it gets.
export function isSuspended(error: unknown): boolean {
  return error instanceof ProblemError && slug(error.problem) === 'account-suspended'
}

// UserError is a check the app makes itself before asking the API (a file
// too large): its message is the whole story, said as it is.
export class UserError extends Error {}

// describeProblem maps an error (a ProblemError from the API, or a network
// failure) to what the person reading it needs: for money, where to get
// credits; for the plan, what it allows and where to change it; for rate
// limits, when to try again.
export function describeProblem(error: unknown): ProblemView {
  if (error instanceof UserError) return { title: error.message }
  if (!(error instanceof ProblemError)) {
    const msg = error instanceof Error ? error.message : String(error)
    if (error instanceof TypeError) {
      return { title: 'Easel could not be reached.', detail: 'Check your connection and try again.' }
    }
    return { title: 'Something went wrong.', detail: msg }
  }
  const p = error.problem
  const retryAfter = error.retryAfter ?? p.retry_after
  const detail = p.detail
  switch (slug(p)) {
    case 'insufficient-credits':
      return {
        title:
          p.credits_needed !== undefined && p.credits_available !== undefined
            ? `Not enough credits: this needs ${credits(p.credits_needed)} and you have ${credits(p.credits_available)}.`
            : 'Not enough credits.',
        detail: 'Buy credits or move to a plan with more every month, or make the request smaller.',
        action: { to: '/account', label: 'Get credits' },
      }
    case 'payment-method-refused':
      return { title: 'The payment was refused.', detail, action: { to: '/account', label: 'Update your card' } }
    case 'rate-limited':
      return {
        title: retryAfter ? 'Too many requests.' : 'Too many requests: try again shortly.',
        detail: p.limit ? `Your plan allows ${p.limit} of these a minute.` : detail,
        retryAfter,
      }
    case 'concurrency-limit':
      return {
        title:
          p.limit !== undefined
            ? `Your plan runs ${p.limit} ${p.limit === 1 ? 'job' : 'jobs'} at a time, and ${p.active ?? p.limit} ${p.active === 1 ? 'is' : 'are'} running.`
            : 'Too many jobs are running.',
        detail: 'Wait for one to finish or cancel one; a bigger plan runs more at once.',
        action: { to: '/jobs', label: 'See your jobs' },
        retryAfter,
      }
    case 'plan-forbids':
      return {
        title: `Your plan${p.plan ? ` (${p.plan})` : ''} does not include ${p.field ? `“${p.field}”` : 'this'}.`,
        detail,
        action: { to: '/account', label: 'See plans' },
      }
    case 'storage-full':
      return {
        title:
          p.used_bytes !== undefined && p.quota_bytes !== undefined
            ? `Your storage is full: ${bytes(p.used_bytes)} of ${bytes(p.quota_bytes)} used.`
            : 'Your storage is full.',
        detail: 'Delete images you no longer need, or move to a plan with more storage.',
        action: { to: '/gallery', label: 'Open the gallery' },
      }
    // The API's details of these say what the sentence says ("this
    // account is suspended", "image not found"): they are left out.
    case 'account-suspended':
      return { title: 'Your account is suspended.', detail: SUSPENDED }
    case 'unauthenticated':
      return { title: 'Your session has ended: sign in again.' }
    case 'invalid-request':
      return { title: 'Some settings need a change.', detail: p.errors?.length ? undefined : detail, fields: p.errors }
    case 'upload-too-large':
      return {
        title: `The picture is too large${p.max_bytes ? `: at most ${(p.max_bytes / 2 ** 20).toFixed(0)} MB` : ''}.`,
        detail: 'Choose a smaller file, or save it as JPEG or WebP.',
      }
    case 'unsupported-image-type':
      return { title: 'That file is not a picture Easel reads.', detail: `Use ${p.accepted?.length ? p.accepted.join(', ') : 'PNG, JPEG or WebP'}.` }
    case 'already-finished':
      return { title: 'The job had already finished.', detail }
    case 'idempotency-key-reused':
      return { title: 'This submission was already used for other settings.', detail: 'Submit again.' }
    case 'not-found':
      return { title: 'Not found: it may have been deleted.' }
    case 'unavailable':
    case 'admission-timeout':
      return {
        title: retryAfter ? 'Easel is busy.' : 'Easel is busy: try again shortly.',
        detail,
        retryAfter,
      }
  }
  if (error.status >= 500) return { title: 'Easel had a problem: try again.', detail, retryAfter }
  return { title: p.title ? p.title.replace(/\.?$/, '.') : `The request failed (HTTP ${error.status}).`, detail, retryAfter }
}
