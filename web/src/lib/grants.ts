// Names for credit grants. The API says only where a grant came from
// (source: subscription, test_grant) and when it is valid; which plan's
// month it is, or whether it is an upgrade's top-up, is read from those.

export interface GrantLike {
  id: string
  source: string
  total: number
  valid_from: string
  valid_until: string
}

export interface PlanLike {
  name: string
  monthly_credits: number
}

// grantLabels names each grant:
//   - an administrator's grant: "Granted by Easel";
//   - a subscription grant that starts inside the period of an earlier one
//     and ends with it: "Upgrade top-up" (an upgrade adds credits for the
//     rest of the period);
//   - a subscription grant of exactly a plan's monthly credits: that plan's
//     month ("Basic plan");
//   - any other subscription grant: "Plan credits".
export function grantLabels(grants: GrantLike[], plans: PlanLike[] = []): Map<string, string> {
  const subs = grants.filter((g) => g.source === 'subscription')
  const labels = new Map<string, string>()
  for (const g of grants) {
    labels.set(g.id, label(g, subs, plans))
  }
  return labels
}

function label(g: GrantLike, subs: GrantLike[], plans: PlanLike[]): string {
  if (g.source === 'test_grant') return 'Granted by Easel'
  if (g.source !== 'subscription') return g.source.charAt(0).toUpperCase() + g.source.slice(1).replaceAll('_', ' ')
  const end = Date.parse(g.valid_until)
  const start = Date.parse(g.valid_from)
  if (subs.some((o) => o.id !== g.id && Date.parse(o.valid_until) === end && Date.parse(o.valid_from) < start)) return 'Upgrade top-up'
  const plan = plans.find((p) => p.monthly_credits === g.total)
  return plan ? `${plan.name} plan` : 'Plan credits'
}
