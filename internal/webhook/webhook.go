// Package webhook sends Easel's webhooks to customers, as the Standard
// Webhooks specification (standardwebhooks.com) describes them: the event
// types, the signing secrets (whsec_...), the signature headers, and a
// Sender whose HTTP client refuses to reach private networks (Guard).
//
// It is not the inbound Stripe webhook (api/webhooks.go): these go out.
package webhook

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Event types.
const (
	GenerationCompleted       = "generation.completed"
	GenerationFailed          = "generation.failed"
	GenerationCanceled        = "generation.canceled"
	CreditsLow                = "credits.low"
	SubscriptionRenewed       = "subscription.renewed"
	SubscriptionPaymentFailed = "subscription.payment_failed"
)

// EventTypes lists every type, in the order the documentation gives them.
var EventTypes = []string{GenerationCompleted, GenerationFailed, GenerationCanceled, CreditsLow,
	SubscriptionRenewed, SubscriptionPaymentFailed}

// GenerationEventTypes are the types a generation request's own webhook_url
// may receive.
var GenerationEventTypes = []string{GenerationCompleted, GenerationFailed, GenerationCanceled}

// MaxDescriptionRunes bounds an endpoint's description.
const MaxDescriptionRunes = 200

// Wants reports whether a filter lets an event type through: an empty
// filter lets every type through.
func Wants(filter []string, eventType string) bool {
	return len(filter) == 0 || slices.Contains(filter, eventType)
}

// Payload is the JSON body of every webhook: the Standard Webhooks shape
// (type, timestamp, data) plus the event id, which is also the webhook-id
// header.
type Payload struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Encode builds the body of an event.
func Encode(id, eventType string, at time.Time, data any) ([]byte, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode %s data: %w", eventType, err)
	}
	b, err := json.Marshal(Payload{ID: id, Type: eventType, Timestamp: at.UTC(), Data: raw})
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", eventType, err)
	}
	return b, nil
}
