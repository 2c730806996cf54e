import { expect, test } from '@playwright/test'
import { looks, signInHere, newEmail, watchConsole } from './helpers'

// A new person's account: the balance and its grant, the usage chart after
// a job and its CSV; subscribing to Basic with the test card changes the
// plan and the credits; changing to Pro shows the proration before
// confirming; on Pro an API key is made and shown once, works with fetch
// and stops working once revoked; cancel at period end and resume; sign
// out forgets the session.
test('account: plan, proration, API keys, cancel and resume, sign out', async ({ page }) => {
  test.setTimeout(180_000)
  const { problems, allow } = watchConsole(page)
  const email = newEmail('acct')
  await page.goto('/account')
  await signInHere(page, email)
  // The sign-in came back to where the person was going.
  await expect(page.getByRole('heading', { name: 'Account', level: 1 })).toBeVisible()
  await expect(page.getByTestId('available')).toHaveText('50 credits')
  await expect(page.getByRole('table', { name: 'Credit grants' }).getByRole('row')).toHaveCount(2) // the free month's grant
  await expect(page.getByTestId('keys-refused')).toContainText('no API access')
  await expect(page.getByTestId('current-plan')).toContainText('Free')

  await test.step('one job: the usage chart and the CSV', async () => {
    await page.getByRole('link', { name: 'Generate' }).click()
    await page.getByLabel('Prompt', { exact: true }).fill('a quiet harbour at dawn')
    await page.getByLabel('Steps').fill('8')
    await expect(page.getByTestId('price')).toHaveText(/\d+ credits?/)
    await page.getByRole('button', { name: 'Generate' }).click()
    const job = page.getByRole('article').first()
    await expect(job.getByTestId('progress')).toHaveText('100 %')
    // The image shows once the job has settled, and its usage is recorded.
    await expect(job.getByRole('img', { name: /^Result: a quiet harbour/ })).toBeVisible()
    await page.getByRole('link', { name: 'Account' }).click()
    await expect(page.getByTestId('usage-credits')).toHaveText('1 credit')
    await expect(page.getByTestId('usage-chart')).toBeVisible()
    // The person's own storage, in the plan card's units.
    await expect(page.getByTestId('storage')).toHaveText(/^Storage: [\d.]+ (KB|MB) of 1 GB used\.$/)
    // The chart's labels stay readable on a phone: at least 11 px on screen.
    await page.setViewportSize({ width: 390, height: 844 })
    const label = () => page.getByTestId('usage-chart').evaluate((svg: SVGSVGElement) => {
      const text = svg.querySelector('text.axis')!
      return (parseFloat(getComputedStyle(text).fontSize) * svg.getBoundingClientRect().width) / svg.viewBox.baseVal.width
    })
    await expect.poll(label).toBeGreaterThanOrEqual(11)
    await page.setViewportSize({ width: 1280, height: 860 })
    const download = page.waitForEvent('download')
    await page.getByRole('button', { name: 'Export CSV' }).click()
    const file = await download
    expect(file.suggestedFilename()).toMatch(/^usage-.*\.csv$/)
    const csv = await (await file.createReadStream()).toArray()
    expect(Buffer.concat(csv).toString()).toMatch(/^job_id,action_type,model/)
    await looks(page, 'account-free')
  })

  await test.step('subscribe to Basic with the test card', async () => {
    await page.getByRole('button', { name: 'Subscribe to Basic' }).click()
    const dialog = page.getByRole('dialog', { name: 'Subscribe to Basic' })
    await expect(dialog).toContainText('Test card: Visa •••• 4242')
    await looks(page, 'account-subscribe')
    await dialog.getByRole('button', { name: /Pay \$9\.99 and subscribe/ }).click()
    await expect(page.getByTestId('current-plan')).toContainText('Basic', { timeout: 30_000 })
    await expect(page.getByTestId('current-plan')).toContainText('Active')
    // 49 left of the free month, and Basic's 500.
    await expect(page.getByTestId('available')).toHaveText('549 credits')
  })

  await test.step('change to Pro: the proration first', async () => {
    // Closing the dialog, by Escape or Back, gives focus back to the button that opened it.
    const open = page.getByRole('button', { name: 'Change to Pro' })
    const dialog = page.getByRole('dialog', { name: 'Change from Basic to Pro' })
    await open.click()
    await expect(dialog).toBeVisible()
    await page.keyboard.press('Escape')
    await expect(dialog).toBeHidden()
    await expect(open).toBeFocused()
    await page.keyboard.press('Enter')
    await dialog.getByRole('button', { name: 'Back' }).click()
    await expect(dialog).toBeHidden()
    await expect(open).toBeFocused()
    await open.click()
    const proration = dialog.getByTestId('proration')
    // The difference ($20.00 a month) for what is left of the period.
    await expect(proration).toContainText(/\$(19\.\d\d|20\.00) today/)
    await expect(proration).toContainText(/1,(4\d\d|500) credits more now/)
    await looks(page, 'account-proration')
    const charge = /\$(\d+\.\d\d) today/.exec((await proration.textContent()) ?? '')![1]
    await dialog.getByRole('button', { name: `Pay $${charge} and upgrade` }).click()
    await expect(dialog).toBeHidden()
    await expect(page.getByTestId('current-plan')).toContainText('Pro')
    await expect(page.getByTestId('available')).toHaveText(/^(2,0[0-4]\d) credits$/)
    // Each grant says what it is: the Free month, the Basic month, the upgrade's top-up.
    const grants = page.getByRole('table', { name: 'Credit grants' })
    await expect(grants.getByRole('row')).toHaveCount(4)
    for (const from of ['Free plan', 'Basic plan', 'Upgrade top-up']) await expect(grants.getByRole('cell', { name: from, exact: true })).toBeVisible()
    await expect(page.getByTestId('storage')).toContainText('of 50 GB used')
  })

  await test.step('an API key: shown once, works, then revoked', async () => {
    await page.getByLabel('Key name').fill('e2e script')
    await page.getByRole('button', { name: 'Create key' }).click()
    const key = (await page.getByTestId('new-key').textContent())!
    expect(key).toMatch(/^esk_/)
    await looks(page, 'account-new-key')
    const call = (k: string) => page.evaluate(async (k) => (await fetch('/v1/credits', { headers: { Authorization: `Bearer ${k}` } })).status, k)
    expect(await call(key)).toBe(200)
    await page.getByRole('button', { name: 'Done' }).click()
    await expect(page.getByTestId('new-key')).toHaveCount(0) // shown once
    await expect(page.getByRole('cell', { name: 'e2e script', exact: true })).toBeVisible()
    await page.getByRole('button', { name: 'Revoke e2e script' }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke key' }).click()
    await expect(page.getByRole('cell', { name: 'revoked' })).toBeVisible()
    allow(401) // the revoked key's refusal, asked for below
    expect(await call(key)).toBe(401)
  })

  await test.step('cancel at period end, then resume', async () => {
    await page.getByRole('button', { name: 'Cancel at period end' }).click()
    await page.getByRole('dialog', { name: 'Cancel Pro?' }).getByRole('button', { name: 'Back' }).click()
    await expect(page.getByRole('button', { name: 'Cancel at period end' })).toBeFocused()
    await page.getByRole('button', { name: 'Cancel at period end' }).click()
    await page.getByRole('dialog', { name: 'Cancel Pro?' }).getByRole('button', { name: 'Cancel at period end' }).click()
    await expect(page.getByTestId('cancel-note')).toContainText('Pro ends on')
    await looks(page, 'account-canceled')
    await page.getByRole('button', { name: 'Resume Pro' }).click()
    await expect(page.getByTestId('cancel-note')).toHaveCount(0)
    await expect(page.getByText(/Next charge \$29\.99/)).toBeVisible()
  })

  await test.step('a downgrade waits for the period end, and can be withdrawn', async () => {
    await page.getByRole('button', { name: 'Change to Basic' }).click()
    await page.getByRole('dialog', { name: 'Change from Pro to Basic' }).getByRole('button', { name: 'Schedule the change' }).click()
    await expect(page.getByTestId('current-plan')).toContainText(/Moves to Basic on/)
    await page.getByRole('button', { name: 'Keep Pro' }).click()
    const dialog = page.getByRole('dialog', { name: 'Keep Pro?' })
    await expect(dialog.getByTestId('proration')).toContainText('$0.00 today')
    await expect(dialog.getByTestId('proration')).toContainText('The scheduled change is withdrawn: Pro carries on')
    await looks(page, 'account-keep-plan')
    await dialog.getByRole('button', { name: 'Keep Pro' }).click()
    await expect(dialog).toBeHidden()
    await expect(page.getByTestId('current-plan')).not.toContainText('Moves to')
    await expect(page.getByText(/Next charge \$29\.99/)).toBeVisible()
    await expect(page.getByRole('button', { name: 'Keep Pro' })).toHaveCount(0)
  })

  await test.step('webhooks: an endpoint and its secret, shown once', async () => {
    await page.getByLabel('Endpoint URL').fill('http://127.0.0.1:9/easel-hooks')
    await page.getByRole('button', { name: 'Add endpoint' }).click()
    await expect(page.getByTestId('webhook-secret')).toHaveText(/^whsec_/)
    await page.getByRole('button', { name: 'Done' }).click()
    await expect(page.getByRole('list', { name: 'Webhook endpoints' })).toContainText('http://127.0.0.1:9/easel-hooks')
    await page.getByRole('button', { name: 'Show deliveries' }).click()
    await expect(page.getByText('No deliveries yet')).toBeVisible()
    await looks(page, 'account-pro')
  })

  await test.step('sign out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible()
    await expect(page.getByText(email)).toHaveCount(0)
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }))
    expect(stored, 'no token in web storage').not.toMatch(/eyJ|esk_/)
  })
  expect(problems).toEqual([])
})
