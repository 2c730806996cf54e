import { useEffect, useRef, useState } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, must, ProblemError, type Schemas } from '../../api/client'
import { ErrorNote } from '../ErrorNote'
import { credits, day, dollars, money, useAppConfig, useMe } from '../../me'
import { bytes } from '../../lib/format'
import { Confirm, Loading, Section } from './ui'
import { loadStripe, type StripeCard, type StripeLike } from './stripe'

type Plan = Schemas['Plan']
type Subscription = Schemas['Subscription']
type Preview = Schemas['PlanChangePreview']

// The stripe-mock test card: stripe-mock accepts Stripe's test payment
// methods, as Stripe's test mode does.
const TEST_CARD = 'pm_card_visa'

// subscription is the subscription in effect, or null when there is none
// (404).
async function subscription(): Promise<Subscription | null> {
  const r = await api.GET('/v1/subscription')
  if (r.response.status === 404) return null
  return must(r)
}

const STATUS: Record<string, string> = {
  active: 'Active', trialing: 'Trial', past_due: 'Payment failed: retrying', incomplete: 'Waiting for the first payment',
  canceled: 'Canceled', expired: 'Expired', downgraded: 'Downgraded',
}

// PlanSection shows the plan and subscription, and subscribes, changes
// plan (with the proration shown before confirming), cancels at the
// period end and resumes.
export function PlanSection() {
  const plans = useQuery({ queryKey: ['plans'], queryFn: async () => must(await api.GET('/v1/plans')), staleTime: 300_000 })
  const sub = useQuery({
    queryKey: ['subscription'],
    queryFn: subscription,
    // A checkout becomes the plan in effect when its first payment lands:
    // watch until then.
    refetchInterval: (q) => (q.state.data?.checkout || q.state.data?.status === 'incomplete' ? 1000 : false),
  })
  const queries = useQueryClient()
  const inEffect = sub.data && sub.data.status !== 'incomplete' ? sub.data : null
  const planKey = `${inEffect?.plan}/${inEffect?.current_period_start}`
  const seen = useRef(planKey)
  useEffect(() => {
    // The plan or its period changed: so did the balance and the limits.
    if (seen.current === planKey) return
    seen.current = planKey
    void queries.invalidateQueries({ queryKey: ['me'] })
    void queries.invalidateQueries({ queryKey: ['credits'] })
    // The period's credits are granted by the subscription's workflow right
    // after the plan changes, maybe after this first read: read again a
    // few times over the next seconds rather than at the next 30 s poll.
    const timers = [1000, 2500, 5000, 10_000].map((ms) =>
      setTimeout(() => void queries.invalidateQueries({ queryKey: ['credits'] }), ms))
    return () => timers.forEach(clearTimeout)
  }, [planKey, queries])

  const [dialog, setDialog] = useState<{ kind: 'subscribe' | 'change'; plan: Plan } | { kind: 'cancel' } | null>(null)
  const resume = useMutation({
    mutationFn: async () => must(await api.POST('/v1/subscription/resume')),
    onSuccess: (s) => queries.setQueryData(['subscription'], (old: Subscription | null) => ({ ...old, ...s })),
  })

  if (plans.isPending || sub.isPending) return <Section id="plan" title="Plan"><Loading what="your plan" /></Section>
  if (plans.error || sub.error) return <Section id="plan" title="Plan"><ErrorNote error={(plans.error ?? sub.error)!} what="Loading your plan" /></Section>

  const current = plans.data.plans.find((p) => p.slug === inEffect?.plan)
  const paid = !!current && Number(current.monthly_price) > 0
  const checkout = sub.data?.status === 'incomplete' ? sub.data : sub.data?.checkout
  return (
    <Section id="plan" title="Plan">
      {inEffect && current ? (
        <div className="current-plan" data-testid="current-plan">
          <p className="plan-line">
            <strong>{current.name}</strong> · {Number(current.monthly_price) > 0 ? `${dollars(current.monthly_price)} a month` : 'free'} ·{' '}
            {credits(current.monthly_credits)} a month · <span className={`tag ${inEffect.status}`}>{STATUS[inEffect.status] ?? inEffect.status}</span>
          </p>
          <p className="muted">
            This period: {day(inEffect.current_period_start)} – {day(inEffect.current_period_end)}.{' '}
            {inEffect.cancel_at_period_end ? (
              <strong data-testid="cancel-note">Canceled: {current.name} ends on {day(inEffect.current_period_end)}, then the Free plan.</strong>
            ) : inEffect.pending_plan ? (
              <strong>Moves to {plans.data.plans.find((p) => p.slug === inEffect.pending_plan)?.name ?? inEffect.pending_plan} on {day(inEffect.current_period_end)}.</strong>
            ) : inEffect.next_charge_at ? (
              <>Next charge {dollars(current.monthly_price)} on {day(inEffect.next_charge_at)}.</>
            ) : null}
            {!!inEffect.dunning_attempt && <strong className="error-text"> {inEffect.dunning_attempt} charge(s) declined; retrying.</strong>}
          </p>
          <div className="inline-actions">
            {paid && inEffect.pending_plan && !inEffect.cancel_at_period_end && (
              <button type="button" className="secondary" onClick={() => setDialog({ kind: 'change', plan: current })}>Keep {current.name}</button>
            )}
            {paid && !inEffect.cancel_at_period_end && (
              <button type="button" className="secondary" onClick={() => setDialog({ kind: 'cancel' })}>Cancel at period end</button>
            )}
            {inEffect.cancel_at_period_end && (
              <button type="button" className="primary" onClick={() => resume.mutate()} disabled={resume.isPending}>
                {resume.isPending ? 'Resuming…' : `Resume ${current.name}`}
              </button>
            )}
          </div>
          {resume.error && <ErrorNote error={resume.error} what="Resuming" />}
        </div>
      ) : (
        <p className="empty">No plan yet: choose one below.</p>
      )}
      <Storage />
      {checkout && (
        <p className="notice" role="status" data-testid="checkout-note">
          {plans.data.plans.find((p) => p.slug === checkout.plan)?.name ?? checkout.plan}: waiting for the card and the first payment…
        </p>
      )}
      <ul className="plans" aria-label="Plans">
        {plans.data.plans.map((p) => (
          <li key={p.slug} className={`plan-card${p.slug === current?.slug ? ' is-current' : ''}`}>
            <h3>{p.name}</h3>
            <p className="price">{Number(p.monthly_price) > 0 ? <>{dollars(p.monthly_price)}<span className="muted"> / month</span></> : 'Free'}</p>
            <ul className="features">
              <li>{credits(p.monthly_credits)} a month</li>
              <li>GPU {p.gpu_tier.toUpperCase()}, up to {p.max_resolution} px</li>
              <li>{p.max_concurrent_jobs === 1 ? '1 job' : `${p.max_concurrent_jobs} jobs`} at once, batches of {p.max_batch_size}</li>
              <li>{p.max_storage_gb} GB of storage</li>
              {p.api_access && <li>API keys</li>}
              {p.priority_queue && <li>Priority queue</li>}
            </ul>
            <PlanButton plan={p} current={current} paid={paid} sub={inEffect}
              onSubscribe={() => setDialog({ kind: 'subscribe', plan: p })} onChange={() => setDialog({ kind: 'change', plan: p })} />
          </li>
        ))}
      </ul>
      {dialog?.kind === 'subscribe' && <Subscribe plan={dialog.plan} onClose={() => setDialog(null)} />}
      {dialog?.kind === 'change' && current && <ChangePlan from={current} to={dialog.plan} onClose={() => setDialog(null)} />}
      {dialog?.kind === 'cancel' && current && inEffect && <Cancel plan={current} sub={inEffect} onClose={() => setDialog(null)} />}
    </Section>
  )
}

// Storage says how much of the plan's storage the images take.
function Storage() {
  const me = useMe()
  if (!me.data) return null
  const { used_bytes: used, quota_bytes: quota } = me.data.storage
  return (
    <p className="muted" data-testid="storage">
      Storage: {bytes(used)} of {bytes(quota)} used{used >= quota ? ': full. Delete images in the gallery, or move to a plan with more.' : '.'}
    </p>
  )
}

function PlanButton({ plan, current, paid, sub, onSubscribe, onChange }: {
  plan: Plan; current?: Plan; paid: boolean; sub: Subscription | null; onSubscribe: () => void; onChange: () => void
}) {
  if (plan.slug === current?.slug) return <p className="muted current-tag">Your plan</p>
  if (sub?.pending_plan === plan.slug) return <p className="muted current-tag">From {day(sub.current_period_end)}</p>
  const free = Number(plan.monthly_price) === 0
  if (!paid) {
    if (free) return null // the free plan is where everyone starts
    return <button type="button" className="primary" onClick={onSubscribe} aria-label={`Subscribe to ${plan.name}`}>Subscribe</button>
  }
  if (free) return null // leaving a paid plan for Free is "Cancel at period end"
  return <button type="button" className="secondary" onClick={onChange} aria-label={`Change to ${plan.name}`}>Change to {plan.name}</button>
}

// Subscribe asks for a card and subscribes. With a publishable key the
// card is entered in Stripe Elements; without one (development) the
// stripe-mock test card is used.
function Subscribe({ plan, onClose }: { plan: Plan; onClose: () => void }) {
  const cfg = useAppConfig()
  const key = cfg.data?.stripe_publishable_key
  const queries = useQueryClient()
  const card = useRef<{ stripe: StripeLike; card: StripeCard } | null>(null)
  const cardEl = useRef<HTMLDivElement>(null)
  const [cardError, setCardError] = useState<string>()
  useEffect(() => {
    if (!key || !cardEl.current) return
    let live = true
    const el = cardEl.current
    loadStripe(key).then((stripe) => {
      if (!live) return
      const c = stripe.elements().create('card')
      c.mount(el)
      card.current = { stripe, card: c }
    }, (e: Error) => live && setCardError(e.message))
    return () => {
      live = false
      card.current?.card.destroy()
      card.current = null
    }
  }, [key])

  const subscribe = useMutation({
    mutationFn: async () => {
      let pm = TEST_CARD
      if (key) {
        if (!card.current) throw new Error('the card form has not loaded yet')
        const r = await card.current.stripe.createPaymentMethod({ type: 'card', card: card.current.card })
        if (!r.paymentMethod) throw new ProblemError({ detail: r.error?.message ?? 'the card was refused' }, 402)
        pm = r.paymentMethod.id
      }
      return must(await api.POST('/v1/subscriptions', { body: { plan: plan.slug, payment_method: pm } }))
    },
    onSuccess: () => {
      void queries.invalidateQueries({ queryKey: ['subscription'] })
      onClose()
    },
  })
  return (
    <Confirm title={`Subscribe to ${plan.name}`} confirm={`Pay ${dollars(plan.monthly_price)} and subscribe`}
      busy={subscribe.isPending} onConfirm={() => subscribe.mutate()} onClose={onClose}>
      <p>{dollars(plan.monthly_price)} today, then every month, for {credits(plan.monthly_credits)} a month. Cancel any time: the plan runs to the end of the paid period.</p>
      {cfg.isPending ? <Loading what="card entry" /> : key ? (
        <>
          <label id="card-label">Card</label>
          <div ref={cardEl} className="card-element" aria-labelledby="card-label" />
          {cardError && <p className="error" role="alert">{cardError}</p>}
        </>
      ) : (
        <fieldset className="test-card">
          <legend>Card</legend>
          <label className="check"><input type="radio" name="card" defaultChecked /> <span>Test card: Visa •••• 4242 <span className="muted">(development: payments go to stripe-mock, no money moves)</span></span></label>
        </fieldset>
      )}
      {subscribe.error && <ErrorNote error={subscribe.error} what="Subscribing" />}
    </Confirm>
  )
}

// ChangePlan previews the change (POST /v1/subscription/change/preview)
// and shows what it costs before the person confirms it.
function ChangePlan({ from, to, onClose }: { from: Plan; to: Plan; onClose: () => void }) {
  const queries = useQueryClient()
  const preview = useQuery({
    queryKey: ['plan-change', to.slug],
    queryFn: async () => must(await api.POST('/v1/subscription/change/preview', { body: { plan: to.slug } })),
    staleTime: 0,
    gcTime: 0,
  })
  const change = useMutation({
    mutationFn: async () => must(await api.POST('/v1/subscription/change', { body: { plan: to.slug } })),
    onSuccess: () => {
      for (const k of ['subscription', 'me', 'credits']) void queries.invalidateQueries({ queryKey: [k] })
      onClose()
    },
  })
  const p = preview.data
  const confirm = !p ? 'Change plan'
    : p.when === 'withdraw' ? `Keep ${to.name}`
    : p.when === 'now' ? (p.charge_cents > 0 ? `Pay ${money(p.charge_cents)} and upgrade` : 'Upgrade now') : 'Schedule the change'
  const title = from.slug === to.slug ? `Keep ${to.name}?` : `Change from ${from.name} to ${to.name}`
  return (
    <Confirm title={title} confirm={confirm} busy={change.isPending || preview.isPending || !!preview.error}
      onConfirm={() => change.mutate()} onClose={onClose}>
      {preview.isPending ? <Loading what="the price of the change" /> : preview.error ? <ErrorNote error={preview.error} what="Pricing the change" /> : (
        <ProrationSummary p={preview.data} from={from} to={to} />
      )}
      {change.error && <ErrorNote error={change.error} what="Changing plan" />}
    </Confirm>
  )
}

function ProrationSummary({ p, from, to }: { p: Preview; from: Plan; to: Plan }) {
  const daysLeft = Math.max(0, Math.round((new Date(p.current_period_end).getTime() - new Date(p.quoted_at).getTime()) / 86_400_000))
  if (p.when === 'now') {
    return (
      <div data-testid="proration">
        <p className="big"><strong>{money(p.charge_cents)}</strong> today</p>
        <p>{to.name} starts now. You pay the difference between {dollars(to.monthly_price)} and {dollars(from.monthly_price)} for the {daysLeft} days left of this period
          (until {day(p.current_period_end)}), and get <strong>{credits(p.credits_added)}</strong> more now.</p>
        <p className="muted">From {day(p.current_period_end)}: {money(p.new_price_cents)} a month for {credits(p.new_monthly_credits)}.</p>
      </div>
    )
  }
  if (p.when === 'withdraw') {
    return (
      <div data-testid="proration">
        <p className="big"><strong>{money(0)}</strong> today</p>
        <p>The scheduled change is withdrawn: {to.name} carries on, renewing on {day(p.current_period_end)} at {money(p.new_price_cents)} a month for {credits(p.new_monthly_credits)}.</p>
      </div>
    )
  }
  if (p.when === 'checkout') {
    return (
      <div data-testid="proration">
        <p className="big"><strong>{money(p.charge_cents)}</strong> when the card is saved</p>
        <p>Replaces the open {from.name} checkout with {to.name}.</p>
      </div>
    )
  }
  return (
    <div data-testid="proration">
      <p className="big"><strong>{money(0)}</strong> today</p>
      <p>You keep {from.name} until {day(p.effective_at)}; then {to.name} starts at {money(p.new_price_cents)} a month for {credits(p.new_monthly_credits)}.</p>
    </div>
  )
}

function Cancel({ plan, sub, onClose }: { plan: Plan; sub: Subscription; onClose: () => void }) {
  const queries = useQueryClient()
  const cancel = useMutation({
    mutationFn: async () => must(await api.POST('/v1/subscription/cancel')),
    onSuccess: (s) => {
      queries.setQueryData(['subscription'], (old: Subscription | null) => ({ ...old, ...s, next_charge_at: s.next_charge_at }))
      void queries.invalidateQueries({ queryKey: ['subscription'] })
      onClose()
    },
  })
  return (
    <Confirm title={`Cancel ${plan.name}?`} confirm="Cancel at period end" danger busy={cancel.isPending}
      onConfirm={() => cancel.mutate()} onClose={onClose}>
      <p>{plan.name} runs until {day(sub.current_period_end)}, with its credits; nothing more is charged. Then you move to the Free plan. You can resume until then.</p>
      {cancel.error && <ErrorNote error={cancel.error} what="Canceling" />}
    </Confirm>
  )
}
