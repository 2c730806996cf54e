import { useQuery } from '@tanstack/react-query'
import { api, must, ProblemError, type Problem } from './api/client'
import { appConfig } from './auth'

// useMe is the signed-in person's account (GET /v1/me): their role, plan
// and balance. The header, the low-balance banner and the account page
// share it.
export function useMe() {
  return useQuery({ queryKey: ['me'], queryFn: async () => must(await api.GET('/v1/me')), staleTime: 15_000 })
}

// useAppConfig is /config.json, loaded once.
export function useAppConfig() {
  return useQuery({ queryKey: ['config'], queryFn: appConfig, staleTime: Infinity, gcTime: Infinity })
}

// money formats cents as dollars.
export function money(cents: number): string {
  return (cents / 100).toLocaleString('en-US', { style: 'currency', currency: 'USD' })
}

// dollars formats a plan's decimal price ("9.99").
export function dollars(price: string): string {
  return money(Math.round(Number(price) * 100))
}

const dateFmt = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric' })
const timeFmt = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' })

export function day(iso: string | null | undefined): string {
  return iso ? dateFmt.format(new Date(iso)) : '—'
}

export function when(iso: string | null | undefined): string {
  return iso ? timeFmt.format(new Date(iso)) : '—'
}

// credits says "1 credit" or "n credits".
export function credits(n: number): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? 'credit' : 'credits'}`
}

// workflowURL is a workflow's page in Temporal's Web UI, or undefined when
// the server did not say where the UI is.
export function workflowURL(cfg: { temporal_ui?: string; temporal_namespace?: string } | undefined, workflowId: string) {
  if (!cfg?.temporal_ui) return undefined
  return `${cfg.temporal_ui}/namespaces/${encodeURIComponent(cfg.temporal_namespace ?? 'default')}/workflows/${encodeURIComponent(workflowId)}`
}

// mustOK checks an answer without a body (204): it throws the problem of
// a refusal.
export function mustOK(r: { error?: unknown; response: Response }): void {
  if (!r.response.ok) throw new ProblemError((r.error ?? {}) as Partial<Problem>, r.response.status)
}
