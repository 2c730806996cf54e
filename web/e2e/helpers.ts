import { expect, test as base, type APIRequestContext, type Browser, type Page } from '@playwright/test'

// Helpers the browser tests share: signing in through the development
// issuer's form as a person would, the API as a script would (to set up
// what a test needs and to check what the page claims), screenshots in
// the four looks (desktop and 390 px phone, light and dark), and a page
// that fails its test on any console error or warning.

const shots = process.env.SCREENSHOT_DIR ?? 'test-results/screens'

const expected = new WeakMap<Page, RegExp[]>()

// expectConsole lets a test's page log one kind of message: Chromium logs
// every answer of 4xx or 5xx ("Failed to load resource ... 429"), also
// one the test provokes on purpose and the page shows as it should.
export function expectConsole(page: Page, pattern: RegExp) {
  expected.set(page, [...(expected.get(page) ?? []), pattern])
}

// test fails a test whose page logged a console error or warning, or threw.
export const test = base.extend<{ problems: string[] }>({
  problems: [
    async ({ page }, use) => {
      const problems: string[] = []
      page.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && problems.push(`${m.type()}: ${m.text()} (${m.location().url})`))
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
      await use(problems)
      const allowed = expected.get(page) ?? []
      expect(problems.filter((p) => !allowed.some((a) => a.test(p))), 'console errors and warnings').toEqual([])
    },
    { auto: true },
  ],
})
export { expect }

// shot saves the page as it looks now: all of it, or (a dialog open) the
// screen.
export const shot = (page: Page, name: string, fullPage = true) => page.screenshot({ path: `${shots}/${name}.png`, fullPage })

// looks saves the page at desktop and phone width, light and dark, and
// puts it back as it was.
export async function looks(page: Page, name: string, fullPage = true) {
  const size = page.viewportSize() ?? { width: 1280, height: 860 }
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme })
    await page.setViewportSize(size)
    await shot(page, `${name}-desktop-${scheme}`, fullPage)
    await page.setViewportSize({ width: 390, height: 844 })
    await shot(page, `${name}-phone-${scheme}`, fullPage)
    // Nothing may be wider than the phone.
    const wide = await page.evaluate(() => {
      // The innermost elements that stick out, to name in the failure.
      const out = [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 391 &&
        ![...e.children].some((c) => c.getBoundingClientRect().right > 391))
      return { width: document.documentElement.scrollWidth, culprits: out.slice(0, 3).map((e) => `${e.tagName.toLowerCase()}.${e.className}: ${e.textContent?.slice(0, 40)}`) }
    })
    expect(wide.width, `${name} at 390 px scrolls sideways: ${wide.culprits.join(' | ')}`).toBeLessThanOrEqual(390)
  }
  await page.emulateMedia({ colorScheme: 'light' })
  await page.setViewportSize(size)
}

export const newEmail = (what: string) => `${what}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`

// signIn opens the app signed out and signs in as email on the issuer's form.
export async function signIn(page: Page, email: string) {
  await page.goto('/')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByLabel('Email').fill(email)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page.getByText(email)).toBeVisible()
}

// An API client signed in as one person (the same user the form signs in).
export class API {
  private constructor(private readonly request: APIRequestContext, readonly token: string) {}

  static async as(request: APIRequestContext, email: string): Promise<API> {
    const r = await request.post('/dev/oidc/login', { data: { email } })
    expect(r.ok(), await r.text()).toBe(true)
    return new API(request, (await r.json()).id_token)
  }

  async call<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const r = await this.request.fetch(path, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, ...headers },
      data: body,
    })
    expect(r.status(), `${method} ${path}: ${await r.text()}`).toBeLessThan(300)
    return r.status() === 204 ? (undefined as T) : r.json()
  }

  get = <T = any>(path: string) => this.call<T>('GET', path)

  // status answers a request's HTTP status, whatever it is.
  async status(method: string, path: string): Promise<number> {
    const r = await this.request.fetch(path, { method, headers: { Authorization: `Bearer ${this.token}` } })
    return r.status()
  }

  // subscribe moves the user to a paid plan (stripe-mock's test card) and
  // waits until it is in effect.
  async subscribe(plan: string) {
    await this.call('POST', '/v1/subscriptions', { plan, payment_method: 'pm_card_visa' })
    await expect.poll(async () => (await this.get('/v1/me')).plan.slug, { timeout: 30_000 }).toBe(plan)
  }

  // generate starts a job and, unless told not to, waits for it to end.
  async generate(body: Record<string, unknown>, wait = true) {
    const g = await this.call('POST', '/v1/generations', body, { 'Idempotency-Key': `e2e-${Date.now()}-${Math.random()}` })
    if (wait) await expect.poll(async () => (await this.get(`/v1/generations/${g.id}`)).status, { timeout: 60_000 }).toBe('completed')
    return g
  }

  async available(): Promise<number> {
    return (await this.get('/v1/credits')).available
  }
}

// watchConsole collects console errors and warnings and page errors. The
// browser logs every refused request ("Failed to load resource: ... 403"):
// a test that expects refusals names their statuses in allow.
export function watchConsole(page: Page) {
  const problems: string[] = []
  const allowed = new Set<number>()
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return
    const status = /status of (\d{3})/.exec(m.text())?.[1]
    if (status && allowed.has(Number(status))) return
    problems.push(`${m.type()}: ${m.text()} (${m.location().url})`)
  })
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
  return { problems, allow: (status: number) => allowed.add(status) }
}

// signInHere signs in through the development issuer's form from where the
// page is (the sign-in page), and waits for the app.
export async function signInHere(page: Page, email: string) {
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page).toHaveURL(/\/dev\/oidc\/authorize\?/)
  await page.getByLabel('Email').fill(email)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible()
}

// newPerson opens a fresh browser context (its own memory, so its own
// session) signed in as email, on path.
export async function newPerson(browser: Browser, email: string, path = '/') {
  const context = await browser.newContext()
  const page = await context.newPage()
  const console = watchConsole(page)
  await page.goto(path)
  await signInHere(page, email)
  return { page, console, context }
}
