package temporalserver

import (
	"math"

	"go.temporal.io/server/common/dynamicconfig"
)

// defaultDynamicConfig is what easel needs from the server beyond stock
// defaults. Keys are spelled out (rather than taken from the dynamicconfig
// settings) so that callers overriding them via Options.DynamicConfig can
// grep for the same string.
func defaultDynamicConfig() map[string]any {
	return map[string]any{
		// Updates and Update-With-Start. Both are on by default in this
		// server version (ExecuteMultiOperation has no switch anymore); set
		// explicitly so a changed default cannot silently break easel.
		"frontend.enableUpdateWorkflowExecution":              true,
		"frontend.enableUpdateWorkflowExecutionAsyncAccepted": true,

		// Task queue priority needs the priority-aware matcher (default on);
		// fairness keys additionally need the fairness backlog.
		"matching.useNewMatcher":  true,
		"matching.enableFairness": true,

		// Let a workflow task completion hand activities straight back to
		// the same worker instead of a round trip through matching.
		"system.enableActivityEagerExecution": true,

		// One partition per task queue instead of 4: a single node gains
		// nothing from partitioning, and with one partition priority and
		// fairness order tasks across the whole queue rather than per
		// partition. (Measured: no effect on dispatch latency.)
		"matching.numTaskqueueReadPartitions":  1,
		"matching.numTaskqueueWritePartitions": 1,

		// Dispatch latency. History moves every new workflow/activity task
		// to matching through queue processors whose reads are rate limited
		// to 20/s, so each sequential hop (scheduled -> started) waited for
		// the next token: ~40-46 ms per hop, ~150 ms p50 for a workflow with
		// one activity on another task queue. At 1000/s a hop takes 2-5 ms
		// and BenchmarkWorkflowOneActivity went from 137.8 to 28.3 ms/op
		// (p50 149.8 -> 24.0 ms). Reads are still triggered by new-task
		// notifications, so an idle server does not poll more.
		"history.transferProcessorMaxPollRPS":   1000,
		"history.timerProcessorMaxPollRPS":      1000, // timers, timeouts, retries backoff
		"history.visibilityProcessorMaxPollRPS": 1000, // list/search results appear sooner
		"history.outboundProcessorMaxPollRPS":   1000, // Nexus and callbacks

		// Worker heartbeats (RecordWorkerHeartbeat, listed by ListWorkers):
		// the autoscaler reads GPU hosts' busy slots from them
		// (AUTOSCALE_HOST_ACTIVITY=heartbeats). On by default in this server
		// version; set explicitly so a changed default cannot silently
		// blind the autoscaler.
		"frontend.WorkerHeartbeatsEnabled": true,

		// Search attributes added at runtime (restart with a new attribute)
		// become visible immediately instead of after the cache refresh.
		"system.forceSearchAttributesCacheRefreshOnRead": true,
	}
}

// dynamicConfig merges caller overrides over the defaults.
func dynamicConfig(overrides map[string]any) dynamicconfig.StaticClient {
	client := dynamicconfig.StaticClient{}
	for k, v := range defaultDynamicConfig() {
		client[dynamicconfig.MakeKey(k)] = v
	}
	for k, v := range overrides {
		client[dynamicconfig.MakeKey(k)] = fromJSON(v)
	}
	return client
}

// fromJSON undoes JSON's number widening: dynamic config converters accept
// Go ints for integer settings but not float64, which is what encoding/json
// decodes every number to.
func fromJSON(v any) any {
	switch v := v.(type) {
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int(v)
		}
		return v
	case []any:
		for i := range v {
			v[i] = fromJSON(v[i])
		}
		return v
	case map[string]any:
		for k := range v {
			v[k] = fromJSON(v[k])
		}
		return v
	default:
		return v
	}
}
