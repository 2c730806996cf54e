import { describe, expect, it } from 'vitest'
import { nextPageParam, unique } from './pages'

describe('nextPageParam', () => {
  it('stops after the last page', () => {
    expect(nextPageParam({ next_before: null }, undefined)).toBeUndefined()
  })

  it('overlaps the last instant by a millisecond, so a batch split across pages is not skipped', () => {
    expect(nextPageParam({ next_before: '2030-01-01T00:00:00.123456Z' }, undefined)).toBe('2030-01-01T00:00:00.124Z')
  })

  it('falls back to the exact cursor when the overlapping page ended at the same instant, so paging moves on', () => {
    const exact = '2030-01-01T00:00:00.123456Z'
    const overlap = '2030-01-01T00:00:00.124Z'
    expect(nextPageParam({ next_before: exact }, overlap)).toBe(exact)
    // The page asked with the exact cursor holds older items only.
    expect(nextPageParam({ next_before: '2030-01-01T00:00:00.100000Z' }, exact)).toBe('2030-01-01T00:00:00.101Z')
  })
})

describe('unique', () => {
  it('keeps the first of each name across pages, in order', () => {
    const pages = [[{ n: 'a' }, { n: 'b' }], [{ n: 'b' }, { n: 'c' }]]
    expect(unique(pages, (x) => x.n).map((x) => x.n)).toEqual(['a', 'b', 'c'])
  })
})
