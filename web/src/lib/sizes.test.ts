import { describe, expect, it } from 'vitest'
import { fitSize, sizePresets, withinLimits, type SizeLimits } from './sizes'

// The plans' limits as GET /v1/models answers them (max_square_side from
// the tier's GPU memory).
const free15: SizeLimits = { min_side: 64, max_side: 1024, max_square_side: 1024 } // Free, T4, sd-1.5
const freeFlux: SizeLimits = { min_side: 64, max_side: 1024, max_square_side: 1024 }
const tight: SizeLimits = { min_side: 64, max_side: 2048, max_square_side: 720 } // a GPU that fits less than native
const none: SizeLimits = { min_side: 64, max_side: 1024, max_square_side: 0 }

describe('sizePresets', () => {
  it('offers every aspect at the native size, then larger where the plan allows', () => {
    const p = sizePresets(512, free15)
    expect(p[0]).toEqual({ id: 'square', label: 'Square', width: 512, height: 512 })
    expect(p.map((x) => x.id)).toEqual([
      'square', 'portrait', 'landscape', 'tall', 'wide',
      'square-large', 'portrait-large', 'landscape-large', 'tall-large', 'wide-large',
    ])
    expect(p.find((x) => x.id === 'square-large')).toMatchObject({ width: 1024, height: 1024 })
    expect(p.find((x) => x.id === 'portrait')).toMatchObject({ width: 440, height: 584 })
  })

  it('offers no large presets when the native size is already the most the plan allows', () => {
    expect(sizePresets(1024, freeFlux).every((x) => !x.id.endsWith('-large'))).toBe(true)
  })

  it('keeps every preset within the plan: multiples of 8, sides and area in bounds', () => {
    for (const [native, limits] of [[512, free15], [1024, freeFlux], [1024, tight], [1024, { min_side: 64, max_side: 1536, max_square_side: 1536 }]] as const) {
      const presets = sizePresets(native, limits)
      expect(presets.length).toBeGreaterThan(0)
      for (const p of presets) expect(withinLimits(p, limits), `${p.label} ${p.width}x${p.height}`).toBe(true)
    }
  })

  it('shrinks to what the GPUs fit when that is under the native size', () => {
    expect(sizePresets(1024, tight)[0]).toMatchObject({ width: 720, height: 720 })
  })

  it('clamps a long side to the plan’s largest side', () => {
    const p = sizePresets(1024, { min_side: 64, max_side: 1024, max_square_side: 1024 })
    const wide = p.find((x) => x.id === 'wide')!
    expect(wide.width).toBeLessThanOrEqual(1024)
    expect(wide.width / wide.height).toBeCloseTo(16 / 9, 1)
  })

  it('offers nothing when no size fits the GPUs', () => {
    expect(sizePresets(512, none)).toEqual([])
  })
})

describe('fitSize', () => {
  it('keeps a picture that fits, rounded down to multiples of 8', () => {
    expect(fitSize(1001, 603, free15)).toEqual({ width: 1000, height: 600 })
  })

  it('scales a picture down to the plan, keeping its shape', () => {
    const s = fitSize(4000, 3000, free15)!
    expect(withinLimits(s, free15)).toBe(true)
    expect(s.width / s.height).toBeCloseTo(4 / 3, 1)
    expect(s.width).toBe(1024)
  })

  it('scales by area when the GPUs fit less than the plan’s side', () => {
    const s = fitSize(2048, 2048, tight)!
    expect(s).toEqual({ width: 720, height: 720 })
  })

  it('refuses what cannot fit', () => {
    expect(fitSize(32, 32, free15)).toBeUndefined()
    expect(fitSize(600, 600, none)).toBeUndefined()
    expect(fitSize(0, 10, free15)).toBeUndefined()
  })
})
