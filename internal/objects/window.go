package objects

import (
	"context"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// A link to an object is signed as of the start of the window it is asked
// for in, and is the same link for the whole window: a browser that shows
// the Gallery again finds every thumbnail in its cache, where a link signed
// anew on every list would be a new URL, and a new download, each time.
// The window is as long as the link's ttl (shorter where ttl and window
// together would pass SigV4's seven days), and a link stays valid for ttl
// plus the window from the window's start: at least ttl from when it was
// handed out, at most twice that.

// signingWindow is the start of the window now falls in and how long a
// link signed then stays valid.
func signingWindow(now time.Time, ttl time.Duration) (time.Time, time.Duration) {
	w := min(ttl, MaxPresignTTL-ttl)
	if w <= 0 {
		return now, ttl
	}
	return now.Truncate(w), ttl + w
}

// clock is the time links are signed against: nil is time.Now (tests fix
// it).
type clock func() time.Time

func (c clock) now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}

// signedAt is a SigV4 presigner that signs at a fixed time: the start of
// the window, in place of the SDK's clock.
type signedAt struct {
	next s3.HTTPPresignerV4
	at   time.Time
}

func (s signedAt) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	_ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return s.next.PresignHTTP(ctx, creds, r, payloadHash, service, region, s.at, optFns...)
}
