package activities

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	renderSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "easel_render_seconds",
		Help:    "Device time per rendered image, by GPU tier and model family.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
	}, []string{"tier", "model"})
	imagesGenerated = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "easel_images_generated_total",
		Help: "Images rendered and stored, by GPU tier.",
	}, []string{"tier"})
	renderFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "easel_render_failures_total",
		Help: "Failed render attempts by GPU tier and kind (canceled, invalid, retryable).",
	}, []string{"tier", "kind"})
	creditsSettled = promauto.NewCounter(prometheus.CounterOpts{
		Name: "easel_credits_settled_total",
		Help: "Credits charged for finished generations.",
	})
	jobDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "easel_generation_duration_seconds",
		Help:    "Time from admission to settlement of completed generations, by GPU tier (queue wait included).",
		Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
	}, []string{"tier"})
	jobsFinished = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "easel_generations_finished_total",
		Help: "Generations that ended, by status (completed, failed, canceled).",
	}, []string{"status"})
)
