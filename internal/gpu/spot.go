package gpu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// spotNoticeLead is how long before the instance stops EC2 guarantees the
// notice; used when a notice carries no readable time.
const spotNoticeLead = 2 * time.Minute

// SpotNotice is an EC2 spot interruption notice.
type SpotNotice struct {
	Action string    `json:"action"` // terminate, stop or hibernate
	Time   time.Time `json:"time"`   // when EC2 acts
}

// SpotWatcher polls EC2 instance metadata for a spot interruption notice,
// with IMDSv2 (a session token from PUT /latest/api/token, then GET
// /latest/meta-data/spot/instance-action, which answers 404 while no
// interruption is scheduled).
type SpotWatcher struct {
	// Endpoint is the metadata service; empty uses the SDK's default
	// (http://169.254.169.254, or AWS_EC2_METADATA_SERVICE_ENDPOINT).
	Endpoint string
	Every    time.Duration // poll interval, default 5 s
	// Margin is how long before the interruption running renders must
	// have failed over, so their failures reach Temporal while the host is
	// still up (default 30 s).
	Margin time.Duration
	Log    *slog.Logger
}

// Watch polls until ctx ends or a notice appears; a notice begins the drain
// with a deadline Margin before the interruption.
func (w SpotWatcher) Watch(ctx context.Context, d *Drain) {
	w = w.withDefaults()
	c := w.client()
	t := time.NewTicker(w.Every)
	defer t.Stop()
	failing := false
	for {
		n, ok, err := w.check(ctx, c)
		switch {
		case err != nil && ctx.Err() == nil:
			// One warning per outage: off EC2, or with a metadata hop
			// limit too low for a container, every poll fails.
			if !failing {
				w.Log.Warn("spot interruption check failed; retrying", "err", err)
			}
			failing = true
		case ok:
			w.Log.Warn("spot interruption notice", "action", n.Action, "time", n.Time.Format(time.RFC3339))
			d.Begin("spot interruption: "+n.Action, n.Time.Add(-w.Margin))
			return
		case err == nil:
			if failing {
				w.Log.Info("spot interruption check works again")
			}
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-d.Begun():
			return // already draining for another reason; nothing to bring forward
		case <-t.C:
		}
	}
}

func (w SpotWatcher) withDefaults() SpotWatcher {
	if w.Every <= 0 {
		w.Every = 5 * time.Second
	}
	if w.Margin <= 0 {
		w.Margin = 30 * time.Second
	}
	if w.Log == nil {
		w.Log = slog.Default()
	}
	return w
}

// client is an IMDSv2-only client: falling back to IMDSv1 would hide a
// misconfigured hop limit until the day AWS turns v1 off.
func (w SpotWatcher) client() *imds.Client {
	return imds.New(imds.Options{Endpoint: w.Endpoint, EnableFallback: aws.FalseTernary})
}

// Check asks the metadata service once; ok is false when no interruption
// is scheduled.
func (w SpotWatcher) Check(ctx context.Context) (SpotNotice, bool, error) {
	return w.withDefaults().check(ctx, w.client())
}

func (w SpotWatcher) check(ctx context.Context, c *imds.Client) (SpotNotice, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, w.Every)
	defer cancel()
	out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: "spot/instance-action"})
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
		return SpotNotice{}, false, nil
	}
	if err != nil {
		return SpotNotice{}, false, fmt.Errorf("read spot instance-action metadata: %w", err)
	}
	defer func() { _ = out.Content.Close() }()
	body, err := io.ReadAll(out.Content)
	if err != nil {
		return SpotNotice{}, false, fmt.Errorf("read spot instance-action metadata: %w", err)
	}
	return parseSpotNotice(body, w.Log), true, nil
}

// parseSpotNotice reads a notice. Any answer other than 404 means an
// interruption is coming, so a body that cannot be read still counts, with
// the two minutes EC2 guarantees.
func parseSpotNotice(body []byte, log *slog.Logger) SpotNotice {
	var n SpotNotice
	if err := json.Unmarshal(body, &n); err != nil || n.Time.IsZero() {
		log.Warn("unreadable spot interruption notice; assuming two minutes", "body", string(body), "err", err)
		n.Time = time.Now().Add(spotNoticeLead)
	}
	return n
}
