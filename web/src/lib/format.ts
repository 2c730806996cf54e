// Small formatting helpers shared by the pages.

export const plural = (n: number, one: string, many = `${one}s`) => `${count(n)} ${n === 1 ? one : many}`

// count writes a number with thousands separators (1,500), as every page does.
export const count = (n: number) => n.toLocaleString('en-US')

export const credits = (n: number) => plural(n, 'credit')

// when says how long ago a time was, in words ("3 min ago"), and the date
// past a week.
export function when(iso: string, now = Date.now()): string {
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return ''
  const s = Math.round((now - t) / 1000)
  if (s < 45) return 'just now'
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86400) return `${Math.round(s / 3600)} h ago`
  if (s < 7 * 86400) return `${Math.round(s / 86400)} d ago`
  return new Date(t).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' })
}

// bytes writes a size in the units the plans use: a plan's "50 GB" of
// storage is 50 × 2³⁰ bytes, so a GB here is 2³⁰ bytes too (and a MB 2²⁰),
// and a quota reads as the plan card says it.
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 2 ** 20) return `${Math.round(n / 1024)} KB`
  const tenths = (v: number) => v.toFixed(1).replace(/\.0$/, '')
  if (n < 2 ** 30) return `${tenths(n / 2 ** 20)} MB`
  return `${tenths(n / 2 ** 30)} GB`
}

// creditLine says what a job holds (while it runs) or cost (once ended):
// the settled charge and what came back of the hold.
export function creditLine(g: { credits_held: number; credits_settled?: number | null }, ended: boolean): string {
  if (!ended) return `${credits(g.credits_held)} held`
  const settled = g.credits_settled ?? 0
  if (settled === 0) return `Nothing charged: ${credits(g.credits_held)} returned.`
  const back = g.credits_held - settled
  return `Charged ${credits(settled)}${back > 0 ? `, ${credits(back)} returned` : ''}.`
}

// niceMax rounds a chart axis's maximum up to 2, 4, 6, 8 or 10 times a
// power of ten: always even, so the middle gridline's label is exact.
export function niceMax(v: number): number {
  if (v <= 0) return 2
  const p = 10 ** Math.floor(Math.log10(v))
  // p itself is even from 10 on.
  return [p >= 10 ? 1 : 2, 2, 4, 6, 8, 10].map((m) => m * p).find((m) => m >= v) ?? 10 * p
}

// planName is a plan's name as the pages show it: "Pro" for "pro".
export const planName = (slug: string) => slug.charAt(0).toUpperCase() + slug.slice(1)
