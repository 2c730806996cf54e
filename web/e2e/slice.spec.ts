import { expect, shot, test } from './helpers'

// A person opens the app signed out, signs in through the issuer's form,
// generates an image and watches it render to 100 %, then finds it in the
// gallery; generating again makes a second image. Nothing on the way logs
// a console error (the `test` of ./helpers checks).
test('sign in, generate with progress, see the image in the gallery', async ({ page }) => {
  await page.goto('/')
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible()
  await shot(page, '1-signed-out')

  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page).toHaveURL(/\/dev\/oidc\/authorize\?/)
  const email = `web-${Date.now()}@example.com`
  await page.getByLabel('Email').fill(email)
  await shot(page, '2-issuer-form')
  await page.getByRole('button', { name: 'Sign in' }).click()

  await expect(page.getByRole('heading', { name: 'Generate' })).toBeVisible()
  await expect(page.getByText(email)).toBeVisible()
  expect(new URL(page.url()).pathname).toBe('/')
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }))
  expect(stored, 'no token in web storage').not.toMatch(/eyJ/)

  await page.getByLabel('Prompt', { exact: true }).fill('a lighthouse on a cliff at dusk')
  await page.getByLabel('Steps').fill('20')
  await expect(page.getByTestId('price')).toHaveText(/\d+ credits?/)
  await shot(page, '3-generate-priced')

  await page.getByRole('button', { name: 'Generate' }).click()
  // Each job gets its own card, newest first.
  const job = page.getByRole('article').first()
  const progress = job.getByTestId('progress')
  await expect(progress).toHaveText(/[1-9]\d? %/) // a step in between, not just the end
  await shot(page, '4-generate-progress')
  await expect(progress).toHaveText('100 %')
  const result = job.getByRole('img', { name: /^Result: a lighthouse/ })
  await expect(result).toBeVisible()
  await expect.poll(() => result.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0)
  await shot(page, '5-generate-done')
  // The balance the price shows has followed the settled job (50 free
  // credits, 1 spent), and generating again makes a second job.
  await expect(page.getByTestId('balance-after')).toHaveText('48')
  await page.getByRole('button', { name: 'Generate' }).click()
  await expect(page.getByRole('article')).toHaveCount(2)
  await expect(page.getByRole('article').first().getByTestId('progress')).toHaveText('100 %')
  await expect(page.getByRole('img', { name: /^Result: a lighthouse/ })).toHaveCount(2)
  await expect(page.getByTestId('balance-after')).toHaveText('47')

  await page.getByRole('link', { name: 'Gallery', exact: true }).click()
  await expect(page.getByRole('heading', { name: 'Gallery' })).toBeVisible()
  const thumbs = page.getByRole('list', { name: 'Images' }).getByRole('img')
  await expect(thumbs).toHaveCount(2)
  await expect.poll(() => thumbs.first().evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0)
  await shot(page, '6-gallery')

  await page.getByRole('button', { name: 'Sign out' }).click()
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible()
})
