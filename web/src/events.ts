import type { Schemas } from './api/client'
import { problemFrom } from './api/client'
import { bearer } from './auth'

export type GenerationEvent = Schemas['GenerationEvent']

// A ServerSentEvent is one dispatched event of a text/event-stream.
export interface ServerSentEvent {
  event: string
  data: string
  id?: string
}

// SSEDecoder turns the chunks of a text/event-stream into events, as the
// HTML standard's parser does: lines end in LF, CR or CRLF (a chunk may end
// between CR and LF, or mid-line); `data:` lines accumulate, joined by LF,
// until a blank line dispatches them; comment lines (`: keep-alive`) and
// unknown fields are ignored; one space after the colon is dropped.
export class SSEDecoder {
  private buf = ''
  private lastWasCR = false
  private event = ''
  private data: string[] = []
  private id?: string

  push(chunk: string): ServerSentEvent[] {
    const out: ServerSentEvent[] = []
    if (chunk === '') return out
    if (this.lastWasCR && chunk.startsWith('\n')) chunk = chunk.slice(1)
    this.lastWasCR = false
    this.buf += chunk
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf)
      if (!m) break
      // A CR at the very end may be the first half of a CRLF split
      // across chunks: treat it as a line end and skip a leading LF next.
      if (m[0] === '\r' && m.index === this.buf.length - 1) this.lastWasCR = true
      const line = this.buf.slice(0, m.index)
      this.buf = this.buf.slice(m.index + m[0].length)
      const ev = this.line(line)
      if (ev) out.push(ev)
    }
    return out
  }

  // end dispatches nothing: an event without its blank line is incomplete
  // and dropped, as the standard says; it reports whether any was dropped.
  end(): boolean {
    const partial = this.buf !== '' || this.data.length > 0
    this.buf = ''
    this.data = []
    this.event = ''
    return partial
  }

  private line(line: string): ServerSentEvent | undefined {
    if (line === '') {
      if (!this.data.length) {
        this.event = ''
        return undefined
      }
      const ev: ServerSentEvent = { event: this.event || 'message', data: this.data.join('\n') }
      if (this.id !== undefined) ev.id = this.id
      this.event = ''
      this.data = []
      return ev
    }
    if (line.startsWith(':')) return undefined
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'data':
        this.data.push(value)
        break
      case 'event':
        this.event = value
        break
      case 'id':
        if (!value.includes('\0')) this.id = value
        break
    }
    return undefined
  }
}

// parseGenerationEvent reads one event's data as a GenerationEvent, or
// undefined for an event that is not one (another event type, bad JSON).
export function parseGenerationEvent(e: ServerSentEvent): GenerationEvent | undefined {
  if (e.event !== 'status' && e.event !== 'message') return undefined
  try {
    const v = JSON.parse(e.data) as GenerationEvent
    return v && typeof v === 'object' && typeof v.state === 'string' ? v : undefined
  } catch {
    return undefined
  }
}

// isTerminal says whether a job in this state has ended.
export function isTerminal(state: string | undefined): boolean {
  return state === 'completed' || state === 'failed' || state === 'canceled'
}

// followGeneration reads GET /v1/generations/{id}/events with fetch, as
// EventSource cannot send the Authorization header, and calls onEvent for
// each status event until the stream ends or signal aborts. It returns the
// last event, which carries the finished job when the stream ended with it.
export async function followGeneration(
  id: string,
  onEvent: (e: GenerationEvent) => void,
  signal: AbortSignal,
): Promise<GenerationEvent | undefined> {
  const res = await fetch(`/v1/generations/${encodeURIComponent(id)}/events`, {
    headers: { Authorization: `Bearer ${bearer() ?? ''}`, Accept: 'text/event-stream' },
    signal,
  })
  if (!res.ok || !res.body) {
    throw problemFrom(await res.json().catch(() => ({})), res)
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  const sse = new SSEDecoder()
  let last: GenerationEvent | undefined
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return last
    for (const raw of sse.push(value)) {
      const ev = parseGenerationEvent(raw)
      if (!ev) continue
      last = ev
      onEvent(ev)
    }
  }
}
