package api

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	httpRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "easel_http_requests_total",
		Help: "HTTP requests by method, route and status.",
	}, []string{"method", "route", "status"})
	httpDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "easel_http_request_duration_seconds",
		Help:    "HTTP request latency by method and route.",
		Buckets: prometheus.ExponentialBuckets(0.002, 2, 13),
	}, []string{"method", "route"})
	httpInFlight = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "easel_http_requests_in_flight",
		Help: "HTTP requests being served (SSE streams included).",
	})
	admissions = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "easel_generation_admissions_total",
		Help: "Generation requests by outcome (admitted, insufficient_credits, concurrency_limit, invalid, replayed).",
	}, []string{"outcome", "plan"})
)

// measure records every request's count and latency under its route
// template, so ids never become label values.
func (s *Server) measure(c *gin.Context) {
	start := time.Now()
	httpInFlight.Inc()
	defer httpInFlight.Dec()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	httpRequests.WithLabelValues(c.Request.Method, route, strconv.Itoa(c.Writer.Status())).Inc()
	httpDuration.WithLabelValues(c.Request.Method, route).Observe(time.Since(start).Seconds())
}

func metricsHandler() gin.HandlerFunc {
	return gin.WrapH(promhttp.Handler())
}
