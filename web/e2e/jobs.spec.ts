import { API, expect, looks, newEmail, shot, signIn, test } from './helpers'

// The jobs page lists every job with its status and credits, links to its
// images, and cancels a running one.
test('jobs: history with credits held and charged, images, and cancel', async ({ page, request }) => {
  const email = newEmail('jobs')
  const api = await API.as(request, email)
  const start = await api.available()
  const finished = await api.generate({ prompt: 'a finished job', steps: 5 })
  await signIn(page, email)
  const slow = await api.generate({ prompt: 'a slow job', steps: 150 }, false)
  await page.getByRole('link', { name: 'Jobs', exact: true }).click()
  await expect(page.getByRole('heading', { name: 'Jobs' })).toBeVisible()
  const rows = page.getByTestId('job-row')
  await expect(rows).toHaveCount(2)
  const done = rows.filter({ hasText: 'a finished job' })
  const running = rows.filter({ hasText: 'a slow job' })
  await expect(done).toHaveAttribute('data-status', 'completed')
  await expect(done.locator('td[data-label="Held"]')).toHaveText('1')
  await expect(done.locator('td[data-label="Charged"]')).toHaveText('1')
  await expect(running).toHaveAttribute('data-status', 'running') // the list refreshes while a job runs
  await expect(running.locator('td[data-label="Held"]')).toHaveText(String(slow.credits_held))
  await shot(page, 'jobs-running-desktop-light')

  await running.getByRole('button', { name: 'Cancel' }).click()
  await expect(running).toHaveAttribute('data-status', 'canceled')
  await expect(running.locator('td[data-label="Charged"]')).toHaveText('0')
  expect(await api.available(), 'the canceled job’s hold came back').toBe(start - 1)
  await looks(page, 'jobs')

  await done.getByRole('link', { name: '1 image' }).click()
  await expect(page).toHaveURL(/\/gallery\?job=/)
  await expect(page.getByRole('list', { name: 'Images' }).getByRole('img')).toHaveCount(1)

  // A job whose image was deleted says so instead of linking to nothing.
  const { images } = await api.get(`/v1/generations/${finished.id}`)
  await api.call('DELETE', `/v1/images/${encodeURIComponent(images[0].name)}`)
  await page.getByRole('link', { name: 'Jobs', exact: true }).click()
  await expect(done.locator('td[data-label="Images"]')).toHaveText('deleted')
  await expect(done.getByRole('link', { name: '1 image' })).toHaveCount(0)
})

test('jobs: a new account sees an empty history', async ({ page }) => {
  await signIn(page, newEmail('nojobs'))
  await page.getByRole('link', { name: 'Jobs', exact: true }).click()
  await expect(page.getByText('No jobs yet.')).toBeVisible()
  await looks(page, 'jobs-empty')
})
