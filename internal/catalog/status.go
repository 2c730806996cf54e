package catalog

// Job statuses: a generation is queued, running, maybe canceling, then
// completed, failed or canceled (terminal). The same words are stored in
// generations.status, published on the progress stream and returned by the
// API.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobCanceling = "canceling" // cancel asked; the hold is not yet released
	JobCompleted = "completed"
	JobFailed    = "failed"
	JobCanceled  = "canceled"
)

// JobTerminal reports whether a job has ended.
func JobTerminal(status string) bool {
	return status == JobCompleted || status == JobFailed || status == JobCanceled
}

// Subscription statuses, as stored in user_subscriptions.status and
// reported by the subscription workflow.
const (
	// SubIncomplete is a checkout: a paid subscription waiting for its card
	// or its first payment, beside the free subscription still in effect.
	SubIncomplete = "incomplete"
	// SubExpired is a checkout that got no card in time.
	SubExpired    = "expired"
	SubTrialing   = "trialing"
	SubActive     = "active"
	SubPastDue    = "past_due"
	SubCanceled   = "canceled"
	SubDowngraded = "downgraded" // dunning ran out: the user is on the free plan
)
