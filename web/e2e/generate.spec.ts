import { readFileSync } from 'node:fs'
import { API, expect, expectConsole, looks, newEmail, shot, signIn, test } from './helpers'

const picture = 'e2e/fixtures/sunset.png'

test('negative prompt, seed and batch reach the job, and a double click makes one job', async ({ page, request }) => {
  const email = newEmail('batch')
  const api = await API.as(request, email)
  await api.subscribe('basic') // the Free plan makes one image per job
  await signIn(page, email)
  await expect(page.getByText(/Basic plan/)).toBeVisible()

  await page.getByLabel('Prompt', { exact: true }).fill('a red fox in the snow')
  await page.getByLabel('Negative prompt').fill('fog, text')
  await page.getByLabel('Steps').fill('12')
  await page.getByLabel('Seed').fill('1234')
  await page.getByLabel('Images').fill('2')
  await expect(page.locator('.price')).toContainText('× 2')
  await looks(page, 'generate-form')

  const before = (await api.get('/v1/generations')).generations.length
  await page.getByRole('button', { name: 'Generate' }).dblclick()
  const card = page.getByRole('article').first()
  await expect(card.getByTestId('progress')).toHaveText('100 %')
  const results = card.getByRole('img', { name: /^Result: a red fox in the snow \(\d of 2\)/ })
  await expect(results).toHaveCount(2)
  for (const img of await results.all()) {
    await expect.poll(() => img.evaluate((i: HTMLImageElement) => i.naturalWidth)).toBeGreaterThan(0)
  }
  await expect(page.getByRole('article')).toHaveCount(1)
  const jobs = (await api.get('/v1/generations')).generations
  expect(jobs.length, 'a double click makes one job').toBe(before + 1)
  const job = await api.get(`/v1/generations/${jobs[0].id}`)
  expect(job.params).toMatchObject({ prompt: 'a red fox in the snow', negative_prompt: 'fog, text', seed: 1234, batch_size: 2, steps: 12 })
  expect(job.images).toHaveLength(2)
  await expect(card.getByTestId('job-credits')).toHaveText(`Charged ${job.credits_settled} credits.`)
  await looks(page, 'generate-batch-done')
})

test('image to image from an uploaded picture, chosen or dropped', async ({ page, request }) => {
  const email = newEmail('img2img')
  await signIn(page, email)
  await page.getByLabel('Prompt', { exact: true }).fill('the same scene in winter')

  // A file that is not a picture Easel reads is refused before it is sent, in plain words.
  await page.getByLabel('Init image file').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') })
  await expect(page.getByRole('alert').filter({ hasText: 'notes.txt is not a PNG, JPEG or WebP picture' })).toBeVisible()
  await page.getByLabel('Init image file').setInputFiles({ name: 'tiny.gif', mimeType: 'image/gif', buffer: Buffer.from('GIF89a') })
  const gif = page.getByRole('alert').filter({ hasText: 'tiny.gif is not a PNG, JPEG or WebP picture' })
  await expect(gif).toBeVisible()
  await expect(gif).not.toContainText('Something went wrong')

  await page.getByLabel('Init image file').setInputFiles(picture)
  await expect(page.getByRole('img', { name: 'Init image: sunset.png' })).toBeVisible()
  await expect(page.getByLabel('Size')).toHaveValue('picture')
  await expect(page.getByLabel('Size').locator('option:checked')).toHaveText(/640×480/)
  await page.getByLabel('Strength').fill('0.5')
  await expect(page.getByTestId('price')).toHaveText(/\d+ credits?/)
  await looks(page, 'generate-init-image')

  // From the keyboard: Enter on Generate starts the job and focus stays on the button.
  const submit = page.locator('form button[type=submit]')
  await submit.focus()
  await page.keyboard.press('Enter')
  const card = page.getByRole('article').first()
  await expect(card).toBeVisible()
  await expect(submit).toBeFocused()
  await expect(card.getByTestId('progress')).toHaveText('100 %')
  await expect(submit).toBeFocused()
  const result = card.getByRole('img', { name: /^Result: the same scene in winter/ })
  await expect(result).toHaveAttribute('width', '640')
  await expect(result).toHaveAttribute('height', '480')
  const api = await API.as(request, email)
  const uploads = (await api.get('/v1/uploads')).uploads
  expect(uploads).toHaveLength(1)
  const job = (await api.get('/v1/generations')).generations[0]
  expect(job.params).toMatchObject({ init_image: uploads[0].id, strength: 0.5, width: 640, height: 480 })

  // Dropping a file on the form uploads it the same way.
  await page.getByRole('button', { name: 'Remove picture' }).click()
  const dropped = await page.evaluateHandle((b64) => {
    const dt = new DataTransfer()
    dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'dropped.png', { type: 'image/png' }))
    return dt
  }, readFileSync(picture).toString('base64'))
  await page.getByTestId('drop-zone').dispatchEvent('dragover', { dataTransfer: dropped })
  await page.getByTestId('drop-zone').dispatchEvent('drop', { dataTransfer: dropped })
  await expect(page.getByRole('img', { name: 'Init image: dropped.png' })).toBeVisible()
  await expect.poll(async () => (await api.get('/v1/uploads')).uploads.length).toBe(2)
})

test('number fields refuse text they cannot read, rather than taking the default', async ({ page }) => {
  await signIn(page, newEmail('numbers'))
  await page.getByLabel('Prompt', { exact: true }).fill('a lighthouse')
  await expect(page.getByTestId('price')).toHaveText(/\d+ credits?/)
  const submit = page.locator('form button[type=submit]')
  for (const [field, text, message] of [
    ['Steps', '1e', 'Steps must be a whole number, in digits only.'],
    ['Steps', '1e2', 'Steps must be a whole number, in digits only.'],
    ['Seed', '--1', 'The seed must be a whole number, in digits only.'],
    ['Guidance', '--1', 'Guidance must be a number, like 7 or 7.5.'],
  ]) {
    await page.getByLabel(field, { exact: true }).fill(text)
    await expect(page.getByLabel(field, { exact: true })).toHaveAttribute('aria-invalid', 'true')
    await expect(page.getByText(message)).toBeVisible()
    await expect(page.getByText('Fix the settings above to see the price.')).toBeVisible()
    await expect(submit).toHaveAttribute('aria-disabled', 'true')
    if (field === 'Steps' && text === '1e') await looks(page, 'generate-bad-number')
    await page.getByLabel(field, { exact: true }).fill('')
  }
  // Refused means no job: a click does nothing.
  await page.getByLabel('Steps').fill('1e')
  await submit.click({ force: true })
  await expect(page.getByRole('article')).toHaveCount(0)
  await page.getByLabel('Steps').fill('12')
  await expect(page.getByTestId('price')).toHaveText(/\d+ credits?/)
  await expect(submit).toHaveAttribute('aria-disabled', 'false')
})

test('cancel a running job: the held credits come back; a second job while one runs is refused (429)', async ({ page, request }) => {
  const email = newEmail('cancel')
  await signIn(page, email)
  const api = await API.as(request, email)
  const start = await api.available()

  await page.getByLabel('Prompt', { exact: true }).fill('a very slow render')
  await page.getByLabel('Steps').fill('150') // 150 steps of the dev stack's 60 ms: 9 s to cancel in
  await expect(page.getByTestId('price')).toHaveText(/\d+ credits/)
  const price = parseInt((await page.getByTestId('price').textContent()) ?? '')
  await expect(page.getByTestId('balance-after')).toHaveText(String(start - price))

  await page.getByRole('button', { name: 'Generate' }).click()
  const card = page.getByRole('article').first()
  await expect(card.getByTestId('progress')).toHaveText(/^[1-9]\d? %$/)
  await card.getByRole('button', { name: 'Cancel' }).click()
  await expect(card.locator('.badge')).toHaveText('canceled')
  await expect(card.getByTestId('job-credits')).toHaveText(`Nothing charged: ${price} credits returned.`)
  await expect(card.getByText(/^Canceled at step \d+ of 150\.$/)).toBeVisible()
  await expect(page.getByTestId('balance-after')).toHaveText(String(start - price))
  expect(await api.available()).toBe(start)
  const job = (await api.get('/v1/generations')).generations[0]
  expect(job).toMatchObject({ status: 'canceled', credits_held: price })
  expect(job.credits_settled ?? 0).toBe(0)
  await looks(page, 'generate-canceled')

  // Again; while it runs, a second job is refused: the Free plan runs one
  // at a time. The page says so and when to try again.
  await page.getByRole('button', { name: 'Generate' }).click()
  await expect(page.getByRole('article')).toHaveCount(2)
  const second = page.getByRole('article').first()
  await expect(second.getByTestId('job-credits')).toHaveText(`${price} credits held`)
  await expect(page.getByTestId('balance-after')).toHaveText(String(start - 2 * price)) // the hold shows
  expectConsole(page, /status of 429 \(Too Many Requests\).*\/v1\/generations\)$/)
  await page.getByRole('button', { name: 'Generate' }).click()
  const refusal = page.getByRole('alert').filter({ hasText: 'Your plan runs 1 job at a time' })
  await expect(refusal).toBeVisible()
  // One countdown, on the button; the note names no time of its own.
  await expect(page.locator('form button[type=submit]')).toHaveText(/^Generate( \(in \d+ s\))?$/)
  await expect(refusal).not.toContainText(/try again in|You can try again/)
  await shot(page, 'generate-refused-429-desktop-light')
  await second.getByRole('button', { name: 'Cancel' }).click()
  await expect(second.locator('.badge')).toHaveText('canceled')
  await expect.poll(() => api.available()).toBe(start)
})
