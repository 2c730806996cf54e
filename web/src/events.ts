import type { Schemas } from './api/client'
import { ProblemError } from './api/client'
import { bearer } from './auth'

export type GenerationEvent = Schemas['GenerationEvent']

// followGeneration reads GET /v1/generations/{id}/events with fetch, as
// EventSource cannot send the Authorization header, and calls onEvent for
// each `data:` line until the stream ends or signal aborts.
export async function followGeneration(id: string, onEvent: (e: GenerationEvent) => void, signal: AbortSignal) {
  const res = await fetch(`/v1/generations/${id}/events`, {
    headers: { Authorization: `Bearer ${bearer() ?? ''}`, Accept: 'text/event-stream' },
    signal,
  })
  if (!res.ok || !res.body) {
    throw new ProblemError(await res.json().catch(() => ({})), res.status)
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let buf = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buf += value
    let nl: number
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '')
      buf = buf.slice(nl + 1)
      if (line.startsWith('data:')) onEvent(JSON.parse(line.slice(5).trim()) as GenerationEvent)
    }
  }
}
