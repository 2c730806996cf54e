// Size presets for the Generate page, within what the caller's plan allows
// for a model family (GET /v1/models: limits and defaults).

export interface SizeLimits {
  min_side: number
  max_side: number
  // The largest square whose render fits the tier's GPUs; 0 when none does.
  // A render's memory grows with its area, so any shape of at most this
  // area fits too.
  max_square_side: number
}

export interface Size {
  width: number
  height: number
}

export interface Preset extends Size {
  id: string
  label: string
}

const ASPECTS = [
  { id: 'square', label: 'Square', w: 1, h: 1 },
  { id: 'portrait', label: 'Portrait', w: 3, h: 4 },
  { id: 'landscape', label: 'Landscape', w: 4, h: 3 },
  { id: 'tall', label: 'Tall', w: 9, h: 16 },
  { id: 'wide', label: 'Wide', w: 16, h: 9 },
]

const floor8 = (n: number) => Math.floor(n / 8) * 8

// shape is the largest size of aspect w:h whose area is at most side²,
// each side a multiple of 8 and at most maxSide.
function shape(side: number, w: number, h: number, maxSide: number): Size {
  const r = Math.sqrt(w / h)
  let width = floor8(side * r)
  let height = floor8(side / r)
  const over = Math.max(width, height) / floor8(maxSide)
  if (over > 1) {
    width = floor8(width / over)
    height = floor8(height / over)
  }
  return { width, height }
}

// sizePresets lists the presets a model family offers on the plan: each
// aspect at the family's native area (as large as the GPUs allow, if they
// allow less), then, where the plan's GPUs fit a larger square, each
// aspect at that area too. A preset is never over the plan's largest side,
// never over the area that fits the GPUs and never under the smallest
// side; none are offered when nothing fits.
export function sizePresets(native: number, limits: SizeLimits): Preset[] {
  if (limits.max_square_side < limits.min_side) return []
  const base = floor8(Math.min(native, limits.max_square_side))
  const large = floor8(limits.max_square_side)
  const out: Preset[] = []
  const add = (side: number, suffix: string, idSuffix: string) => {
    for (const a of ASPECTS) {
      const s = shape(side, a.w, a.h, limits.max_side)
      if (s.width < limits.min_side || s.height < limits.min_side) continue
      if (out.some((p) => p.width === s.width && p.height === s.height)) continue
      out.push({ id: a.id + idSuffix, label: a.label + suffix, ...s })
    }
  }
  add(base, '', '')
  if (large > base) add(large, ' (large)', '-large')
  return out
}

// fitSize scales a picture's size (an init image) down, keeping its shape,
// until it is within the limits: both sides multiples of 8, at most the
// plan's largest side, at most the area that fits the GPUs. Undefined when
// nothing fits or the picture is smaller than the smallest side.
export function fitSize(width: number, height: number, limits: SizeLimits): Size | undefined {
  if (width <= 0 || height <= 0 || limits.max_square_side < limits.min_side) return undefined
  const scale = Math.min(1, limits.max_side / Math.max(width, height), limits.max_square_side / Math.sqrt(width * height))
  const s = { width: floor8(width * scale), height: floor8(height * scale) }
  return s.width >= limits.min_side && s.height >= limits.min_side ? s : undefined
}

// withinLimits says whether a size is one a request may ask for.
export function withinLimits(s: Size, limits: SizeLimits): boolean {
  const ok = (n: number) => n % 8 === 0 && n >= limits.min_side && n <= limits.max_side
  return ok(s.width) && ok(s.height) && s.width * s.height <= limits.max_square_side ** 2
}
