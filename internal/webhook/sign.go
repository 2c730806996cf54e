package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// SecretPrefix starts every signing secret, as the Standard Webhooks
// specification spells them: whsec_ then the base64 of the key bytes.
const SecretPrefix = "whsec_"

// secretBytes is the key length: the specification asks for 24 to 64 bytes.
const secretBytes = 32

// NewSecret draws a signing secret.
func NewSecret() (string, error) {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("draw webhook signing secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// Signature headers (the Standard Webhooks names).
const (
	HeaderID        = standardwebhooks.HeaderWebhookID
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
)

// Sign returns the webhook-signature value of a message: "v1," and the
// base64 of HMAC-SHA256 over id.timestamp.body, keyed with the secret's
// bytes (the Standard Webhooks library computes it).
func Sign(secret, id string, at time.Time, body []byte) (string, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return "", fmt.Errorf("read webhook signing secret: %w", err)
	}
	sig, err := wh.Sign(id, at, body)
	if err != nil {
		return "", fmt.Errorf("sign webhook %s: %w", id, err)
	}
	return sig, nil
}

// SetHeaders puts the signature headers of a message on h, with one
// signature per non-empty secret, separated by spaces as the Standard
// Webhooks specification allows: while a rotated secret's overlap lasts, a
// receiver that knows either secret verifies the message.
func SetHeaders(h http.Header, id string, at time.Time, body []byte, secrets ...string) error {
	var sigs []string
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		sig, err := Sign(secret, id, at, body)
		if err != nil {
			return err
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("sign webhook %s: no signing secret", id)
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
	return nil
}

// Verify checks a received webhook as a receiver would: the signature, and
// a timestamp within five minutes of now. Receivers in Go can call the
// Standard Webhooks library directly; this is what Easel's own tests use.
func Verify(secret string, h http.Header, body []byte) error {
	if !strings.HasPrefix(secret, SecretPrefix) {
		return fmt.Errorf("verify webhook: the secret does not start with %s", SecretPrefix)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return fmt.Errorf("read webhook signing secret: %w", err)
	}
	if err := wh.Verify(body, h); err != nil {
		return fmt.Errorf("verify webhook %s: %w", h.Get(HeaderID), err)
	}
	return nil
}
