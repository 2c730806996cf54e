import { useEffect } from 'react'
import { useLocation } from 'react-router'
import { Balance } from './Balance'
import { Usage } from './Usage'
import { Keys } from './Keys'
import { Webhooks } from './Webhooks'
import { PlanSection } from './Plan'
import '../../account.css'

// Account is the person's money and integrations: balance and grants,
// this month's usage, the plan, API keys and webhooks. Each section loads
// on its own, so a slow one holds up nothing else.
export function Account() {
  const { hash } = useLocation()
  useEffect(() => {
    if (hash) document.getElementById(hash.slice(1))?.scrollIntoView()
  }, [hash])
  return (
    <div className="account">
      <h1>Account</h1>
      <nav aria-label="Account sections" className="subnav">
        <a href="#balance">Balance</a><a href="#usage">Usage</a><a href="#plan">Plan</a><a href="#api-keys">API keys</a><a href="#webhooks">Webhooks</a>
      </nav>
      <Balance />
      <Usage />
      <PlanSection />
      <Keys />
      <Webhooks />
    </div>
  )
}
