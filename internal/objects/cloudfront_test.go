package objects_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/easel/easel/internal/objects"
)

// cloudFrontB64 undoes CloudFront's URL-safe base64 (+ -> -, = -> _, / -> ~).
func cloudFrontB64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.NewReplacer("-", "+", "_", "=", "~", "/").Replace(s))
}

// A signed URL points at /images/<key> on the distribution and carries a
// canned policy whose signature the key group's public key verifies, with
// the expiry asked for.
func TestCloudFrontSignedURL(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, der := range map[string]*pem.Block{
		"pkcs1": {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)},
		"pkcs8": func() *pem.Block {
			b, _ := x509.MarshalPKCS8PrivateKey(key)
			return &pem.Block{Type: "PRIVATE KEY", Bytes: b}
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			cf, err := objects.NewCloudFrontURLs("cdn.example.com", "K2JCJMDEHXQW5F", string(pem.EncodeToMemory(der)))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := cf.SignedURL(objects.ImageKey("u1", "job_0"), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if u.Host != "cdn.example.com" || u.Path != "/images/users/u1/images/job_0.png" || q.Get("Key-Pair-Id") != "K2JCJMDEHXQW5F" {
				t.Fatalf("signed URL %s", raw)
			}
			exp := q.Get("Expires")
			var expires int64
			if _, err := fmt.Sscan(exp, &expires); err != nil || expires < time.Now().Add(59*time.Minute).Unix() ||
				expires > time.Now().Add(121*time.Minute).Unix() {
				t.Fatalf("Expires %q", exp)
			}
			// The canned policy CloudFront rebuilds and checks.
			base := "https://cdn.example.com/images/users/u1/images/job_0.png"
			policy := fmt.Sprintf(`{"Statement":[{"Resource":"%s","Condition":{"DateLessThan":{"AWS:EpochTime":%d}}}]}`, base, expires)
			sig, err := cloudFrontB64(q.Get("Signature"))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha1.Sum([]byte(policy))
			if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA1, sum[:], sig); err != nil {
				t.Fatalf("signature does not verify with the public key: %v", err)
			}
		})
	}
	if _, err := objects.NewCloudFrontURLs("cdn.example.com", "K1", "not a key"); err == nil {
		t.Fatal("a bad key was accepted")
	}
}

// A download link is the signed URL with ?download=<file name>, and the
// signature covers that query string: the distribution's viewer-response
// function turns it into Content-Disposition: attachment, and a changed
// file name fails the signature.
func TestCloudFrontSignedDownloadURL(t *testing.T) {
	t.Parallel()
	cf, key := newCloudFront(t)
	raw, err := cf.SignedDownloadURL(objects.ImageKey("u1", "job_0"), "job_0.png", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Path != "/images/users/u1/images/job_0.png" || q.Get("download") != "job_0.png" || q.Get("Key-Pair-Id") != "K2JCJMDEHXQW5F" {
		t.Fatalf("signed download URL %s", raw)
	}
	sig, err := cloudFrontB64(q.Get("Signature"))
	if err != nil {
		t.Fatal(err)
	}
	policy := func(resource string) []byte {
		p := fmt.Sprintf(`{"Statement":[{"Resource":"%s","Condition":{"DateLessThan":{"AWS:EpochTime":%s}}}]}`, resource, q.Get("Expires"))
		sum := sha1.Sum([]byte(p))
		return sum[:]
	}
	base := "https://cdn.example.com/images/users/u1/images/job_0.png"
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA1, policy(base+"?download=job_0.png"), sig); err != nil {
		t.Fatalf("the signature does not cover the download query: %v", err)
	}
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA1, policy(base+"?download=other.png"), sig); err == nil {
		t.Fatal("the signature verifies with another file name")
	}
}

// A file name goes into Content-Disposition quoted when it is plain ASCII
// and RFC 2231-encoded otherwise, never so that it could end the header.
func TestAttachmentDisposition(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"job_0.png":  `attachment; filename="job_0.png"`,
		`a"b.png`:    `attachment; filename="a\"b.png"`,
		"café.png":   `attachment; filename*=utf-8''caf%C3%A9.png`,
		"line\n.png": `attachment; filename*=utf-8''line%0A.png`,
	} {
		if got := objects.AttachmentDisposition(name); got != want {
			t.Errorf("AttachmentDisposition(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestCloudFrontLinksStable: within a window the signed link is the same
// and lasts at least the ttl asked for; the next window's is another.
func TestCloudFrontLinksStable(t *testing.T) {
	t.Parallel()
	cf, _ := newCloudFront(t)
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	links := map[time.Duration]string{}
	for _, at := range []time.Duration{time.Second, 59 * time.Minute, time.Hour} {
		now := start.Add(at)
		cf.SetClock(func() time.Time { return now })
		raw, err := cf.SignedURL(objects.ThumbnailKey("u1", "job_0"), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		var expires int64
		if _, err := fmt.Sscan(u.Query().Get("Expires"), &expires); err != nil || expires < now.Add(time.Hour).Unix() {
			t.Errorf("link at +%s expires %s, before the hour it was asked for", at, time.Unix(expires, 0).UTC())
		}
		links[at] = raw
	}
	if links[time.Second] != links[59*time.Minute] {
		t.Errorf("links within one window differ:\n%s\n%s", links[time.Second], links[59*time.Minute])
	}
	if links[time.Hour] == links[59*time.Minute] {
		t.Error("the next window's link is the same")
	}
}

// newCloudFront signs with a new PKCS#1 key, which it also returns.
func newCloudFront(t *testing.T) (*objects.CloudFrontURLs, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := objects.NewCloudFrontURLs("cdn.example.com", "K2JCJMDEHXQW5F",
		string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	if err != nil {
		t.Fatal(err)
	}
	return cf, key
}
