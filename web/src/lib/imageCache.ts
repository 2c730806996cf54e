import type { InfiniteData, QueryClient } from '@tanstack/react-query'
import type { Schemas } from '../api/client'

type Image = Schemas['Image']
type ImageList = Schemas['ImageList']

// patchImage changes (or with null removes) one image in every cached
// page of the gallery, so a star or a delete shows at once.
export function patchImage(queries: QueryClient, name: string, change: ((im: Image) => Image) | null) {
  queries.setQueriesData<InfiniteData<ImageList>>({ queryKey: ['images', 'list'] }, (data) =>
    data && {
      ...data,
      pages: data.pages.map((p) => ({
        ...p,
        images: change ? p.images.map((im) => (im.name === name ? change(im) : im)) : p.images.filter((im) => im.name !== name),
      })),
    },
  )
}
