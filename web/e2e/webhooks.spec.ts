import { createHmac } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { API, expect, looks, newEmail, shot, signIn, test } from './helpers'

// A receiver on this machine (easel dev lets webhooks reach loopback):
// it answers 204 and keeps what it was sent.
async function receiver() {
  const got: { headers: IncomingHttpHeaders; body: any; raw: string }[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      got.push({ headers: req.headers, body: JSON.parse(body), raw: body })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/easel-hooks`, got, close: () => server.close() }
}

// signedBy tells whether one of a webhook's signatures is secret's, as a
// receiver checks it (Standard Webhooks: HMAC-SHA256 of id.timestamp.body).
function signedBy(secret: string, hook: { headers: IncomingHttpHeaders; raw: string }): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  const want = 'v1,' + createHmac('sha256', key).update(`${hook.headers['webhook-id']}.${hook.headers['webhook-timestamp']}.${hook.raw}`).digest('base64')
  return String(hook.headers['webhook-signature']).split(' ').includes(want)
}

// An endpoint added on the Account page receives a finished job's event,
// signed; its delivery shows with the receiver's answer, and a replay
// sends the same event again.
test('webhooks: a job ends, the delivery shows with its answer, and a replay sends it again', async ({ page, request }) => {
  test.setTimeout(120_000)
  const hooks = await receiver()
  try {
    const email = newEmail('hooks')
    const api = await API.as(request, email)
    await signIn(page, email)
    await page.getByRole('link', { name: 'Account' }).click()
    await page.getByLabel('Endpoint URL').fill(hooks.url)
    await page.getByRole('button', { name: 'Add endpoint' }).click()
    await expect(page.getByTestId('webhook-secret')).toHaveText(/^whsec_/)
    await page.getByRole('button', { name: 'Done' }).click()

    const job = await api.generate({ prompt: 'a lighthouse at dusk', steps: 1 })
    await expect.poll(() => hooks.got.length, { timeout: 30_000 }).toBe(1)
    const first = hooks.got[0]
    expect(first.body).toMatchObject({ type: 'generation.completed', data: { generation: { id: job.id, status: 'completed' } } })
    expect(first.headers['webhook-signature']).toMatch(/^v1,/)

    await page.getByRole('button', { name: 'Show deliveries' }).click()
    const deliveries = page.getByRole('table', { name: `Deliveries to ${hooks.url}` })
    const row = deliveries.getByRole('row').filter({ hasText: 'generation.completed' })
    await expect(row).toHaveCount(1)
    await expect(row).toContainText('delivered')
    await expect(row).toContainText('204')

    await row.getByRole('button', { name: /^Replay generation\.completed/ }).click()
    await expect.poll(() => hooks.got.length, { timeout: 30_000 }).toBe(2)
    expect(hooks.got[1].body).toEqual(first.body)
    expect(hooks.got[1].headers['webhook-id']).toBe(first.headers['webhook-id'])
    await expect(deliveries.getByRole('row').filter({ hasText: '(replay)' })).toContainText('delivered')
    await looks(page, 'account-webhook-deliveries')
  } finally {
    hooks.close()
  }
})

// Under the low-balance threshold (GET /config.json) every page says so
// and links to the plans; on Generate, a job dearer than what is left is
// refused before it is sent, with the way to more credits, and the form
// says what the plan allows.
test('low balance: a banner on every page links to the plans; a job over the balance is refused with the way to credits', async ({ page, request }) => {
  test.setTimeout(180_000)
  const email = newEmail('low')
  const api = await API.as(request, email)
  const { low_balance_credits: threshold } = await (await request.get('/config.json')).json()
  // The dearest job the Free plan takes, so that a few (under its 10
  // requests a minute) spend the grant.
  const candidates = [
    { prompt: 'spend it', model: 'sdxl', width: 1024, height: 1024, steps: 50 },
    { prompt: 'spend it', width: 1024, height: 1024, steps: 50 },
    { prompt: 'spend it', steps: 30 },
  ]
  let job = candidates[2]
  let price = 0
  for (const c of candidates) {
    const q = await api.call('POST', '/v1/quote', c)
    if (q.submittable) {
      job = c
      price = q.price.total
      break
    }
  }
  expect(price, 'a Free job costs something').toBeGreaterThan(0)
  // spend generates, waiting out the plan's rate limit (429) when met.
  const spend = async (body: Record<string, unknown>) => {
    for (;;) {
      const r = await request.post('/v1/generations', { data: body, headers: { Authorization: `Bearer ${api.token}`, 'Idempotency-Key': newEmail('spend') } })
      if (r.status() === 429) {
        const wait = 1000 * Number((await r.json()).retry_after ?? 1)
        await new Promise((done) => setTimeout(done, wait))
        continue
      }
      expect(r.status(), await r.text()).toBe(202)
      const g = await r.json()
      await expect.poll(async () => (await api.get(`/v1/generations/${g.id}`)).status, { timeout: 60_000 }).toBe('completed')
      return g.id as string
    }
  }
  let dear = ''
  while ((await api.available()) >= threshold) {
    if ((await api.available()) >= price) dear = await spend(job)
    else await spend({ prompt: 'spend it', steps: 1 })
  }
  // One credit at a time, until the dear job no longer fits.
  while ((await api.available()) >= price) await spend({ prompt: 'spend it', steps: 1 })
  const left = await api.available()

  await signIn(page, email)
  const banner = page.getByTestId('low-balance')
  await expect(banner).toContainText(left <= 0 ? 'You are out of credits.' : `Only ${left} credit`)
  await page.getByRole('link', { name: 'Gallery', exact: true }).click()
  await expect(banner).toBeVisible()
  await looks(page, 'low-balance')
  await banner.getByRole('link', { name: 'Change plan or subscribe' }).click()
  await expect(page).toHaveURL(/\/account#plan$/)
  await expect(page.getByTestId('current-plan')).toContainText('Free')
  // The page lands on the Plan section once the sections above it have loaded.
  const plan = page.getByRole('heading', { name: 'Plan', level: 2 })
  await expect.poll(() => plan.evaluate((h) => Math.round(h.getBoundingClientRect().top))).toBeLessThan(80)
  await expect.poll(() => plan.evaluate((h) => Math.round(h.getBoundingClientRect().top))).toBeGreaterThanOrEqual(0)

  // The dear job's settings again: the price says how many credits are
  // missing (not a negative balance), and the refusal how to get them.
  await page.goto(`/gallery?image=${dear}_0`)
  await page.getByRole('dialog', { name: 'Image details' }).getByRole('button', { name: 'Use these settings' }).click()
  await expect(page.getByRole('heading', { name: 'Generate' })).toBeVisible()
  await expect(page.getByTestId('price')).toHaveText(`${price} credits`)
  const short = price - left
  await expect(page.getByTestId('credits-short')).toHaveText(`${short} ${short === 1 ? 'credit' : 'credits'}`)
  await expect(page.getByTestId('balance-after')).toHaveCount(0)
  const refusal = page.getByRole('alert').filter({ has: page.getByRole('link', { name: 'Get credits' }) })
  await expect(refusal).toBeVisible()
  await expect(refusal).toContainText(/^This generation needs/) // a sentence, capitalised
  // What the plan allows: one image per job, and where to get more.
  await expect(page.getByText('One per job on your plan')).toBeVisible()
  await shot(page, 'generate-over-balance-desktop-light')
  await refusal.getByRole('link', { name: 'Get credits' }).click()
  await expect(page.getByRole('heading', { name: 'Account', level: 1 })).toBeVisible()
})

// Rotating an endpoint's secret on the Account page shows the new secret
// once; the old one keeps signing beside it, so a webhook verifies with
// either, until a rotation that stops the old one at once.
test('webhooks: a rotated secret signs at once, the old one beside it until stopped', async ({ page, request }) => {
  test.setTimeout(120_000)
  const hooks = await receiver()
  try {
    const email = newEmail('rotate')
    const api = await API.as(request, email)
    await signIn(page, email)
    await page.getByRole('link', { name: 'Account' }).click()
    await page.getByLabel('Endpoint URL').fill(hooks.url)
    await page.getByRole('button', { name: 'Add endpoint' }).click()
    const first = (await page.getByTestId('webhook-secret').textContent())!
    await page.getByRole('button', { name: 'Done' }).click()

    await page.getByRole('button', { name: `Rotate the secret of ${hooks.url}` }).click()
    const dialog = page.getByRole('dialog', { name: "Rotate this endpoint's secret?" })
    await expect(dialog).toContainText('keeps signing beside it for a day')
    await dialog.getByRole('button', { name: 'Rotate secret' }).click()
    const region = page.getByRole('region', { name: 'Rotated signing secret' })
    await expect(region.getByTestId('previous-secret-note')).toContainText('The old secret also signs until')
    const second = (await region.getByTestId('webhook-secret').textContent())!
    expect(second).toMatch(/^whsec_/)
    expect(second).not.toBe(first)
    await looks(page, 'account-webhook-rotated')
    await region.getByRole('button', { name: 'Done' }).click()
    await expect(page.getByRole('list', { name: 'Webhook endpoints' })).toContainText('The previous secret also signs until')

    await api.generate({ prompt: 'signed twice', steps: 1 })
    await expect.poll(() => hooks.got.length, { timeout: 30_000 }).toBe(1)
    expect(String(hooks.got[0].headers['webhook-signature']).split(' ')).toHaveLength(2)
    expect(signedBy(second, hooks.got[0]), 'the new secret verifies').toBe(true)
    expect(signedBy(first, hooks.got[0]), 'the old secret verifies during the overlap').toBe(true)

    // Leaked: stop the old one at once.
    await page.getByRole('button', { name: `Rotate the secret of ${hooks.url}` }).click()
    await dialog.getByLabel('Stop the current secret at once (it leaked)').check()
    await dialog.getByRole('button', { name: 'Rotate secret' }).click()
    await expect(region.getByTestId('previous-secret-note')).toHaveText('The old secret no longer signs.')
    const third = (await region.getByTestId('webhook-secret').textContent())!
    await region.getByRole('button', { name: 'Done' }).click()
    await expect(page.getByRole('list', { name: 'Webhook endpoints' })).not.toContainText('The previous secret also signs')

    await api.generate({ prompt: 'signed once', steps: 1 })
    await expect.poll(() => hooks.got.length, { timeout: 30_000 }).toBe(2)
    expect(signedBy(third, hooks.got[1])).toBe(true)
    expect(signedBy(second, hooks.got[1]), 'a stopped secret no longer verifies').toBe(false)
  } finally {
    hooks.close()
  }
})
