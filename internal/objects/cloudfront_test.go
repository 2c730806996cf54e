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
				expires > time.Now().Add(61*time.Minute).Unix() {
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
