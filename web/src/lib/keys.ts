// SubmissionKeys gives each submission of the Generate form its own
// Idempotency-Key. Submitting the same body again while the outcome of the
// last submission is unknown (a double click while it is in flight, a retry
// after a network error or a 5xx) reuses the key, so the API makes one job.
// Once the API has answered for certain (a job, or a refusal such as 402 or
// 429), or when the body changed, the next submission gets a new key: the
// next click is a new job.
export class SubmissionKeys {
  private key: string
  private body: string | undefined

  constructor(private readonly newKey: () => string = () => crypto.randomUUID()) {
    this.key = newKey()
  }

  // keyFor is the key to send with this body.
  keyFor(body: unknown): string {
    const b = JSON.stringify(body)
    if (this.body !== undefined && b !== this.body) this.key = this.newKey()
    this.body = b
    return this.key
  }

  // answered records that the API settled what the key stands for; a later
  // answer for an older key changes nothing.
  answered(key: string): void {
    if (key !== this.key) return
    this.key = this.newKey()
    this.body = undefined
  }
}

// settles says whether an answer of this HTTP status settles the key: 2xx
// and 4xx do; a 5xx or no answer at all (0) leave the outcome unknown.
export function settles(status: number): boolean {
  return status > 0 && status < 500
}
