package autoscale

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The autoscaler's observations, exported by the control worker that runs
// it: what each tier's queue holds and how many GPU hosts serve it.
var (
	queueBacklog = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "easel_queue_backlog",
		Help: "Renders waiting on a GPU tier's task queue (DescribeTaskQueue's approximate backlog).",
	}, []string{"tier"})
	queueBacklogAge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "easel_queue_backlog_age_seconds",
		Help: "Age of the oldest render waiting on a GPU tier's task queue.",
	}, []string{"tier"})
	gpuCapacity = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "easel_gpu_hosts",
		Help: "GPU hosts serving a tier, as its autoscaling driver reports.",
	}, []string{"tier"})
)
