import { Link } from 'react-router'
import { useAppConfig, useMe, credits } from './me'
import './lowbalance.css'

// LowBalance warns across the app when the available balance is under the
// threshold the API's credits.low webhook uses, and says how to get more.
export function LowBalance() {
  const me = useMe()
  const cfg = useAppConfig()
  const threshold = cfg.data?.low_balance_credits ?? 10
  if (!me.data || me.data.credits.available >= threshold) return null
  const left = me.data.credits.available
  return (
    <div className="low-balance" role="status" data-testid="low-balance">
      <strong>{left <= 0 ? 'You are out of credits.' : `Only ${credits(left)} left.`}</strong>{' '}
      <Link to="/account#plan">Change plan or subscribe</Link> for more.
    </div>
  )
}
