// Paging through the API's lists (GET /v1/images, /v1/generations): each
// page names `next_before`, the created_at of its last item, for the next
// request's `before`. Items that share that instant (the images of one
// batch are stored in one transaction, so they do) would be skipped by a
// strict `before`, so the next page starts a millisecond later and the
// repeats are dropped by name. Should a page bring nothing new (more items
// in one instant than a page holds), the next uses the exact cursor.

// nextPageParam is the `before` for the page after one that was asked for
// with lastParam; undefined after the last page.
export function nextPageParam(last: { next_before?: string | null }, lastParam: string | undefined): string | undefined {
  if (!last.next_before) return undefined
  const t = Date.parse(last.next_before)
  if (Number.isNaN(t)) return last.next_before
  const overlap = new Date(t + 1).toISOString()
  return overlap !== lastParam ? overlap : last.next_before
}

// unique flattens pages, keeping the first of each key.
export function unique<T>(pages: T[][], key: (t: T) => string): T[] {
  const seen = new Set<string>()
  const out: T[] = []
  for (const page of pages) {
    for (const item of page) {
      const k = key(item)
      if (seen.has(k)) continue
      seen.add(k)
      out.push(item)
    }
  }
  return out
}
