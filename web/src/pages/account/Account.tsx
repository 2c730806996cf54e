import { useEffect, useRef } from 'react'
import { useLocation } from 'react-router'
import { useIsFetching } from '@tanstack/react-query'
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
  useScrollToHash()
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

// useScrollToHash brings the section a link names (/account#plan, from the
// low-balance banner) to the top once the sections have loaded: scrolled
// to at once, it would be pushed down the page as the sections above it
// fill in. Once per link, so a later refresh does not move the page.
function useScrollToHash() {
  const { hash } = useLocation()
  const fetching = useIsFetching()
  const done = useRef<string>(undefined)
  useEffect(() => {
    if (!hash || done.current === hash || fetching > 0) return
    const frame = requestAnimationFrame(() => {
      done.current = hash
      document.getElementById(hash.slice(1))?.scrollIntoView()
    })
    return () => cancelAnimationFrame(frame)
  }, [hash, fetching])
}
