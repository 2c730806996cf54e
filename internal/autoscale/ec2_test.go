package autoscale

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"go.temporal.io/sdk/temporal"
)

const asgNS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"

// fakeASG emulates the EC2 Auto Scaling query API (form-encoded POSTs,
// XML answers) for a few groups: SetDesiredCapacity within each group's
// 0..max, DescribeAutoScalingGroups with instances, DescribeWarmPool,
// PutWarmPool (refused on a spot group, as AWS refuses it on a group that
// requests spot instances), SetInstanceProtection and
// DescribeScalingActivities.
type fakeASG struct {
	mu       sync.Mutex
	groups   map[string]*fakeGroup
	requests []url.Values
}

type fakeGroup struct {
	desired, max int
	spot         bool
	instances    []fakeInstance
	warm         url.Values // the last PutWarmPool, nil without a pool
	warmCount    int
	activity     string // status message of the newest scaling activity, Failed when set
}

type fakeInstance struct {
	id, state string
	protected bool
}

func (f *fakeASG) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		http.Error(w, "unsigned request", http.StatusForbidden)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.PostForm)
	w.Header().Set("Content-Type", "text/xml")
	form := r.PostForm
	action := form.Get("Action")
	if action == "DescribeAutoScalingGroups" {
		f.describe(w, members(form, "AutoScalingGroupNames"))
		return
	}
	g := f.groups[form.Get("AutoScalingGroupName")]
	if g == nil {
		queryError(w, "ValidationError", "AutoScalingGroup name not found")
		return
	}
	switch action {
	case "SetDesiredCapacity":
		f.setDesired(w, g, form)
	case "DescribeWarmPool":
		f.describeWarmPool(w, g)
	case "PutWarmPool":
		if g.spot {
			queryError(w, "ValidationError", "You can't add a warm pool to an Auto Scaling group that has a mixed instances policy or a launch template or launch configuration that requests Spot Instances.")
			return
		}
		g.warm = form
		respond(w, "PutWarmPool", "")
	case "SetInstanceProtection":
		on := form.Get("ProtectedFromScaleIn") == "true"
		for _, id := range members(form, "InstanceIds") {
			for i := range g.instances {
				if g.instances[i].id == id {
					g.instances[i].protected = on
				}
			}
		}
		respond(w, "SetInstanceProtection", "")
	case "DescribeScalingActivities":
		f.activities(w, g, form.Get("AutoScalingGroupName"))
	default:
		queryError(w, "InvalidAction", "unknown action")
	}
}

// members reads a query list: Name.member.1, Name.member.2, ...
func members(form url.Values, name string) []string {
	var out []string
	for i := 1; form.Has(fmt.Sprintf("%s.member.%d", name, i)); i++ {
		out = append(out, form.Get(fmt.Sprintf("%s.member.%d", name, i)))
	}
	return out
}

// respond answers an action; every answer but SetDesiredCapacity's has a
// result element, empty or not, as AWS sends them.
func respond(w http.ResponseWriter, action, result string) {
	if action != "SetDesiredCapacity" {
		result = fmt.Sprintf("<%sResult>%s</%sResult>", action, result, action)
	}
	fmt.Fprintf(w, `<%sResponse xmlns=%q>%s<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></%sResponse>`,
		action, asgNS, result, action)
}

func (f *fakeASG) setDesired(w http.ResponseWriter, g *fakeGroup, form url.Values) {
	var n int
	if _, err := fmt.Sscan(form.Get("DesiredCapacity"), &n); err != nil || n > g.max {
		queryError(w, "ValidationError", fmt.Sprintf("New SetDesiredCapacity value %s is above max value %d for the AutoScalingGroup.", form.Get("DesiredCapacity"), g.max))
		return
	}
	g.desired = n
	respond(w, "SetDesiredCapacity", "")
}

func (f *fakeASG) describe(w http.ResponseWriter, names []string) {
	var b strings.Builder
	for _, name := range names {
		g := f.groups[name]
		if g == nil {
			continue
		}
		var ins strings.Builder
		for _, in := range g.instances {
			fmt.Fprintf(&ins, `<member><InstanceId>%s</InstanceId><AvailabilityZone>ap-northeast-2a</AvailabilityZone><LifecycleState>%s</LifecycleState><HealthStatus>Healthy</HealthStatus><ProtectedFromScaleIn>%t</ProtectedFromScaleIn></member>`,
				in.id, in.state, in.protected)
		}
		fmt.Fprintf(&b, `<member><AutoScalingGroupName>%s</AutoScalingGroupName><MinSize>0</MinSize><MaxSize>%d</MaxSize><DesiredCapacity>%d</DesiredCapacity><Instances>%s</Instances></member>`,
			name, g.max, g.desired, ins.String())
	}
	respond(w, "DescribeAutoScalingGroups", "<AutoScalingGroups>"+b.String()+"</AutoScalingGroups>")
}

func (f *fakeASG) describeWarmPool(w http.ResponseWriter, g *fakeGroup) {
	var b strings.Builder
	if g.warm != nil {
		fmt.Fprintf(&b, `<WarmPoolConfiguration><MaxGroupPreparedCapacity>%s</MaxGroupPreparedCapacity><MinSize>%s</MinSize><PoolState>%s</PoolState><InstanceReusePolicy><ReuseOnScaleIn>%s</ReuseOnScaleIn></InstanceReusePolicy></WarmPoolConfiguration>`,
			g.warm.Get("MaxGroupPreparedCapacity"), g.warm.Get("MinSize"), g.warm.Get("PoolState"), g.warm.Get("InstanceReusePolicy.ReuseOnScaleIn"))
	}
	b.WriteString("<Instances>")
	for i := range g.warmCount {
		fmt.Fprintf(&b, `<member><InstanceId>i-0000000000000w%02d</InstanceId><AvailabilityZone>ap-northeast-2a</AvailabilityZone><LifecycleState>Warmed:Stopped</LifecycleState><HealthStatus>Healthy</HealthStatus></member>`, i)
	}
	b.WriteString("</Instances>")
	respond(w, "DescribeWarmPool", b.String())
}

func (f *fakeASG) activities(w http.ResponseWriter, g *fakeGroup, name string) {
	status, msg := "Successful", "Launching a new EC2 instance: i-0123456789abcdef0"
	if g.activity != "" {
		status, msg = "Failed", g.activity
	}
	respond(w, "DescribeScalingActivities", fmt.Sprintf(`<Activities><member><ActivityId>act-1</ActivityId><AutoScalingGroupName>%s</AutoScalingGroupName><Cause>a user request set the desired capacity</Cause><StartTime>2025-01-06T03:00:00Z</StartTime><StatusCode>%s</StatusCode><StatusMessage>%s</StatusMessage></member></Activities>`,
		name, status, msg))
}

func queryError(w http.ResponseWriter, code, msg string) {
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `<ErrorResponse xmlns=%q><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-3</RequestId></ErrorResponse>`, asgNS, code, msg)
}

// request returns the requests of one action, in order.
func (f *fakeASG) request(action string) []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []url.Values
	for _, r := range f.requests {
		if r.Get("Action") == action {
			out = append(out, r)
		}
	}
	return out
}

func newEC2Test(t *testing.T) (*EC2, *fakeASG) {
	t.Helper()
	fake := &fakeASG{groups: map[string]*fakeGroup{
		"easel-gpu-t4":      {desired: 1, max: 10},
		"easel-gpu-t4-spot": {max: 10, spot: true},
		"easel-gpu-a10g":    {desired: 2, max: 10},
	}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "ap-northeast-2", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	d := NewEC2(cfg, map[string]string{"t4": "easel-gpu-t4", "a10g": "easel-gpu-a10g", "a100": "easel-gpu-gone"},
		func(o *autoscaling.Options) {
			o.BaseEndpoint = aws.String(srv.URL)
			o.RetryMaxAttempts = 1
		})
	d.SpotGroups = map[string]string{"t4": "easel-gpu-t4-spot"}
	return d, fake
}

func TestEC2SetCapacity(t *testing.T) {
	ctx := context.Background()
	d, fake := newEC2Test(t)
	if err := d.SetCapacity(ctx, "t4", 4); err != nil {
		t.Fatal(err)
	}
	req := fake.request("SetDesiredCapacity")[0]
	for k, want := range map[string]string{"Action": "SetDesiredCapacity", "Version": "2011-01-01",
		"AutoScalingGroupName": "easel-gpu-t4", "DesiredCapacity": "4", "HonorCooldown": "false"} {
		if got := req.Get(k); got != want {
			t.Errorf("%s = %q, want %q (request %v)", k, got, want, req)
		}
	}
	if n, err := d.Capacity(ctx, "t4"); err != nil || n != 4 {
		t.Fatalf("capacity after set = %d, %v; want 4", n, err)
	}
	if got := fake.request("DescribeAutoScalingGroups")[0].Get("AutoScalingGroupNames.member.1"); got != "easel-gpu-t4" {
		t.Fatalf("describe asked for %q", got)
	}
	if err := d.SetSpotCapacity(ctx, "t4", 3); err != nil || fake.groups["easel-gpu-t4-spot"].desired != 3 {
		t.Fatalf("spot capacity: %v, desired %d", err, fake.groups["easel-gpu-t4-spot"].desired)
	}
}

func TestEC2Errors(t *testing.T) {
	ctx := context.Background()
	d, _ := newEC2Test(t)
	for _, tc := range []struct {
		name string
		call func() error
		kind string
	}{
		{"above the group's max", func() error { return d.SetCapacity(ctx, "a10g", 11) }, ErrInvalidCapacity},
		{"tier without a group", func() error { return d.SetCapacity(ctx, "h100", 1) }, ErrUnknownTier},
		{"group that does not exist", func() error { _, err := d.Capacity(ctx, "a100"); return err }, ErrUnknownTier},
		{"tier without a spot group", func() error { return d.SetSpotCapacity(ctx, "a10g", 1) }, ErrUnknownTier},
		{"warm pool on a spot group", func() error {
			d := *d
			d.Groups = map[string]string{"t4": "easel-gpu-t4-spot"}
			_, err := d.EnsureWarmPool(ctx, "t4", 10)
			return err
		}, ErrInvalidCapacity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var appErr *temporal.ApplicationError
			err := tc.call()
			if !errors.As(err, &appErr) || appErr.Type() != tc.kind || !appErr.NonRetryable() {
				t.Fatalf("error %v, want a non-retryable %s", err, tc.kind)
			}
		})
	}
}

// fakeHosts is a HostActivity by hand.
type fakeHosts map[string]HostState

func (f fakeHosts) Hosts(context.Context, string) (map[string]HostState, error) { return f, nil }

// The fleet: pending instances and in-service ones whose worker has not
// reported boot; busy ones are protected from scale-in, idle ones not;
// terminating ones do not count; a spot group whose latest launch EC2
// refused for capacity is short of what it lacks.
func TestEC2FleetReportsInstancesAndProtectsBusyOnes(t *testing.T) {
	ctx := context.Background()
	d, fake := newEC2Test(t)
	now := time.Date(2025, 1, 6, 12, 0, 0, 0, time.UTC)
	d.Now = func() time.Time { return now }
	fake.groups["easel-gpu-t4"] = &fakeGroup{desired: 4, max: 10, instances: []fakeInstance{
		{id: "i-00000000000000001", state: "InService"},
		{id: "i-00000000000000002", state: "InService", protected: true},
		{id: "i-00000000000000003", state: "Pending"},
		{id: "i-00000000000000004", state: "InService"},
		{id: "i-00000000000000005", state: "Terminating"},
	}}
	fake.groups["easel-gpu-t4-spot"] = &fakeGroup{desired: 3, max: 10, spot: true,
		activity:  "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that matches your request. Launching EC2 instance failed.",
		instances: []fakeInstance{{id: "i-00000000000000006", state: "InService", protected: true}}}
	d.Activity = fakeHosts{
		"i-00000000000000001": {BusyGPUs: 2, Started: now.Add(-time.Hour)}, // a slot ahead: counts 1 GPU
		"i-00000000000000002": {IdleSince: now.Add(-30 * time.Second), Started: now.Add(-10 * time.Minute)},
		"i-00000000000000006": {IdleSince: now.Add(-5 * time.Minute), Started: now.Add(-20 * time.Minute)},
	}
	if !d.ReportsFleet() {
		t.Fatal("a driver with host activity does not report its fleet")
	}
	f, err := d.Fleet(ctx, "t4")
	if err != nil {
		t.Fatal(err)
	}
	want := Fleet{Capacity: 4, Spot: 3, SpotShort: 2, Booting: 2, BusyGPUs: 1, Idle: []IdleInstance{
		{IdleFor: 30 * time.Second, Uptime: 10 * time.Minute},
		{IdleFor: 5 * time.Minute, Uptime: 20 * time.Minute, Spot: true},
	}}
	if fmt.Sprint(f) != fmt.Sprint(want) {
		t.Fatalf("fleet %+v\nwant  %+v", f, want)
	}
	var protections []string
	for _, r := range fake.request("SetInstanceProtection") {
		protections = append(protections, fmt.Sprintf("%s %v %s", r.Get("AutoScalingGroupName"), members(r, "InstanceIds"), r.Get("ProtectedFromScaleIn")))
	}
	wantProt := []string{"easel-gpu-t4 [i-00000000000000001] true", "easel-gpu-t4 [i-00000000000000002] false",
		"easel-gpu-t4-spot [i-00000000000000006] false"}
	if !slices.Equal(protections, wantProt) {
		t.Fatalf("scale-in protection calls %q, want %q", protections, wantProt)
	}
	// Protection in step: the next read changes nothing.
	if _, err := d.Fleet(ctx, "t4"); err != nil || len(fake.request("SetInstanceProtection")) != 3 {
		t.Fatalf("second read: %v, %d protection calls", err, len(fake.request("SetInstanceProtection")))
	}
	// Spot capacity back: a successful launch leaves nothing short.
	fake.groups["easel-gpu-t4-spot"].activity = ""
	if f, err := d.Fleet(ctx, "t4"); err != nil || f.SpotShort != 0 {
		t.Fatalf("after a successful spot launch: %+v, %v", f, err)
	}
	d.Activity = nil
	if d.ReportsFleet() {
		t.Fatal("a driver without host activity reports its fleet")
	}
}

// The warm pool: stopped instances, reused on scale-in, the prepared
// capacity asked for; PutWarmPool only when the pool differs.
func TestEC2EnsureWarmPool(t *testing.T) {
	ctx := context.Background()
	d, fake := newEC2Test(t)
	st, err := d.EnsureWarmPool(ctx, "t4", 10)
	if err != nil || !st.Changed {
		t.Fatalf("first ensure: %+v, %v", st, err)
	}
	put := fake.request("PutWarmPool")[0]
	for k, want := range map[string]string{"AutoScalingGroupName": "easel-gpu-t4", "MaxGroupPreparedCapacity": "10",
		"MinSize": "0", "PoolState": "Stopped", "InstanceReusePolicy.ReuseOnScaleIn": "true"} {
		if got := put.Get(k); got != want {
			t.Errorf("PutWarmPool %s = %q, want %q", k, got, want)
		}
	}
	fake.groups["easel-gpu-t4"].warmCount = 7
	if st, err := d.EnsureWarmPool(ctx, "t4", 10); err != nil || st.Changed || st.Warm != 7 {
		t.Fatalf("same pool: %+v, %v; want no change and 7 warm", st, err)
	}
	if st, err := d.EnsureWarmPool(ctx, "t4", 6); err != nil || !st.Changed || len(fake.request("PutWarmPool")) != 2 {
		t.Fatalf("smaller pool: %+v, %v", st, err)
	}
}
