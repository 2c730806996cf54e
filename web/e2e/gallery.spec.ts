import { readFile } from 'node:fs/promises'
import { API, expect, expectConsole, looks, newEmail, shot, signIn, test } from './helpers'

// The gallery pages through every image as it scrolls, and its viewer
// (a modal dialog) stars, deletes and reuses an image's settings.
test('gallery: scrolling loads every image; the viewer stars, deletes, reuses settings and starts from an image', async ({ page, request }) => {
  test.setTimeout(240_000)
  const email = newEmail('gallery')
  const api = await API.as(request, email)
  await api.subscribe('pro')
  // 7 jobs of 7 images: 49, more than a page (40), one batch split across two.
  for (let i = 0; i < 7; i++) await api.generate({ prompt: `gallery picture ${i}`, steps: 1, batch_size: 7, seed: 100 + i })

  await signIn(page, email)
  await page.getByRole('link', { name: 'Gallery', exact: true }).click()
  const grid = page.getByRole('list', { name: 'Images' })
  const thumbs = grid.getByRole('img')
  await expect(thumbs).toHaveCount(40)
  // The first rows load at once (the page's largest paint), the rest
  // when scrolled to.
  await expect(thumbs.first()).toHaveAttribute('loading', 'eager')
  await expect(thumbs.first()).toHaveAttribute('fetchpriority', 'high')
  await expect(thumbs.nth(6)).toHaveAttribute('loading', 'lazy')
  await expect(thumbs.first()).toHaveAttribute('width', '256')
  await expect(thumbs.first()).toHaveAttribute('height', '256')
  await thumbs.last().scrollIntoViewIfNeeded()
  await expect(thumbs).toHaveCount(49)
  await expect(page.getByText('49 images: that is all.')).toBeVisible()
  await page.evaluate(() => window.scrollTo(0, 0))
  await looks(page, 'gallery')

  // The newest image opens in the viewer, focus inside it.
  await grid.getByRole('button').first().click()
  const viewer = page.getByRole('dialog', { name: 'Image details' })
  await expect(viewer).toBeVisible()
  await expect(viewer.getByRole('button', { name: 'Close' })).toBeFocused()
  await expect(viewer.getByText('gallery picture 6')).toBeVisible()
  const first = new URL(page.url()).searchParams.get('image')!
  const image = await api.get(`/v1/images/${first}`)
  await expect(viewer.getByText(String(image.seed), { exact: true })).toBeVisible()
  await expect(viewer.getByRole('img', { name: 'Full image: gallery picture 6' })).toHaveAttribute('src', /\.png/)
  // Download saves the PNG under the image's name; the gallery stays.
  const galleryURL = page.url()
  const [download] = await Promise.all([page.waitForEvent('download'), viewer.getByRole('link', { name: 'Download PNG' }).click()])
  expect(download.suggestedFilename()).toBe(`${first}.png`)
  expect((await readFile((await download.path())!)).subarray(1, 4).toString()).toBe('PNG')
  expect(page.url()).toBe(galleryURL)

  // Star it; the starred filter finds it.
  await viewer.getByRole('button', { name: '☆ Star' }).click()
  await expect(viewer.getByRole('button', { name: '★ Starred' })).toHaveAttribute('aria-pressed', 'true')
  await expect.poll(async () => (await api.get(`/v1/images/${first}`)).starred).toBe(true)
  await looks(page, 'gallery-viewer', false)
  await page.keyboard.press('Escape')
  await expect(viewer).toBeHidden()
  await expect(grid.getByRole('button').first()).toBeFocused()
  await expect(grid.locator('.star-badge')).toHaveCount(1)
  await page.getByRole('group', { name: 'Show' }).getByRole('button', { name: '★ Starred' }).click()
  await expect(thumbs).toHaveCount(1)
  await page.getByRole('group', { name: 'Show' }).getByRole('button', { name: 'All' }).click()
  await expect(thumbs).toHaveCount(49)

  // Delete the second image, after a confirmation; the viewer moves on.
  await grid.getByRole('button').nth(1).click()
  const second = new URL(page.url()).searchParams.get('image')!
  await viewer.getByRole('button', { name: 'Delete…' }).click()
  await expect(viewer.getByRole('button', { name: 'Keep it' })).toBeFocused()
  await viewer.getByRole('button', { name: 'Delete image' }).click()
  await expect.poll(() => new URL(page.url()).searchParams.get('image')).not.toBe(second)
  expect(await api.status('GET', `/v1/images/${second}`), 'the deleted image is gone').toBe(404)
  await shot(page, 'gallery-viewer-after-delete-desktop-light', false)
  await viewer.getByRole('button', { name: 'Close' }).click()
  await expect(grid.getByRole('button')).toHaveCount(48)

  // A link to the deleted image: one plain sentence, and nothing to page through.
  expectConsole(page, /status of 404 \(Not Found\)/)
  await page.goto(`/gallery?image=${second}`)
  await expect(viewer.getByRole('alert')).toHaveText('Loading the image: Not found: it may have been deleted.')
  await expect(viewer.getByRole('button', { name: /Newer|Older/ })).toHaveCount(0)
  await shot(page, 'gallery-viewer-unknown-desktop-light', false)
  await page.keyboard.press('Escape')
  // A link to a job that does not exist says so, not that its images were deleted.
  await page.goto('/gallery?job=00000000-0000-0000-0000-000000000000')
  await expect(page.getByTestId('job-empty')).toContainText('This job was not found')
  await looks(page, 'gallery-unknown-job')
  await page.getByRole('link', { name: 'Gallery', exact: true }).click()

  // "Use these settings" opens Generate with the image's prompt, steps and seed.
  await grid.getByRole('button').first().click()
  await viewer.getByRole('button', { name: 'Use these settings' }).click()
  await expect(page.getByRole('heading', { name: 'Generate' })).toBeVisible()
  await expect(page.getByLabel('Prompt', { exact: true })).toHaveValue('gallery picture 6')
  await expect(page.getByLabel('Seed')).toHaveValue(String(image.seed))
  await expect(page.getByLabel('Steps')).toHaveValue('1')
  await expect(page.getByLabel('Model')).toHaveValue('sd-1.5')

  // "Use as init image" starts the next job from that picture.
  await page.getByRole('link', { name: 'Gallery', exact: true }).click()
  await grid.getByRole('button').first().click()
  await viewer.getByRole('button', { name: 'Use as init image' }).click()
  await expect(page.getByRole('img', { name: 'Init image: gallery picture 6' })).toBeVisible()
  await expect(page.getByLabel('Size').locator('option:checked')).toHaveText(/As the picture · 512×512/)
  await page.getByRole('button', { name: 'Generate' }).click()
  await expect(page.getByRole('article').first().getByTestId('progress')).toHaveText('100 %')
  const job = (await api.get('/v1/generations')).generations[0]
  expect(job.params).toMatchObject({ init_image: first, prompt: 'gallery picture 6' })

  // Another person sees none of these.
  await page.getByRole('button', { name: 'Sign out' }).click()
  await signIn(page, newEmail('stranger'))
  await page.getByRole('link', { name: 'Gallery', exact: true }).click()
  await expect(page.getByText('No images yet.')).toBeVisible()
  await looks(page, 'gallery-empty')
})
