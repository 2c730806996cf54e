import { expect, test } from '@playwright/test'
import { looks, signInHere, newEmail, watchConsole } from './helpers'

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

// Tokens live in memory only, so a reload forgets them; the development
// issuer, like Cognito's hosted UI, keeps its own session (a cookie on its
// path), and the app asks it for new tokens in a hidden frame
// (prompt=none) before showing the sign-in page. So a reload keeps the
// person signed in, on the page they were on; after signing out (which
// ends the issuer's session too) a reload stays signed out.
test('a reload keeps the person signed in; after signing out it does not', async ({ page }) => {
  const { problems } = watchConsole(page)
  const email = newEmail('reload')
  await page.goto('/gallery')
  await signInHere(page, email)
  await expect(page).toHaveURL(/\/gallery$/)
  await expect(page.getByRole('heading', { name: 'Gallery' })).toBeVisible()

  // The gallery's answer comes from the API, with the restored token.
  for (const [path, ready] of [['/gallery', page.getByText('No images yet.')], ['/', page.getByLabel('Prompt', { exact: true })]] as const) {
    if (new URL(page.url()).pathname !== path) await page.getByRole('link', { name: path === '/' ? 'Generate' : 'Gallery', exact: true }).click()
    const silent = page.waitForRequest((r) => r.url().includes('/dev/oidc/authorize?') && r.url().includes('prompt=none'))
    await page.reload()
    await silent
    await expect(page.getByText(email)).toBeVisible()
    await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible()
    await expect(ready).toBeVisible()
    expect(new URL(page.url()).pathname, 'the same page after the reload').toBe(path)
  }
  // The header at phone width: the email on one line, cut short.
  await looks(page, 'generate-restored', false)
  await page.setViewportSize({ width: 390, height: 844 })
  const who = page.locator('.who')
  await expect(who).toHaveAttribute('title', email)
  const [box, brand] = [await who.boundingBox(), await page.locator('.brand').boundingBox()]
  expect(box!.height, 'the email on one line').toBeLessThan(30)
  expect(Math.abs(box!.y - brand!.y), 'the email beside the brand').toBeLessThan(12)
  await page.setViewportSize({ width: 1280, height: 860 })
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }))
  expect(stored, 'no token in web storage').not.toMatch(/eyJ/)
  const issuerCookie = (await page.context().cookies()).find((c) => c.name === 'easel_dev_oidc_session')
  expect(issuerCookie, 'the issuer session cookie').toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/dev/oidc' })

  await page.getByRole('button', { name: 'Sign out' }).click()
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible()
  await expect(page.getByText(email)).toHaveCount(0)
  await page.reload()
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible()
  await expect(page.getByText(email)).toHaveCount(0)
  await page.goto('/gallery')
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible()
  expect((await page.context().cookies()).find((c) => c.name === 'easel_dev_oidc_session'), 'the issuer session cookie after sign-out').toBeUndefined()
  expect(problems).toEqual([])
})
