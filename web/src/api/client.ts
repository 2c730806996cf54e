import createClient, { type Middleware } from 'openapi-fetch'
import type { components, paths } from './schema'
import { bearer, endSession } from '../auth'

export type Schemas = components['schemas']
export type Problem = Schemas['Problem']

const auth: Middleware = {
  onRequest({ request }) {
    const token = bearer()
    if (token) request.headers.set('Authorization', `Bearer ${token}`)
    return request
  },
  // A 401 means the session is gone (expired, or the issuer no longer
  // knows it): show the sign-in page rather than a broken one. An identity
  // the API cannot use (a claim it refuses) is no expired session: the
  // sign-in page says why instead.
  async onResponse({ request, response }) {
    if (response.status === 401 && request.headers.has('Authorization')) {
      let why = 'Your session ended: sign in again.'
      try {
        const p = (await response.clone().json()) as Partial<Problem>
        if (p.type?.endsWith('/invalid-identity') && p.detail) why = `This sign-in cannot be used: ${p.detail}.`
      } catch {
        // Not a problem+json answer: the session ended.
      }
      endSession(why)
    }
    return response
  },
}

// The app's own origin; absent where there is no page (unit tests).
export const api = createClient<paths>({ baseUrl: globalThis.location?.origin ?? '' })
api.use(auth)

// ProblemError carries an API problem+json answer to the page that shows it,
// with the Retry-After the answer named (429, 503), in seconds.
export class ProblemError extends Error {
  constructor(public problem: Partial<Problem>, public status: number, public retryAfter?: number) {
    super(problem.detail || problem.title || `HTTP ${status}`)
  }
}

// retryAfterSeconds reads a Retry-After header: seconds, or an HTTP date.
export function retryAfterSeconds(h: string | null | undefined, now = Date.now()): number | undefined {
  if (!h) return undefined
  if (/^\d+$/.test(h.trim())) return Number(h.trim())
  const at = Date.parse(h)
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000))
}

// problemFrom builds the error for a failed answer.
export function problemFrom(body: unknown, res: Response): ProblemError {
  const p = body && typeof body === 'object' ? (body as Partial<Problem>) : {}
  return new ProblemError(p, res.status, retryAfterSeconds(res.headers.get('Retry-After')))
}

// must returns data or throws the answer's problem.
export function must<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.response.ok && (r.data !== undefined || r.response.status === 204)) return r.data as T
  throw problemFrom(r.error, r.response)
}
