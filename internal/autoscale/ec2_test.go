package autoscale

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"go.temporal.io/sdk/temporal"
)

const asgNS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"

// fakeASG emulates the EC2 Auto Scaling query API for a few groups:
// SetDesiredCapacity within each group's 0..max, DescribeAutoScalingGroups.
type fakeASG struct {
	mu       sync.Mutex
	desired  map[string]int
	max      int
	requests []url.Values
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
	switch r.PostForm.Get("Action") {
	case "SetDesiredCapacity":
		f.setDesired(w, r.PostForm)
	case "DescribeAutoScalingGroups":
		f.describe(w, r.PostForm.Get("AutoScalingGroupNames.member.1"))
	default:
		queryError(w, "InvalidAction", "unknown action")
	}
}

func (f *fakeASG) setDesired(w http.ResponseWriter, form url.Values) {
	name := form.Get("AutoScalingGroupName")
	var n int
	if _, err := fmt.Sscan(form.Get("DesiredCapacity"), &n); err != nil || n > f.max {
		queryError(w, "ValidationError", fmt.Sprintf("New SetDesiredCapacity value %s is above max value %d for the AutoScalingGroup.", form.Get("DesiredCapacity"), f.max))
		return
	}
	f.desired[name] = n
	fmt.Fprintf(w, `<SetDesiredCapacityResponse xmlns=%q><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></SetDesiredCapacityResponse>`, asgNS)
}

func (f *fakeASG) describe(w http.ResponseWriter, name string) {
	groups := ""
	if n, ok := f.desired[name]; ok {
		groups = fmt.Sprintf(`<member><AutoScalingGroupName>%s</AutoScalingGroupName><MinSize>0</MinSize><MaxSize>%d</MaxSize><DesiredCapacity>%d</DesiredCapacity></member>`, name, f.max, n)
	}
	fmt.Fprintf(w, `<DescribeAutoScalingGroupsResponse xmlns=%q><DescribeAutoScalingGroupsResult><AutoScalingGroups>%s</AutoScalingGroups></DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>req-2</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>`, asgNS, groups)
}

func queryError(w http.ResponseWriter, code, msg string) {
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `<ErrorResponse xmlns=%q><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-3</RequestId></ErrorResponse>`, asgNS, code, msg)
}

func newEC2Test(t *testing.T) (*EC2, *fakeASG) {
	t.Helper()
	fake := &fakeASG{desired: map[string]int{"easel-gpu-t4": 1, "easel-gpu-a10g": 2}, max: 10}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "ap-northeast-2", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	d := NewEC2(cfg, map[string]string{"t4": "easel-gpu-t4", "a10g": "easel-gpu-a10g", "a100": "easel-gpu-gone"},
		func(o *autoscaling.Options) {
			o.BaseEndpoint = aws.String(srv.URL)
			o.RetryMaxAttempts = 1
		})
	return d, fake
}

func TestEC2SetCapacity(t *testing.T) {
	ctx := context.Background()
	d, fake := newEC2Test(t)
	if err := d.SetCapacity(ctx, "t4", 4); err != nil {
		t.Fatal(err)
	}
	req := fake.requests[0]
	for k, want := range map[string]string{"Action": "SetDesiredCapacity", "Version": "2011-01-01",
		"AutoScalingGroupName": "easel-gpu-t4", "DesiredCapacity": "4", "HonorCooldown": "false"} {
		if got := req.Get(k); got != want {
			t.Errorf("%s = %q, want %q (request %v)", k, got, want, req)
		}
	}
	if n, err := d.Capacity(ctx, "t4"); err != nil || n != 4 {
		t.Fatalf("capacity after set = %d, %v; want 4", n, err)
	}
	if got := fake.requests[1].Get("AutoScalingGroupNames.member.1"); got != "easel-gpu-t4" {
		t.Fatalf("describe asked for %q", got)
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
