import { expect, test } from '@playwright/test'
import { newPerson, looks, signInHere, newEmail, watchConsole } from './helpers'

// The development user (dev@easel.local) is an administrator. A person
// signs in; the administrator finds them, grants them credits (which their
// account then shows), renews their subscription once, suspends them (their
// next request is refused) and reactivates them. The person has no Admin
// link, and going to /admin is refused.
test('admin: grant, renew once, suspend and reactivate; others are refused', async ({ browser }) => {
  test.setTimeout(150_000)
  const email = newEmail('member')
  const member = await newPerson(browser, email, '/account')
  await expect(member.page.getByTestId('available')).toHaveText('50 credits')
  await expect(member.page.getByRole('link', { name: 'Admin' })).toHaveCount(0)

  const admin = await newPerson(browser, 'dev@easel.local', '/')
  const a = admin.page
  await a.getByRole('link', { name: 'Admin' }).click()
  await expect(a.getByRole('heading', { name: 'Admin', level: 1 })).toBeVisible()
  await expect(a.getByTestId('mrr')).toHaveText(/^\$/)
  await looks(a, 'admin')

  await a.getByLabel('Search users by email').fill(email)
  await a.getByRole('button', { name: 'Search' }).click()
  await expect(a.getByRole('table', { name: 'Users' }).getByRole('row')).toHaveCount(2)
  await a.getByRole('link', { name: email }).click()
  await expect(a.getByRole('heading', { name: email })).toBeVisible()
  await expect(a.getByTestId('user-available')).toHaveText('50 credits')
  // Storage in the plan card's units: the Free plan's 1 GB.
  await expect(a.getByTestId('user-storage')).toHaveText(/^Storage: \d+ B of 1 GB\.$/)
  await expect(a.getByRole('table', { name: 'Grants' }).getByRole('cell', { name: 'Free plan', exact: true })).toBeVisible()
  // The subscription's workflow, in Temporal UI.
  const link = a.getByRole('link', { name: /Open in Temporal UI/ })
  await expect(link).toHaveAttribute('href', /^http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/subscription%2F[0-9a-f-]{36}$/)

  await test.step('grant credits: the member sees them', async () => {
    await a.getByLabel('Credits', { exact: true }).fill('25')
    await a.getByLabel('Reason').fill('e2e goodwill')
    await a.getByRole('button', { name: 'Grant', exact: true }).click()
    await expect(a.getByText('Granted 25 credits')).toBeVisible()
    await expect(a.getByTestId('user-available')).toHaveText('75 credits')
    await expect(a.getByText('“e2e goodwill”')).toBeVisible()
    await expect(a.getByRole('table', { name: 'Grants' }).getByRole('cell', { name: 'Granted by Easel', exact: true })).toBeVisible()
    await member.page.getByRole('link', { name: 'Generate' }).click()
    await member.page.getByRole('link', { name: 'Account' }).click()
    await expect(member.page.getByTestId('available')).toHaveText('75 credits')
  })

  await test.step('renew now: one click renews once', async () => {
    const renew = a.getByRole('button', { name: 'Renew now' })
    await renew.click()
    await expect(a.getByRole('button', { name: 'Renewal started' })).toBeDisabled()
    await expect(a.getByText(/Renewal of the period from .* accepted/)).toBeVisible()
    // The free plan's next period, with its credits.
    await expect(a.getByTestId('user-available')).toHaveText(/^1\d\d credits$/, { timeout: 30_000 })
    await looks(a, 'admin-user')
  })

  await test.step('suspend: the member sees one explanation, not an error per section; reactivate', async () => {
    const suspend = a.getByRole('button', { name: 'Suspend' })
    await suspend.click()
    await a.getByRole('dialog').getByRole('button', { name: 'Back' }).click()
    await expect(suspend).toBeFocused()
    await suspend.click()
    await a.getByRole('dialog').getByRole('button', { name: 'Suspend' }).click()
    await expect(a.getByTestId('user-status')).toHaveText('suspended')
    member.console.allow(403) // the refusals this step is about
    const m = member.page
    // The next request the page makes is refused: the whole app says why.
    await m.getByRole('link', { name: 'Generate' }).click()
    await m.getByRole('link', { name: 'Account' }).click()
    const notice = m.getByTestId('suspended')
    await expect(notice.getByRole('heading', { name: 'Your account is suspended' })).toBeVisible()
    await expect(notice).toContainText('contact Easel support')
    await expect(m.getByRole('alert')).toHaveCount(0)
    await expect(m.getByText('this account is suspended')).toHaveCount(0)
    // Nothing to act on: no pages, no forms; signing out still works.
    await expect(m.getByRole('navigation', { name: 'Main' })).toHaveCount(0)
    await expect(m.getByRole('textbox')).toHaveCount(0)
    await expect(m.getByRole('button', { name: 'Sign out' })).toBeVisible()
    // A new load says so at once.
    await m.goto('/account')
    await expect(notice).toBeVisible()
    await expect(m.getByLabel('Endpoint URL')).toHaveCount(0)
    await looks(m, 'member-suspended')
    // Reactivated, the account is back at "Check again".
    await expect(m.getByRole('button', { name: 'Check again' })).toBeEnabled()
    await a.getByRole('button', { name: 'Reactivate' }).click()
    await expect(a.getByTestId('user-status')).toHaveText('active')
    await m.getByRole('button', { name: 'Check again' }).click()
    await expect(notice).toHaveCount(0)
    await expect(m.getByTestId('available')).toHaveText((await a.getByTestId('user-available').textContent())!)
  })

  await test.step('a non-admin going to /admin is refused', async () => {
    const page = await (await browser.newContext()).newPage()
    const { problems } = watchConsole(page)
    await page.goto('/admin')
    await signInHere(page, email)
    await expect(page.getByRole('heading', { name: 'Administrators only' })).toBeVisible()
    await expect(page.getByRole('link', { name: 'Admin' })).toHaveCount(0)
    await looks(page, 'admin-refused')
    expect(problems).toEqual([])
  })
  expect(member.console.problems).toEqual([])
  expect(admin.console.problems).toEqual([])
})
