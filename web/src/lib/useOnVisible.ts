import { useCallback, useRef } from 'react'

// useOnVisible returns a ref for an element (the end of a list): f is
// called whenever the element comes near the viewport, and once when it
// is attached and already near it. Remount the element (a new key) after
// each page so a page that does not fill the screen loads the next.
export function useOnVisible(f: () => void) {
  const latest = useRef(f)
  latest.current = f
  return useCallback((el: HTMLElement | null) => {
    if (!el || typeof IntersectionObserver === 'undefined') return
    const io = new IntersectionObserver((es) => es.some((e) => e.isIntersecting) && latest.current(), { rootMargin: '800px 0px' })
    io.observe(el)
    return () => io.disconnect()
  }, [])
}
