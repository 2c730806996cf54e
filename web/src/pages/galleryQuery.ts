import { infiniteQueryOptions } from '@tanstack/react-query'
import { api, must } from '../api/client'

export const PAGE = 40

// imagesQuery lists the caller's images newest first, PAGE at a time;
// starred and job filter them. The Gallery reads it, and the app asks for
// its first page as soon as a load that lands on /gallery is signed in,
// beside /v1/me rather than after it.
export function imagesQuery(filter: { starred: boolean; job?: string }) {
  const { starred, job } = filter
  return infiniteQueryOptions({
    queryKey: ['images', 'list', { starred, job }],
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam, signal }) =>
      must(
        await api.GET('/v1/images', {
          params: { query: { limit: PAGE, before: pageParam, starred: starred || undefined, job } },
          signal,
        }),
      ),
    // next_before is a cursor: each item comes once, a batch split across pages too.
    getNextPageParam: (last) => last.next_before ?? undefined,
  })
}

// galleryFilter reads the Gallery's filter from its URL's query.
export function galleryFilter(params: URLSearchParams) {
  return { starred: params.get('starred') === 'true', job: params.get('job') ?? undefined }
}
