import { describe, expect, it } from 'vitest'
import { SubmissionKeys, settles } from './keys'

function keys() {
  let n = 0
  return new SubmissionKeys(() => `k${++n}`)
}

describe('SubmissionKeys', () => {
  const body = { prompt: 'a fox', model: 'sd-1.5' }

  it('gives a double click (the same body, no answer yet) one key', () => {
    const k = keys()
    expect(k.keyFor(body)).toBe('k1')
    expect(k.keyFor({ ...body })).toBe('k1')
  })

  it('gives the next submission a new key once a job was made', () => {
    const k = keys()
    const first = k.keyFor(body)
    k.answered(first)
    expect(k.keyFor(body)).toBe('k2')
  })

  it('keeps the key while the answer is unknown (a retry after a 5xx or a network error)', () => {
    const k = keys()
    const first = k.keyFor(body)
    expect(settles(503)).toBe(false)
    expect(settles(0)).toBe(false)
    expect(k.keyFor(body)).toBe(first)
  })

  it('gives a new key after a refusal (402, 429), as the API answered', () => {
    expect(settles(402)).toBe(true)
    expect(settles(429)).toBe(true)
    expect(settles(202)).toBe(true)
  })

  it('gives a changed body a new key', () => {
    const k = keys()
    expect(k.keyFor(body)).toBe('k1')
    expect(k.keyFor({ ...body, prompt: 'a wolf' })).toBe('k2')
  })

  it('ignores a late answer for an older key', () => {
    const k = keys()
    const first = k.keyFor(body)
    const second = k.keyFor({ ...body, seed: 1 })
    k.answered(first)
    expect(k.keyFor({ ...body, seed: 1 })).toBe(second)
  })
})
