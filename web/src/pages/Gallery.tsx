import { useQuery } from '@tanstack/react-query'
import { api, must } from '../api/client'
import { ErrorNote } from './ErrorNote'

export function Gallery() {
  const images = useQuery({
    queryKey: ['images'],
    queryFn: async () => must(await api.GET('/v1/images', { params: { query: { limit: 60 } } })),
  })
  return (
    <section>
      <h1>Gallery</h1>
      {images.isPending ? (
        <p role="status">Loading images…</p>
      ) : images.error ? (
        <ErrorNote error={images.error} what="Loading your images" />
      ) : images.data.images.length === 0 ? (
        <p className="empty">No images yet: generate one and it lands here.</p>
      ) : (
        <ul className="grid" aria-label="Images">
          {images.data.images.map((im) => (
            <li key={im.name}>
              <a href={im.url} target="_blank" rel="noreferrer">
                <img src={im.thumbnail_url} alt={`Image ${im.name}, seed ${im.seed}`} loading="lazy" width={256} height={Math.round((256 * im.height) / im.width)} />
              </a>
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}
