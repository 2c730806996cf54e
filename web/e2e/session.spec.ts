import { expect, test } from '@playwright/test'
import { signInHere, newEmail, watchConsole } from './helpers'

// The browser tests' issuer gives 90-second ID tokens (--token-ttl in
// playwright.config.ts), so the app renews its session a minute before
// expiry, 30 s after signing in: through the refresh token grant, with no
// page load and no sign-in, and the API accepts the new token. Every other
// spec runs across such renewals too.
test('the session renews itself before the ID token expires', async ({ page }) => {
  test.setTimeout(120_000)
  const { problems } = watchConsole(page)
  const bearers: string[] = []
  const answers: number[] = []
  page.on('response', (r) => {
    const auth = r.request().headers()['authorization']
    if (new URL(r.url()).pathname.startsWith('/v1/') && auth?.startsWith('Bearer ey')) {
      if (!bearers.includes(auth)) bearers.push(auth)
      answers.push(r.status())
    }
  })
  const refreshed = page.waitForRequest((r) => r.url().endsWith('/dev/oidc/token') && (r.postData() ?? '').includes('grant_type=refresh_token'), { timeout: 60_000 })
  await page.goto('/account')
  await signInHere(page, newEmail('session'))
  await expect(page.getByTestId('available')).toHaveText('50 credits')
  expect(bearers).toHaveLength(1)

  await refreshed
  // A request after the renewal carries the new token, and is answered.
  await page.getByRole('link', { name: 'Generate' }).click()
  await page.getByRole('link', { name: 'Account' }).click()
  await expect(page.getByTestId('available')).toHaveText('50 credits')
  await expect.poll(() => bearers.length).toBe(2)
  expect(answers.every((s) => s < 400), `answers ${answers}`).toBe(true)
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible()
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }))
  expect(stored, 'no token in web storage').not.toMatch(/eyJ/)
  expect(problems).toEqual([])
})
