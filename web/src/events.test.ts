import { describe, expect, it } from 'vitest'
import { SSEDecoder, isTerminal, parseGenerationEvent, type ServerSentEvent } from './events'

// feed pushes chunks through one decoder and collects the events.
function feed(...chunks: string[]): ServerSentEvent[] {
  const d = new SSEDecoder()
  return chunks.flatMap((c) => d.push(c))
}

const status = (progress: number, state = 'running') =>
  JSON.stringify({ job_id: 'j', state, progress, image: 0, images: 1, step: 1, total_steps: 30, updated_at: '2030-01-01T00:00:00Z' })

describe('SSEDecoder', () => {
  it('dispatches an event at the blank line, with its type', () => {
    expect(feed(`event: status\ndata: ${status(0.5)}\n\n`)).toEqual([{ event: 'status', data: status(0.5) }])
  })

  it('holds an event until its blank line arrives', () => {
    const d = new SSEDecoder()
    expect(d.push(`event: status\ndata: ${status(0.1)}\n`)).toEqual([])
    expect(d.push('\n')).toEqual([{ event: 'status', data: status(0.1) }])
  })

  it('joins a line split across chunks, even inside the JSON', () => {
    const line = `data: ${status(0.25)}\n\n`
    const chunks = [line.slice(0, 3), line.slice(3, 20), line.slice(20, 21), line.slice(21)]
    expect(feed('event: status\n', ...chunks).map((e) => e.data)).toEqual([status(0.25)])
  })

  it('reads CRLF and lone CR line ends, also a CRLF split between chunks', () => {
    expect(feed('event: status\r\ndata: a\r\n\r\n')).toEqual([{ event: 'status', data: 'a' }])
    expect(feed('data: b\r\r')).toEqual([{ event: 'message', data: 'b' }])
    // "\r" ends one chunk and "\n" starts the next: one line end, not two
    // (two would dispatch early and drop nothing, but a blank line between
    // data lines would split one event in two).
    expect(feed('data: c\r', '\ndata: d\r', '\n\r\n')).toEqual([{ event: 'message', data: 'c\nd' }])
  })

  it('ignores comments (keep-alives) and unknown fields', () => {
    expect(feed(': keep-alive\n\n', 'retry: 1000\nfoo: bar\n\n', ': keep-alive\n')).toEqual([])
    expect(feed(': keep-alive\nevent: status\n: between\ndata: x\n\n')).toEqual([{ event: 'status', data: 'x' }])
  })

  it('joins several data lines with LF, and drops only one leading space', () => {
    expect(feed('data:  two spaces\ndata:none\ndata\n\n')).toEqual([{ event: 'message', data: ' two spaces\nnone\n' }])
  })

  it('resets the event type after each event and keeps the last id', () => {
    expect(feed('event: status\nid: 7\ndata: 1\n\ndata: 2\n\n')).toEqual([
      { event: 'status', data: '1', id: '7' },
      { event: 'message', data: '2', id: '7' },
    ])
  })

  it('drops an event cut off before its blank line, and says so', () => {
    const d = new SSEDecoder()
    expect(d.push('event: status\ndata: {"job_id":')).toEqual([])
    expect(d.end()).toBe(true)
    expect(new SSEDecoder().end()).toBe(false)
  })
})

describe('parseGenerationEvent', () => {
  it('reads a status event', () => {
    const ev = parseGenerationEvent({ event: 'status', data: status(0.5) })
    expect(ev?.progress).toBe(0.5)
    expect(ev?.state).toBe('running')
  })

  it('skips other event types and data that is not a job event', () => {
    expect(parseGenerationEvent({ event: 'ping', data: status(0.5) })).toBeUndefined()
    expect(parseGenerationEvent({ event: 'status', data: '{"job_id":' })).toBeUndefined()
    expect(parseGenerationEvent({ event: 'status', data: '42' })).toBeUndefined()
    expect(parseGenerationEvent({ event: 'status', data: 'null' })).toBeUndefined()
  })
})

describe('isTerminal', () => {
  it('knows which states end a job', () => {
    expect(['completed', 'failed', 'canceled'].every(isTerminal)).toBe(true)
    expect(['queued', 'running', 'canceling', undefined].some(isTerminal)).toBe(false)
  })
})
