import { describe, expect, it } from 'vitest'
import { grantLabels } from './grants'

const plans = [
  { name: 'Free', monthly_credits: 50 },
  { name: 'Basic', monthly_credits: 500 },
  { name: 'Pro', monthly_credits: 2000 },
]
const iso = (t: string) => (t.length === 10 ? `${t}T00:00:00Z` : t)
const grant = (id: string, source: string, total: number, from: string, until: string) =>
  ({ id, source, total, valid_from: iso(from), valid_until: iso(until) })

describe('grantLabels', () => {
  it('tells the Free month, the Basic month and an upgrade’s top-up apart', () => {
    const labels = grantLabels([
      grant('free', 'subscription', 50, '2030-01-01', '2030-02-01'),
      grant('basic', 'subscription', 500, '2030-01-10', '2030-02-10'),
      // Basic → Pro seven minutes into Basic's period.
      grant('topup', 'subscription', 1500, '2030-01-10T00:07:00Z', '2030-02-10'),
    ], plans)
    expect(Object.fromEntries(labels)).toEqual({ free: 'Free plan', basic: 'Basic plan', topup: 'Upgrade top-up' })
  })

  it('names an administrator’s grant, and a subscription grant of no plan’s size', () => {
    const labels = grantLabels([
      grant('admin', 'test_grant', 25, '2030-01-01', '2030-02-01'),
      grant('odd', 'subscription', 77, '2030-01-01', '2030-02-01'),
      grant('other', 'promo_code', 10, '2030-01-01', '2030-02-01'),
    ], plans)
    expect(Object.fromEntries(labels)).toEqual({ admin: 'Granted by Easel', odd: 'Plan credits', other: 'Promo code' })
  })

  it('without the plans, says a subscription grant is the plan’s', () => {
    expect(grantLabels([grant('a', 'subscription', 50, '2030-01-01', '2030-02-01')]).get('a')).toBe('Plan credits')
  })
})
