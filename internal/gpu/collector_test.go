package gpu

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollectorExportsSamples(t *testing.T) {
	t.Parallel()
	h, _ := openFake(t, 2)
	h.record(0, Sample{Utilization: 0.75, MemoryUsed: 3 << 30, MemoryTotal: 24 << 30, TemperatureC: 61,
		PowerW: 142.5, ECC: &ECCCounts{Corrected: 2}})
	// GPU 1 reports no power or ECC (as a MIG slice or a consumer board
	// would) and is too hot.
	h.record(1, Sample{Utilization: 0, MemoryUsed: 0, MemoryTotal: 24 << 30, TemperatureC: 90, PowerW: nan})
	want := `
# HELP easel_gpu_ecc_errors_total ECC errors since the driver loaded, by type (corrected, uncorrected).
# TYPE easel_gpu_ecc_errors_total counter
easel_gpu_ecc_errors_total{gpu="0",tier="a10g",type="corrected"} 2
easel_gpu_ecc_errors_total{gpu="0",tier="a10g",type="uncorrected"} 0
# HELP easel_gpu_healthy 1 while the GPU takes renders; 0 once taken out of service (XID, uncorrectable ECC, heat).
# TYPE easel_gpu_healthy gauge
easel_gpu_healthy{gpu="0",tier="a10g"} 1
easel_gpu_healthy{gpu="1",tier="a10g"} 0
# HELP easel_gpu_info A GPU of this worker, with its model name and UUID (always 1).
# TYPE easel_gpu_info gauge
easel_gpu_info{gpu="0",name="NVIDIA A10G",tier="a10g",uuid="GPU-00000000"} 1
easel_gpu_info{gpu="1",name="NVIDIA A10G",tier="a10g",uuid="GPU-00000001"} 1
# HELP easel_gpu_memory_total_bytes GPU memory in all.
# TYPE easel_gpu_memory_total_bytes gauge
easel_gpu_memory_total_bytes{gpu="0",tier="a10g"} 2.5769803776e+10
easel_gpu_memory_total_bytes{gpu="1",tier="a10g"} 2.5769803776e+10
# HELP easel_gpu_memory_used_bytes GPU memory in use.
# TYPE easel_gpu_memory_used_bytes gauge
easel_gpu_memory_used_bytes{gpu="0",tier="a10g"} 3.221225472e+09
easel_gpu_memory_used_bytes{gpu="1",tier="a10g"} 0
# HELP easel_gpu_power_watts GPU board power draw.
# TYPE easel_gpu_power_watts gauge
easel_gpu_power_watts{gpu="0",tier="a10g"} 142.5
# HELP easel_gpu_temperature_celsius GPU core temperature.
# TYPE easel_gpu_temperature_celsius gauge
easel_gpu_temperature_celsius{gpu="0",tier="a10g"} 61
easel_gpu_temperature_celsius{gpu="1",tier="a10g"} 90
# HELP easel_gpu_utilization_ratio Share of the last sample period during which a kernel ran (0..1).
# TYPE easel_gpu_utilization_ratio gauge
easel_gpu_utilization_ratio{gpu="0",tier="a10g"} 0.75
easel_gpu_utilization_ratio{gpu="1",tier="a10g"} 0
`
	if err := testutil.CollectAndCompare(h.Collector(), strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(h.Collector())
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}
