import { describe, expect, it } from 'vitest'
import { bytes, creditLine, credits, niceMax, when } from './format'

describe('creditLine', () => {
  it('shows the hold while the job runs', () => {
    expect(creditLine({ credits_held: 4, credits_settled: null }, false)).toBe('4 credits held')
  })
  it('shows the charge, and what came back when fewer images were made', () => {
    expect(creditLine({ credits_held: 4, credits_settled: 4 }, true)).toBe('Charged 4 credits.')
    expect(creditLine({ credits_held: 4, credits_settled: 1 }, true)).toBe('Charged 1 credit, 3 credits returned.')
  })
  it('says a canceled or failed job cost nothing', () => {
    expect(creditLine({ credits_held: 5, credits_settled: null }, true)).toBe('Nothing charged: 5 credits returned.')
    expect(creditLine({ credits_held: 1, credits_settled: 0 }, true)).toBe('Nothing charged: 1 credit returned.')
  })
})

describe('when', () => {
  const now = Date.parse('2030-01-10T12:00:00Z')
  it('says how long ago, then the date', () => {
    expect(when('2030-01-10T11:59:50Z', now)).toBe('just now')
    expect(when('2030-01-10T11:50:00Z', now)).toBe('10 min ago')
    expect(when('2030-01-10T09:00:00Z', now)).toBe('3 h ago')
    expect(when('2030-01-08T12:00:00Z', now)).toBe('2 d ago')
    expect(when('2029-12-01T12:00:00Z', now)).toMatch(/2029/)
  })
})

describe('bytes', () => {
  it('picks a unit', () => {
    expect(bytes(512)).toBe('512 B')
    expect(bytes(2048)).toBe('2 KB')
    expect(bytes(3 * 2 ** 20)).toBe('3 MB')
    expect(bytes(3.04e6)).toBe('2.9 MB')
  })
  it('says a plan’s storage as the plan card does (GB of 2³⁰ bytes)', () => {
    expect(bytes(50 * 2 ** 30)).toBe('50 GB')
    expect(bytes(10 * 2 ** 30)).toBe('10 GB')
    expect(bytes(1.5 * 2 ** 30)).toBe('1.5 GB')
  })
})

describe('plural', () => {
  it('writes thousands with a separator', () => {
    expect(credits(1500)).toBe('1,500 credits')
    expect(credits(1)).toBe('1 credit')
  })
})

describe('niceMax', () => {
  it('rounds up to an even maximum, so the middle gridline is a whole number', () => {
    for (const [v, want] of [[2, 2], [3, 4], [5, 6], [7, 8], [9, 10], [15, 20], [45, 60], [100, 100], [101, 200]]) {
      expect(niceMax(v)).toBe(want)
      expect(Number.isInteger(niceMax(v) / 2)).toBe(true)
    }
  })
})
