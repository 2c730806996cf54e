package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/easel/easel/internal/autoscale"
	"github.com/easel/easel/internal/catalog"
)

// --- docker-compose.yml ---

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	Command     any            `yaml:"command"`
	Entrypoint  any            `yaml:"entrypoint"`
	Environment any            `yaml:"environment"`
	DependsOn   any            `yaml:"depends_on"`
	Volumes     []string       `yaml:"volumes"`
	Ports       []string       `yaml:"ports"`
	Healthcheck map[string]any `yaml:"healthcheck"`
}

// easelImage is the image every easel service of the Compose file runs.
const easelImage = "easel:local"

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, filepath.Join(root(t), "docker-compose.yml"), &c)
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return c
}

// envNames are the variable names of a Compose environment (a map or a
// list of NAME=value).
func envNames(t *testing.T, service string, env any) []string {
	var names []string
	switch env := env.(type) {
	case nil:
	case map[string]any:
		for k := range env {
			names = append(names, k)
		}
	case []any:
		for _, e := range env {
			s, ok := e.(string)
			if !ok {
				t.Errorf("compose service %s: environment entry %v is not a string", service, e)
				continue
			}
			name, _, _ := strings.Cut(s, "=")
			names = append(names, name)
		}
	default:
		t.Errorf("compose service %s: environment is a %T", service, env)
	}
	slices.Sort(names)
	return names
}

func words(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, w := range v {
			out = append(out, fmt.Sprint(w))
		}
		return out
	}
	return nil
}

func dependsOn(v any) []string {
	switch v := v.(type) {
	case []any:
		return words(v)
	case map[string]any:
		return sortedKeys(v)
	}
	return nil
}

// TestComposeEnvironment: every variable set on an easel service is one
// config.Config reads (or, for the local S3 store's keys, the AWS SDK).
func TestComposeEnvironment(t *testing.T) {
	c := loadCompose(t)
	known := configEnv(t)
	easel := 0
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if s.Image != easelImage {
			continue
		}
		easel++
		for _, env := range envNames(t, name, s.Environment) {
			if !known[env] && !sdkEnv[env] {
				t.Errorf("compose service %s sets %s, which config.Config does not read", name, env)
			}
		}
	}
	if easel < 4 {
		t.Fatalf("docker-compose.yml has %d services on %s; want migrate, api, control worker and a GPU worker", easel, easelImage)
	}
}

// TestComposeStack: the services the stack needs are there and wired.
func TestComposeStack(t *testing.T) {
	c := loadCompose(t)
	find := func(what string, ok func(name string, s composeService) bool) string {
		for _, name := range sortedKeys(c.Services) {
			if ok(name, c.Services[name]) {
				return name
			}
		}
		t.Errorf("docker-compose.yml has no %s", what)
		return ""
	}
	image := func(prefixes ...string) func(string, composeService) bool {
		return func(_ string, s composeService) bool {
			return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(s.Image, p) })
		}
	}
	command := func(want string) func(string, composeService) bool {
		return func(_ string, s composeService) bool {
			return s.Image == easelImage && strings.Join(words(s.Command), " ") == want
		}
	}
	find("Postgres 16", image("postgres:16"))
	find("Redis 7", image("redis:7"))
	find("Temporal server", image("temporalio/server:", "temporalio/auto-setup:"))
	find("Temporal UI", image("temporalio/ui:"))
	find("S3-compatible store", image("versity/versitygw:", "minio/minio:"))
	find("migration (easel migrate up)", command("migrate up"))
	find("API (easel api)", command("api"))
	find("control-plane worker", command("worker --role control"))
	find("sim GPU worker for t4", command("worker --role gpu --tier t4 --engine sim"))

	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if s.Image == "" && s.Build == nil {
			t.Errorf("compose service %s has neither image nor build", name)
		}
		for _, dep := range dependsOn(s.DependsOn) {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("compose service %s depends on %s, which does not exist", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join(root(t), src)); err != nil {
					t.Errorf("compose service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("compose service %s mounts volume %s, which is not declared", name, src)
			}
		}
		if s.Image == easelImage && s.Build == nil {
			t.Errorf("compose service %s runs %s without building it", name, easelImage)
		}
	}
}

// --- ECS task definition templates ---

type taskDefinition struct {
	Family               string              `json:"family"`
	NetworkMode          string              `json:"networkMode"`
	PIDMode              string              `json:"pidMode"`
	Compatibilities      []string            `json:"requiresCompatibilities"`
	CPU                  string              `json:"cpu"`
	Memory               string              `json:"memory"`
	ExecutionRoleArn     string              `json:"executionRoleArn"`
	TaskRoleArn          string              `json:"taskRoleArn"`
	Containers           []containerDef      `json:"containerDefinitions"`
	Volumes              []volumeDef         `json:"volumes"`
	PlacementConstraints []map[string]string `json:"placementConstraints"`
}

type containerDef struct {
	Name         string            `json:"name"`
	Image        string            `json:"image"`
	Essential    bool              `json:"essential"`
	Command      []string          `json:"command"`
	Environment  []nameValue       `json:"environment"`
	Secrets      []nameValueFrom   `json:"secrets"`
	PortMappings []portMapping     `json:"portMappings"`
	HealthCheck  *healthCheck      `json:"healthCheck"`
	DependsOn    []dependency      `json:"dependsOn"`
	Resources    []resourceReq     `json:"resourceRequirements"`
	MountPoints  []mountPoint      `json:"mountPoints"`
	DockerLabels map[string]string `json:"dockerLabels"`
	StopTimeout  int               `json:"stopTimeout"`
	MemoryMiB    int               `json:"memoryReservation"`
	Log          *struct {
		Driver  string            `json:"logDriver"`
		Options map[string]string `json:"options"`
	} `json:"logConfiguration"`
}

type nameValue struct{ Name, Value string }
type nameValueFrom struct {
	Name      string `json:"name"`
	ValueFrom string `json:"valueFrom"`
}
type portMapping struct {
	ContainerPort int `json:"containerPort"`
}
type healthCheck struct {
	Command []string `json:"command"`
}
type dependency struct{ ContainerName, Condition string }
type resourceReq struct{ Type, Value string }
type mountPoint struct {
	SourceVolume, ContainerPath string
	ReadOnly                    bool `json:"readOnly"`
}
type volumeDef struct {
	Name string         `json:"name"`
	EFS  map[string]any `json:"efsVolumeConfiguration"`
	Host *struct {
		SourcePath string `json:"sourcePath"`
	} `json:"host"`
}

// easelContainers: container name -> the image placeholder it must run;
// deploy/scripts/ecs-deploy.sh swaps images by these names.
var easelContainers = map[string]string{
	"easel-api":            "${easel_image}",
	"easel-control-worker": "${easel_image}",
	"easel-migrate":        "${easel_image}",
	"easel-gpu-worker":     "${gpu_image}",
}

func loadTaskDefinitions(t *testing.T) map[string]taskDefinition {
	t.Helper()
	out := map[string]taskDefinition{}
	for _, path := range glob(t, filepath.Join(root(t), "deploy", "ecs", "*.json")) {
		var td taskDefinition
		if err := json.Unmarshal(read(t, path), &td); err != nil {
			t.Fatalf("%s: %v", rel(t, path), err)
		}
		out[filepath.Base(path)] = td
	}
	return out
}

var placeholderOnly = regexp.MustCompile(`^\$\{[a-z_]+\}$`)

// TestECSTaskDefinitions: the templates' easel containers get only
// variables config.Config reads, secrets only from Secrets Manager, logs
// through awslogs; GPU templates match their tier.
func TestECSTaskDefinitions(t *testing.T) {
	known := configEnv(t)
	tds := loadTaskDefinitions(t)
	for _, want := range []string{"api.json", "control-worker.json", "migrate.json", "gpu-worker-t4.json", "gpu-worker-a10g.json", "gpu-worker-a100.json"} {
		if _, ok := tds[want]; !ok {
			t.Errorf("deploy/ecs/%s is missing", want)
		}
	}
	seen := map[string]bool{}
	for _, file := range sortedKeys(tds) {
		td := tds[file]
		where := "deploy/ecs/" + file
		if td.Family != "${name}" || !placeholderOnly.MatchString(td.ExecutionRoleArn) || td.NetworkMode != "awsvpc" {
			t.Errorf("%s: family %q, executionRoleArn %q, networkMode %q: want placeholders and awsvpc", where, td.Family, td.ExecutionRoleArn, td.NetworkMode)
		}
		if len(td.Containers) == 0 {
			t.Errorf("%s has no containers", where)
		}
		for _, c := range td.Containers {
			cw := where + " container " + c.Name
			if c.Log == nil || c.Log.Driver != "awslogs" || c.Log.Options["awslogs-group"] == "" || c.Log.Options["awslogs-region"] == "" || c.Log.Options["awslogs-stream-prefix"] == "" {
				t.Errorf("%s does not log through awslogs with group, region and stream prefix", cw)
			}
			if !c.Essential {
				t.Errorf("%s is not essential", cw)
			}
			wantImage, isEasel := easelContainers[c.Name]
			if !isEasel {
				if c.Image == "${easel_image}" || c.Image == "${gpu_image}" {
					t.Errorf("%s runs an easel image under a name ecs-deploy.sh does not know", cw)
				}
				continue
			}
			seen[c.Name] = true
			if c.Image != wantImage {
				t.Errorf("%s runs %s, want %s", cw, c.Image, wantImage)
			}
			names := map[string]bool{}
			for _, e := range c.Environment {
				if !known[e.Name] {
					t.Errorf("%s sets %s, which config.Config does not read", cw, e.Name)
				}
				if secretEnv[e.Name] {
					t.Errorf("%s passes %s as plain environment; it belongs in secrets", cw, e.Name)
				}
				names[e.Name] = true
			}
			for _, s := range c.Secrets {
				if !known[s.Name] {
					t.Errorf("%s gets secret %s, which config.Config does not read", cw, s.Name)
				}
				if names[s.Name] {
					t.Errorf("%s sets %s both as environment and as a secret", cw, s.Name)
				}
				if !placeholderOnly.MatchString(s.ValueFrom) {
					t.Errorf("%s: secret %s comes from %q, want a Secrets Manager ARN placeholder", cw, s.Name, s.ValueFrom)
				}
			}
		}
		if strings.HasPrefix(file, "gpu-worker-") {
			checkGPUTask(t, where, strings.TrimSuffix(strings.TrimPrefix(file, "gpu-worker-"), ".json"), td)
		}
	}
	for name := range easelContainers {
		if !seen[name] {
			t.Errorf("no task definition runs %s", name)
		}
	}

	api := tds["api.json"]
	if len(api.Containers) > 0 {
		c := api.Containers[0]
		if len(c.PortMappings) != 1 || c.PortMappings[0].ContainerPort != 8080 || !slices.Equal(c.Command, []string{"api"}) {
			t.Errorf("deploy/ecs/api.json: easel-api must run `api` on port 8080 (deployment guide 3.2)")
		}
		if c.HealthCheck == nil || !slices.ContainsFunc(c.HealthCheck.Command, func(s string) bool { return strings.HasSuffix(s, healthPath) }) {
			t.Errorf("deploy/ecs/api.json: the health check must probe %s", healthPath)
		}
		// Image links are CloudFront signed URLs (storage.CloudFrontURLs):
		// the host and key pair id as environment, rendered by
		// terraform/modules/ecs; the private key only from Secrets Manager.
		// config.Validate wants all three or none.
		for name, want := range map[string]string{"CLOUDFRONT_DOMAIN": "${cloudfront_domain}", "CLOUDFRONT_KEY_ID": "${cloudfront_key_id}"} {
			if v := envValue(c, name); v != want {
				t.Errorf("deploy/ecs/api.json: %s=%q, want %s", name, v, want)
			}
		}
		if v := secretFrom(c, "CLOUDFRONT_PRIVATE_KEY"); v == "" {
			t.Error("deploy/ecs/api.json: CLOUDFRONT_PRIVATE_KEY is not a secret of easel-api (the /images/* signing key in Secrets Manager)")
		}
	}
	if cw := tds["control-worker.json"]; len(cw.Containers) > 0 {
		// Seed 8.2 "Credit Balance Low -> e-mail to user": the control
		// worker's notify.LowBalance sends through SES.
		if v := envValue(cw.Containers[0], "NOTIFY_SENDER"); v != "ses" {
			t.Errorf("deploy/ecs/control-worker.json: NOTIFY_SENDER=%q, want ses (low-balance e-mails)", v)
		}
		// Seed 4 queue-depth scaling: the control worker runs the GPU
		// autoscaler on the tiers' Auto Scaling groups, which Terraform
		// names (terraform/modules/ecs renders ${autoscale_groups}).
		if d, g := envValue(cw.Containers[0], "AUTOSCALE_DRIVER"), envValue(cw.Containers[0], "AUTOSCALE_GROUPS"); d != "ec2" || g != "${autoscale_groups}" {
			t.Errorf("deploy/ecs/control-worker.json: AUTOSCALE_DRIVER=%q AUTOSCALE_GROUPS=%q, want ec2 and ${autoscale_groups}", d, g)
		}
	}
}

func envValue(c containerDef, name string) string {
	for _, e := range c.Environment {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// secretFrom is where the secret name of c comes from ("" if c has none).
func secretFrom(c containerDef, name string) string {
	for _, s := range c.Secrets {
		if s.Name == name {
			return s.ValueFrom
		}
	}
	return ""
}

// invokeAIBasePort is the port of the first InvokeAI server of a GPU task;
// server i listens on invokeAIBasePort+i.
const invokeAIBasePort = 9090

// checkGPUTask: a GPU task runs the worker and one InvokeAI server per GPU of
// the tier's hosts (autoscale.TierSpecs). The worker reserves every GPU of
// the host, which makes the task a GPU task (ECS starts its containers that
// name NVIDIA_VISIBLE_DEVICES on the nvidia runtime) and shows the worker
// all GPUs in NVML order; server i reserves none and names GPU i itself
// (NVIDIA_VISIBLE_DEVICES=i), since the GPUs ECS hands to reserving
// containers come in no guaranteed order. INVOKEAI_URL lists the servers in
// GPU order, so engine.PerDevice sends a render pinned to GPU i to server i.
func checkGPUTask(t *testing.T, where, tier string, td taskDefinition) {
	spec, ok := autoscale.TierSpecs[tier]
	if !ok || spec.GPUs < 1 {
		t.Errorf("%s: autoscale.TierSpecs has no GPU count for tier %s", where, tier)
		return
	}
	var worker *containerDef
	servers := map[int]*containerDef{}
	for i, c := range td.Containers {
		switch {
		case c.Name == "easel-gpu-worker":
			worker = &td.Containers[i]
		case strings.HasPrefix(c.Name, "invokeai-"):
			n, err := strconv.Atoi(strings.TrimPrefix(c.Name, "invokeai-"))
			if err != nil || n < 0 || strconv.Itoa(n) != strings.TrimPrefix(c.Name, "invokeai-") {
				t.Errorf("%s: InvokeAI container %s is not named invokeai-<GPU index>", where, c.Name)
				continue
			}
			servers[n] = &td.Containers[i]
		default:
			t.Errorf("%s: unexpected container %s", where, c.Name)
		}
	}
	if worker == nil {
		t.Errorf("%s: no easel-gpu-worker container", where)
		return
	}
	cmd := strings.Join(worker.Command, " ")
	if !strings.HasPrefix(cmd, "--tier "+tier+" ") {
		t.Errorf("%s: the worker runs %q, want --tier %s", where, cmd, tier)
	}
	if len(td.PlacementConstraints) != 1 || td.PlacementConstraints[0]["expression"] != "attribute:easel.tier == "+tier {
		t.Errorf("%s: tasks must be placed on %s hosts (attribute:easel.tier == %s)", where, tier, tier)
	}

	// One InvokeAI server per GPU of the host: invokeai-0 .. invokeai-<N-1>.
	if len(servers) != spec.GPUs {
		t.Errorf("%s: %d InvokeAI containers, but %s hosts (%s) have %d GPUs", where, len(servers), tier, spec.Instance, spec.GPUs)
	}
	gpuReservation := func(c containerDef) int {
		n := 0
		for _, r := range c.Resources {
			if r.Type == "GPU" {
				v, err := strconv.Atoi(r.Value)
				if err != nil || v < 1 {
					t.Errorf("%s container %s: GPU reservation %q", where, c.Name, r.Value)
				}
				n += v
			}
		}
		return n
	}
	// The worker holds the host's GPUs (ECS sets its NVIDIA_VISIBLE_DEVICES
	// to all of them: NVML telemetry, health, VRAM admission) and renders
	// one image per GPU (GPU_SLOTS is that count where NVML is missing).
	if got := gpuReservation(*worker); got != spec.GPUs {
		t.Errorf("%s: the worker reserves %d GPUs, want all %d of the host", where, got, spec.GPUs)
	}
	if slots := envValue(*worker, "GPU_SLOTS"); slots != strconv.Itoa(spec.GPUs) {
		t.Errorf("%s: GPU_SLOTS=%s, want %d (one slot per GPU)", where, slots, spec.GPUs)
	}
	metricsPort := strings.TrimPrefix(envValue(*worker, "METRICS_ADDR"), ":")
	if _, err := strconv.Atoi(metricsPort); err != nil {
		t.Errorf("%s: METRICS_ADDR=%q, want :<port>", where, envValue(*worker, "METRICS_ADDR"))
	}

	var urls []string
	ports := map[string]string{} // port -> container
	for i := range spec.GPUs {
		c := servers[i]
		if c == nil {
			t.Errorf("%s: no InvokeAI container for GPU %d (invokeai-%d)", where, i, i)
			continue
		}
		cw := where + " container " + c.Name
		if c.Image != "${invokeai_image}" {
			t.Errorf("%s runs %s, want ${invokeai_image}", cw, c.Image)
		}
		// GPU i, named by the server itself: a reservation would hand it
		// a GPU of ECS's choosing and overwrite NVIDIA_VISIBLE_DEVICES.
		if n := gpuReservation(*c); n != 0 {
			t.Errorf("%s reserves %d GPUs; it must name its GPU with NVIDIA_VISIBLE_DEVICES=%d instead", cw, n, i)
		}
		if v := envValue(*c, "NVIDIA_VISIBLE_DEVICES"); v != strconv.Itoa(i) {
			t.Errorf("%s: NVIDIA_VISIBLE_DEVICES=%q, want %d", cw, v, i)
		}
		if v := envValue(*c, "NVIDIA_DRIVER_CAPABILITIES"); !strings.Contains(v, "compute") {
			t.Errorf("%s: NVIDIA_DRIVER_CAPABILITIES=%q lacks compute (CUDA)", cw, v)
		}
		if v := envValue(*c, "CUDA_VISIBLE_DEVICES"); v != "" {
			t.Errorf("%s: CUDA_VISIBLE_DEVICES=%q; the container sees only its own GPU, as CUDA device 0", cw, v)
		}
		if h := envValue(*c, "INVOKEAI_HOST"); h != "127.0.0.1" {
			t.Errorf("%s: INVOKEAI_HOST=%q, want 127.0.0.1 (the task's loopback)", cw, h)
		}
		port := envValue(*c, "INVOKEAI_PORT")
		if want := strconv.Itoa(invokeAIBasePort + i); port != want {
			t.Errorf("%s: INVOKEAI_PORT=%q, want %s", cw, port, want)
		}
		if other, dup := ports[port]; dup {
			t.Errorf("%s listens on %s, as %s does", cw, port, other)
		}
		ports[port] = c.Name
		if port == metricsPort {
			t.Errorf("%s: the worker's metrics port %s collides with InvokeAI's", cw, metricsPort)
		}
		urls = append(urls, "http://127.0.0.1:"+port)
		if c.HealthCheck == nil || !slices.ContainsFunc(c.HealthCheck.Command, func(s string) bool {
			return strings.Contains(s, "http://127.0.0.1:"+port+healthPath)
		}) {
			t.Errorf("%s: the health check does not probe its own port (%s)", cw, port)
		}
		if !slices.ContainsFunc(worker.DependsOn, func(d dependency) bool { return d.ContainerName == c.Name && d.Condition == "HEALTHY" }) {
			t.Errorf("%s: the worker does not wait for %s to be healthy", where, c.Name)
		}
		// Each server has its own root (model database, outputs): in its
		// own container layer, not on a volume the others mount.
		root := envValue(*c, "INVOKEAI_ROOT")
		for _, m := range c.MountPoints {
			if root == "" || root == m.ContainerPath || strings.HasPrefix(root, strings.TrimSuffix(m.ContainerPath, "/")+"/") {
				t.Errorf("%s: INVOKEAI_ROOT=%q is on the shared volume %s", cw, root, m.SourceVolume)
			}
		}
		if !slices.ContainsFunc(c.MountPoints, func(m mountPoint) bool { return m.ContainerPath == "/models" }) || envValue(*c, "INVOKEAI_MODELS_DIR") != "/models" {
			t.Errorf("%s: the model cache (EFS) must be mounted at /models and be INVOKEAI_MODELS_DIR", cw)
		}
		checkModelCache(t, cw, tier, *c)
	}
	// NVML names GPU processes by host PID: the worker tells InvokeAI's
	// from others (VRAM admission) only when it sees the host's PIDs.
	if td.PIDMode != "host" {
		t.Errorf("%s: pidMode %q, want host (the worker reads GPU processes' command lines)", where, td.PIDMode)
	}
	// INVOKEAI_URL: the servers in GPU (NVML index) order.
	if url, want := envValue(*worker, "INVOKEAI_URL"), strings.Join(urls, ","); url != want {
		t.Errorf("%s: INVOKEAI_URL=%q, want %q (one server per GPU, in GPU order)", where, url, want)
	}

	// A drained worker must have finished (drain, then the failover grace)
	// before ECS kills it.
	drain, err := time.ParseDuration(envValue(*worker, "DRAIN_TIMEOUT"))
	if err != nil || drain+15*time.Second >= time.Duration(worker.StopTimeout)*time.Second {
		t.Errorf("%s: DRAIN_TIMEOUT=%q must leave 15 s of its stopTimeout (%d s)", where, envValue(*worker, "DRAIN_TIMEOUT"), worker.StopTimeout)
	}
	efs := slices.IndexFunc(td.Volumes, func(v volumeDef) bool { return v.EFS != nil })
	if efs < 0 || !slices.ContainsFunc(worker.MountPoints, func(m mountPoint) bool {
		return m.ContainerPath == "/models" && m.SourceVolume == td.Volumes[efs].Name
	}) {
		t.Errorf("%s: the model cache (EFS) must be mounted at /models", where)
	}
	checkInstanceIDFile(t, where, td, *worker)
}

// checkInstanceIDFile: the worker names its EC2 instance in its Temporal
// identity from GPU_INSTANCE_ID_FILE, a file the host's user data writes
// from IMDSv2, in a host directory the task mounts read-only; the task
// itself keeps the instance metadata blocked.
func checkInstanceIDFile(t *testing.T, where string, td taskDefinition, worker containerDef) {
	file := envValue(worker, "GPU_INSTANCE_ID_FILE")
	if file == "" {
		t.Errorf("%s: the worker has no GPU_INSTANCE_ID_FILE: the autoscaler cannot tell its host busy or idle", where)
		return
	}
	dir := filepath.Dir(file)
	mount := slices.IndexFunc(worker.MountPoints, func(m mountPoint) bool { return m.ContainerPath == dir })
	if mount < 0 || !worker.MountPoints[mount].ReadOnly {
		t.Errorf("%s: GPU_INSTANCE_ID_FILE=%s, but %s is not a read-only mount of the worker", where, file, dir)
		return
	}
	vol := slices.IndexFunc(td.Volumes, func(v volumeDef) bool { return v.Name == worker.MountPoints[mount].SourceVolume })
	if vol < 0 || td.Volumes[vol].Host == nil || td.Volumes[vol].Host.SourcePath == "" {
		t.Errorf("%s: %s is not mounted from a host directory", where, dir)
		return
	}
	hostFile := filepath.Join(td.Volumes[vol].Host.SourcePath, filepath.Base(file))
	userData := string(read(t, filepath.Join(root(t), "terraform", "modules", "gpu_asg", "user_data.sh.tftpl")))
	for _, want := range []string{"X-aws-ec2-metadata-token:", "meta-data/instance-id", hostFile, "ECS_AWSVPC_BLOCK_IMDS=true"} {
		if !strings.Contains(userData, want) {
			t.Errorf("terraform/modules/gpu_asg/user_data.sh.tftpl lacks %q: the host must write its instance id (IMDSv2) to %s and keep IMDS from the task", want, hostFile)
		}
	}
	if i, j := strings.Index(userData, hostFile), strings.Index(userData, "/etc/ecs/ecs.config"); i > j {
		t.Errorf("user_data.sh.tftpl writes %s after configuring the ECS agent: a task could start without it", hostFile)
	}
}

// checkModelCache: InvokeAI's model cache is sized for the tier's GPU, so
// that cached weights plus working memory (and the CUDA context) fit, and
// its RAM cache fits the container's memory. Admission counts InvokeAI's
// cache as usable; the cache must then really yield to the render.
func checkModelCache(t *testing.T, cw, tier string, c containerDef) {
	num := func(name string) float64 {
		v, err := strconv.ParseFloat(envValue(c, name), 64)
		if err != nil || v <= 0 {
			t.Errorf("%s: %s=%q, want a positive number of GB (InvokeAI 6.x model cache)", cw, name, envValue(c, name))
		}
		return v
	}
	vram, work, ram := num("INVOKEAI_MAX_CACHE_VRAM_GB"), num("INVOKEAI_DEVICE_WORKING_MEM_GB"), num("INVOKEAI_MAX_CACHE_RAM_GB")
	spec, _ := catalog.TierByName(tier)
	have := spec.MemoryGiB
	if vram+work+catalog.ContextOverheadGiB > have {
		t.Errorf("%s: VRAM cache %g GB + working memory %g GB + CUDA context do not fit the tier's %g GiB", cw, vram, work, have)
	}
	if sdxl, _ := catalog.ModelByFamily(catalog.ModelSDXL); vram < sdxl.WeightsGiB {
		t.Errorf("%s: a VRAM cache of %g GB cannot keep SDXL's %g GiB resident", cw, vram, sdxl.WeightsGiB)
	}
	if ram*1024 > float64(c.MemoryMiB) {
		t.Errorf("%s: RAM cache %g GB exceeds the container's %d MiB", cw, ram, c.MemoryMiB)
	}
}

// --- health route ---

// healthPath is liveness (the container's health check); readyPath is
// readiness (the load balancer's: not ready until the process can verify
// tokens and reach what it needs).
const (
	healthPath = "/api/v1/app/version"
	readyPath  = "/readyz"
)

// TestHealthRoute: the routes the health checks probe (the API image's
// HEALTHCHECK and the task definition: liveness; the load balancer:
// readiness) are ones the API serves.
func TestHealthRoute(t *testing.T) {
	server := string(read(t, filepath.Join(root(t), "api", "server.go")))
	for _, path := range []string{healthPath, readyPath} {
		if !strings.Contains(server, `r.GET("`+path+`"`) {
			t.Fatalf("api/server.go does not register GET %s", path)
		}
	}
	for f, path := range map[string]string{"deploy/docker/Dockerfile.api": healthPath, "deploy/ecs/api.json": healthPath,
		"terraform/modules/ecs/main.tf": readyPath} {
		if !strings.Contains(string(read(t, filepath.Join(root(t), f))), path) {
			t.Errorf("%s does not probe %s", f, path)
		}
	}
}

// --- Dockerfiles ---

func TestDockerfiles(t *testing.T) {
	dir := filepath.Join(root(t), "deploy", "docker")
	api := string(read(t, filepath.Join(dir, "Dockerfile.api")))
	for _, want := range []string{"FROM golang:${GO_VERSION}", "ARG GO_VERSION=1.26", "CGO_ENABLED=0", "./cmd/easel",
		"FROM gcr.io/distroless/static", "USER nonroot", "EXPOSE 8080", "HEALTHCHECK", `ENTRYPOINT ["/usr/local/bin/easel"]`, `CMD ["api"]`} {
		if !strings.Contains(api, want) {
			t.Errorf("Dockerfile.api lacks %q", want)
		}
	}
	checkAPIImageEmbedsWeb(t, api)
	gpu := string(read(t, filepath.Join(dir, "Dockerfile.gpu-worker")))
	for _, want := range []string{"-devel-", "-runtime-", "CGO_ENABLED=1", "-tags cuda", "./cmd/easel", "/models",
		`ENTRYPOINT ["/usr/local/bin/easel", "worker", "--role", "gpu"]`, "USER easel", "InvokeAI"} {
		if !strings.Contains(gpu, want) {
			t.Errorf("Dockerfile.gpu-worker lacks %q", want)
		}
	}
	// Whatever a Dockerfile copies from the context must be in it.
	ignore := dockerignore(t)
	copyLine := regexp.MustCompile(`(?m)^COPY\s+(?:--\S+\s+)*(.+)\s+\S+$`)
	for _, path := range glob(t, filepath.Join(dir, "Dockerfile.*")) {
		for _, m := range copyLine.FindAllStringSubmatch(string(read(t, path)), -1) {
			if strings.Contains(m[0], "--from=") {
				continue
			}
			for _, src := range strings.Fields(m[1]) {
				if src == "." {
					continue
				}
				if _, err := os.Stat(filepath.Join(root(t), src)); err != nil {
					t.Errorf("%s copies %s: %v", rel(t, path), src, err)
				}
				if ignored(ignore, src) {
					t.Errorf("%s copies %s, which .dockerignore leaves out", rel(t, path), src)
				}
			}
		}
	}
	for _, needed := range []string{"go.mod", "go.sum", "cmd/easel/main.go", "schema/migrations", "deploy/healthcheck/main.go", "deploy/temporal/dynamicconfig.yaml",
		"api/openapi.yaml", "web/package.json", "web/package-lock.json", "web/index.html", "web/src/main.tsx", "web/public/favicon.svg"} {
		if ignored(ignore, needed) {
			t.Errorf(".dockerignore leaves out %s, which the images need", needed)
		}
	}
	for _, secret := range []string{".git", ".env", "terraform/environments/prod/terraform.tfvars"} {
		if !ignored(ignore, secret) {
			t.Errorf(".dockerignore lets %s into the build context", secret)
		}
	}
}

// dockerStage is one FROM of a Dockerfile and the instructions up to the
// next.
type dockerStage struct {
	image, name, body string
}

func dockerStages(dockerfile string) []dockerStage {
	from := regexp.MustCompile(`(?m)^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$`)
	locs := from.FindAllStringSubmatchIndex(dockerfile, -1)
	var stages []dockerStage
	for i, l := range locs {
		end := len(dockerfile)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		st := dockerStage{image: dockerfile[l[2]:l[3]], body: dockerfile[l[1]:end]}
		if l[4] >= 0 {
			st.name = dockerfile[l[4]:l[5]]
		}
		stages = append(stages, st)
	}
	return stages
}

// checkAPIImageEmbedsWeb: the API image's binary serves the web app, not
// the "app not built" page: a Node stage builds it the way `make web` does
// (types from api/openapi.yaml, then the bundle) with a Node that
// web/package.json accepts, and the Go stage puts its dist/app where the
// embed directive looks before it compiles easel.
func checkAPIImageEmbedsWeb(t *testing.T, dockerfile string) {
	t.Helper()
	var node, gobuild *dockerStage
	stages := dockerStages(dockerfile)
	for i := range stages {
		switch st := &stages[i]; {
		case strings.HasPrefix(st.image, "node:"):
			node = st
		case strings.Contains(st.body, "go build") && strings.Contains(st.body, "./cmd/easel"):
			gobuild = st
		}
	}
	if node == nil || node.name == "" || gobuild == nil {
		t.Fatalf("Dockerfile.api: named Node stage %v, Go build stage %v; want both (the binary embeds the web app)", node != nil, gobuild != nil)
	}
	for _, want := range []string{"COPY web/package.json web/package-lock.json", "npm ci", "COPY api/openapi.yaml /src/api/openapi.yaml",
		"COPY web/ ", "RUN npm run build"} {
		if !strings.Contains(node.body, want) {
			t.Errorf("Dockerfile.api stage %s lacks %q", node.name, want)
		}
	}
	if m := regexp.MustCompile(`(?m)^ARG NODE_VERSION=(\d+)\s*$`).FindStringSubmatch(dockerfile); node.image != "node:${NODE_VERSION}" || m == nil {
		t.Errorf("Dockerfile.api: Node stage FROM %s; want node:${NODE_VERSION} with a default ARG NODE_VERSION", node.image)
	} else if major, _ := strconv.Atoi(m[1]); major != 20 && major < 22 {
		t.Errorf("Dockerfile.api: Node %d; web/package.json wants ^20.19.0 or >=22.12.0", major)
	}
	embed := regexp.MustCompile(`(?m)^COPY --from=` + regexp.QuoteMeta(node.name) + `\s+/src/web/dist/app\s+\./web/dist/app\s*$`).FindStringIndex(gobuild.body)
	if embed == nil {
		t.Errorf("Dockerfile.api: the Go stage does not copy the %s stage's /src/web/dist/app to ./web/dist/app", node.name)
	} else if build := strings.Index(gobuild.body, "go build"); build < embed[0] {
		t.Error("Dockerfile.api copies the web build after go build, which embeds it")
	}
}

func dockerignore(t *testing.T) []string {
	var patterns []string
	for _, line := range strings.Split(string(read(t, filepath.Join(root(t), ".dockerignore"))), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	return patterns
}

// ignored reports whether a pattern of .dockerignore leaves path (or a
// directory above it) out; "**/" matches any depth.
func ignored(patterns []string, path string) bool {
	parts := strings.Split(filepath.ToSlash(path), "/")
	for _, p := range patterns {
		anyDepth := strings.HasPrefix(p, "**/")
		p = strings.TrimPrefix(p, "**/")
		for i := 1; i <= len(parts); i++ {
			for start := 0; start < i; start++ {
				if start > 0 && !anyDepth {
					break
				}
				if ok, _ := filepath.Match(p, strings.Join(parts[start:i], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}

func TestDockerignoreMatcher(t *testing.T) {
	p := []string{".git", "terraform", "**/*.tfvars", "bin"}
	for path, want := range map[string]bool{
		".git/HEAD": true, "terraform/modules/x.tf": true, "a/b/c.tfvars": true, "bin/easel": true,
		"cmd/easel/main.go": false, "deploy/bin.go": false, "deploy/terraform.md": false,
	} {
		if got := ignored(p, path); got != want {
			t.Errorf("ignored(%s) = %v, want %v", path, got, want)
		}
	}
}
