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
  // knows it): show the sign-in page rather than a broken one.
  onResponse({ request, response }) {
    if (response.status === 401 && request.headers.has('Authorization')) endSession('Your session ended: sign in again.')
    return response
  },
}

export const api = createClient<paths>({ baseUrl: location.origin })
api.use(auth)

// ProblemError carries an API problem+json answer to the page that shows it.
export class ProblemError extends Error {
  constructor(public problem: Partial<Problem>, public status: number) {
    super(problem.detail || problem.title || `HTTP ${status}`)
  }
}

// must returns data or throws the answer's problem.
export function must<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.data !== undefined && r.response.ok) return r.data
  throw new ProblemError((r.error ?? {}) as Partial<Problem>, r.response.status)
}
