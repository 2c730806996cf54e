import { expect, type Browser, type Page } from '@playwright/test'

const dir = process.env.SCREENSHOT_DIR ?? 'test-results/screens'

// shots saves the page at desktop width and at a 390 px phone, each in the
// light and the dark scheme, then puts the page back as it was.
export async function shots(page: Page, name: string) {
  const size = page.viewportSize() ?? { width: 1280, height: 860 }
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme })
    await page.setViewportSize(size)
    await page.screenshot({ path: `${dir}/${name}-desktop-${scheme}.png`, fullPage: true })
    await page.setViewportSize({ width: 390, height: 844 })
    await page.screenshot({ path: `${dir}/${name}-390-${scheme}.png`, fullPage: true })
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

// signIn signs in through the development issuer's form from where the
// page is (the sign-in page), and waits for the app.
export async function signIn(page: Page, email: string) {
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
  await signIn(page, email)
  return { page, console, context }
}

export const unique = (who: string) => `${who}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`
