package api

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/easel/easel/internal/store"
)

// BusinessCollector exports the business gauges (MRR, live subscriptions
// by plan, active users) from the database when Prometheus scrapes. The
// figures are cached for a minute, so frequent scrapes of several API tasks
// cost one query set a minute each.
type BusinessCollector struct {
	Store *store.Store

	mu      sync.Mutex
	at      time.Time
	summary store.BillingSummary
	active  int
	err     error
}

var (
	mrrDesc = prometheus.NewDesc("easel_mrr_cents",
		"Monthly recurring revenue of trialing, active and past-due subscriptions, in cents.", nil, nil)
	subscriptionsDesc = prometheus.NewDesc("easel_subscriptions",
		"Live subscriptions by plan.", []string{"plan"}, nil)
	activeUsersDesc = prometheus.NewDesc("easel_active_users",
		"Users who generated an image in the last 24 hours.", nil, nil)
	pastDueDesc = prometheus.NewDesc("easel_subscriptions_past_due",
		"Subscriptions in dunning.", nil, nil)
)

// Describe implements prometheus.Collector.
func (b *BusinessCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- mrrDesc
	ch <- subscriptionsDesc
	ch <- activeUsersDesc
	ch <- pastDueDesc
}

// Collect implements prometheus.Collector.
func (b *BusinessCollector) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.at) > time.Minute {
		b.refresh()
	}
	if b.err != nil {
		ch <- prometheus.NewInvalidMetric(mrrDesc, b.err)
		return
	}
	ch <- prometheus.MustNewConstMetric(mrrDesc, prometheus.GaugeValue, float64(b.summary.MRRCents))
	ch <- prometheus.MustNewConstMetric(pastDueDesc, prometheus.GaugeValue, float64(b.summary.PastDue))
	ch <- prometheus.MustNewConstMetric(activeUsersDesc, prometheus.GaugeValue, float64(b.active))
	for plan, n := range b.summary.ActiveByPlan {
		ch <- prometheus.MustNewConstMetric(subscriptionsDesc, prometheus.GaugeValue, float64(n), plan)
	}
}

func (b *BusinessCollector) refresh() {
	// The API's pool works under row-level security: these totals span
	// every tenant, so they read in the administrator's scope.
	ctx, cancel := context.WithTimeout(store.WithScope(context.Background(), store.Scope{Admin: true}), 5*time.Second)
	defer cancel()
	b.at = time.Now()
	if b.summary, b.err = b.Store.SubscriptionTotals(ctx); b.err != nil {
		return
	}
	b.active, b.err = b.Store.ActiveUsers(ctx, time.Now().Add(-24*time.Hour))
}
