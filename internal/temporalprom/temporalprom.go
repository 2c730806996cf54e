// Package temporalprom exports the Temporal Go SDK's metrics (workflow and
// activity task latencies, poll results, request failures, sticky cache)
// to Prometheus through client_golang, so workers and the API serve them on
// the same /metrics as Easel's own. The SDK's own adapter
// (go.temporal.io/sdk/contrib/tally) is not available from the module
// proxy this project builds with, hence this small one.
package temporalprom

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// labelNames are the tags the SDK sets (its internal/common/metrics
// constants). Prometheus needs one label set per metric name, so every
// metric gets all of them; a tag the SDK did not set is an empty label,
// which Prometheus treats as absent. Tags outside this list are dropped.
var labelNames = []string{"namespace", "task_queue", "workflow_type", "activity_type", "operation",
	"worker_type", "poller_type", "client_name", "failure_reason", "cause", "nexus_service", "nexus_operation"}

// Handler is a client.MetricsHandler backed by Prometheus collectors.
type Handler struct {
	m    *metrics
	tags map[string]string
}

type metrics struct {
	reg        prometheus.Registerer
	mu         sync.Mutex
	counters   map[string]*prometheus.CounterVec
	gauges     map[string]*prometheus.GaugeVec
	histograms map[string]*prometheus.HistogramVec
}

// New returns a handler registering its collectors with reg.
func New(reg prometheus.Registerer) *Handler {
	return &Handler{m: &metrics{reg: reg, counters: map[string]*prometheus.CounterVec{},
		gauges: map[string]*prometheus.GaugeVec{}, histograms: map[string]*prometheus.HistogramVec{}}}
}

var _ client.MetricsHandler = (*Handler)(nil)

// WithTags returns a handler whose metrics carry tags as well.
func (h *Handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return &Handler{m: h.m, tags: merged}
}

func (h *Handler) labels() prometheus.Labels {
	l := make(prometheus.Labels, len(labelNames))
	for _, n := range labelNames {
		l[n] = h.tags[n]
	}
	return l
}

// Counter counts in name_total, or in name itself when it already ends in
// _total (the SDK's local_activity_total): the suffix is never doubled.
func (h *Handler) Counter(name string) client.MetricsCounter {
	c := h.m.counter(withSuffix(promName(name), "_total")).With(h.labels())
	return counterFunc(func(d int64) { c.Add(float64(d)) })
}

// Gauge sets name.
func (h *Handler) Gauge(name string) client.MetricsGauge {
	g := h.m.gauge(promName(name)).With(h.labels())
	return gaugeFunc(g.Set)
}

// Timer observes durations in the histogram name_seconds (name itself when
// it already ends in _seconds).
func (h *Handler) Timer(name string) client.MetricsTimer {
	o := h.m.histogram(withSuffix(promName(name), "_seconds")).With(h.labels())
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

type (
	counterFunc func(int64)
	gaugeFunc   func(float64)
	timerFunc   func(time.Duration)
)

func (f counterFunc) Inc(d int64)          { f(d) }
func (f gaugeFunc) Update(v float64)       { f(v) }
func (f timerFunc) Record(d time.Duration) { f(d) }

// promName makes an SDK metric name a valid Prometheus name.
func promName(name string) string {
	return strings.NewReplacer(".", "_", "-", "_").Replace(name)
}

// withSuffix appends Prometheus's unit or type suffix to name unless name
// already ends in it.
func withSuffix(name, suffix string) string {
	if strings.HasSuffix(name, suffix) {
		return name
	}
	return name + suffix
}

func (m *metrics) counter(name string) *prometheus.CounterVec {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.counters[name]; ok {
		return v
	}
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: "Temporal SDK counter " + name + "."}, labelNames)
	m.counters[name] = register(m.reg, v)
	return m.counters[name]
}

func (m *metrics) gauge(name string) *prometheus.GaugeVec {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.gauges[name]; ok {
		return v
	}
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "Temporal SDK gauge " + name + "."}, labelNames)
	m.gauges[name] = register(m.reg, v)
	return m.gauges[name]
}

func (m *metrics) histogram(name string) *prometheus.HistogramVec {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.histograms[name]; ok {
		return v
	}
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: "Temporal SDK latency " + name + ".",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, labelNames)
	m.histograms[name] = register(m.reg, v)
	return m.histograms[name]
}

// register adds c to reg, or returns the collector already registered under
// its name (a second client in the same process shares it).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
