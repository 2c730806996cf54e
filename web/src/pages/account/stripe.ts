// Card entry in production: Stripe Elements, loaded only when the server
// names a publishable key (GET /config.json stripe_publishable_key). The
// page's Content-Security-Policy allows Stripe.js, its frames and its API
// only then. In development there is no key, and the app offers the
// stripe-mock test card instead.

interface StripeCard {
  mount(el: HTMLElement): void
  destroy(): void
}

interface StripeLike {
  elements(): { create(kind: 'card', options?: object): StripeCard }
  createPaymentMethod(args: { type: 'card'; card: StripeCard }): Promise<{ paymentMethod?: { id: string }; error?: { message?: string } }>
}

declare global {
  interface Window {
    Stripe?: (key: string) => StripeLike
  }
}

let loading: Promise<StripeLike> | undefined

// loadStripe adds Stripe.js to the page once.
export function loadStripe(key: string): Promise<StripeLike> {
  loading ??= new Promise<StripeLike>((resolve, reject) => {
    const s = document.createElement('script')
    s.src = 'https://js.stripe.com/v3/'
    s.async = true
    s.onload = () => (window.Stripe ? resolve(window.Stripe(key)) : reject(new Error('Stripe.js did not load')))
    s.onerror = () => reject(new Error('Stripe.js could not be loaded'))
    document.head.append(s)
  }).catch((e: Error) => {
    loading = undefined
    throw e
  })
  return loading
}

export type { StripeCard, StripeLike }
