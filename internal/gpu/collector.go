package gpu

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
)

// hostMetrics are the counters the host keeps itself (the gauges come from
// the latest samples at scrape time).
type hostMetrics struct {
	busySeconds *prometheus.CounterVec
	xidEvents   *prometheus.CounterVec
}

func newHostMetrics() hostMetrics {
	return hostMetrics{
		busySeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easel_gpu_busy_seconds_total",
			Help: "GPU seconds charged to renders (accounted kernel time, or device-held wall time).",
		}, []string{"tier", "gpu"}),
		xidEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easel_gpu_xid_events_total",
			Help: "XID error events reported by the driver, by code.",
		}, []string{"tier", "gpu", "xid"}),
	}
}

var gpuLabels = []string{"tier", "gpu"}

var (
	descInfo = prometheus.NewDesc("easel_gpu_info", "A GPU of this worker, with its model name and UUID (always 1).",
		[]string{"tier", "gpu", "name", "uuid"}, nil)
	descUtil = prometheus.NewDesc("easel_gpu_utilization_ratio",
		"Share of the last sample period during which a kernel ran (0..1).", gpuLabels, nil)
	descMemUsed  = prometheus.NewDesc("easel_gpu_memory_used_bytes", "GPU memory in use.", gpuLabels, nil)
	descMemTotal = prometheus.NewDesc("easel_gpu_memory_total_bytes", "GPU memory in all.", gpuLabels, nil)
	descTemp     = prometheus.NewDesc("easel_gpu_temperature_celsius", "GPU core temperature.", gpuLabels, nil)
	descPower    = prometheus.NewDesc("easel_gpu_power_watts", "GPU board power draw.", gpuLabels, nil)
	descECC      = prometheus.NewDesc("easel_gpu_ecc_errors_total",
		"ECC errors since the driver loaded, by type (corrected, uncorrected).",
		[]string{"tier", "gpu", "type"}, nil)
	descHealthy = prometheus.NewDesc("easel_gpu_healthy",
		"1 while the GPU takes renders; 0 once taken out of service (XID, uncorrectable ECC, heat).", gpuLabels, nil)
)

// Collector exports the host's GPUs as Prometheus metrics. Register it only
// for a host with NVML: without a driver there is nothing to report.
func (h *Host) Collector() prometheus.Collector { return collector{h} }

type collector struct{ h *Host }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descUtil, descMemUsed, descMemTotal, descTemp, descPower,
		descECC, descHealthy} {
		ch <- d
	}
	c.h.metrics.busySeconds.Describe(ch)
	c.h.metrics.xidEvents.Describe(ch)
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	h.mu.Lock()
	samples := make(map[int]Sample, len(h.samples))
	for i, s := range h.samples {
		samples[i] = s
	}
	h.mu.Unlock()
	for _, i := range h.order {
		gpu := gpuLabel(i)
		ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, h.tier, gpu, h.infos[i].Name,
			h.infos[i].UUID)
		ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, boolValue(h.pool.Healthy(i)), h.tier, gpu)
		if s, ok := samples[i]; ok {
			collectSample(ch, h.tier, gpu, s)
		}
	}
	h.metrics.busySeconds.Collect(ch)
	h.metrics.xidEvents.Collect(ch)
}

// collectSample emits one device's reading; figures the device does not
// report are left out rather than exported as NaN.
func collectSample(ch chan<- prometheus.Metric, tier, gpu string, s Sample) {
	gauge := func(d *prometheus.Desc, v float64) {
		if !math.IsNaN(v) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, tier, gpu)
		}
	}
	gauge(descUtil, s.Utilization)
	gauge(descMemUsed, float64(s.MemoryUsed))
	gauge(descMemTotal, float64(s.MemoryTotal))
	gauge(descTemp, s.TemperatureC)
	gauge(descPower, s.PowerW)
	if s.ECC != nil {
		ch <- prometheus.MustNewConstMetric(descECC, prometheus.CounterValue, float64(s.ECC.Corrected), tier, gpu, "corrected")
		ch <- prometheus.MustNewConstMetric(descECC, prometheus.CounterValue, float64(s.ECC.Uncorrected), tier, gpu, "uncorrected")
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
