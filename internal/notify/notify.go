// Package notify tells users about their account: a Sender delivers a Notice
// (LogSender in development, SESSender by email through Amazon SES v2), and
// LowBalance decides when a user's balance warrants one.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
)

// Notice is one message to one user.
type Notice struct {
	To      string // email address
	Subject string
	Body    string // plain text
	Kind    string // e.g. store.NoticeLowBalance
}

// Sender delivers notices.
type Sender interface {
	Send(ctx context.Context, n Notice) error
}

// LogSender writes notices to a log instead of delivering them, so
// development and tests need no mail service.
type LogSender struct {
	Log *slog.Logger // nil: slog.Default()
}

// Send logs n.
func (s LogSender) Send(ctx context.Context, n Notice) error {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	log.InfoContext(ctx, "notice", "kind", n.Kind, "to", n.To, "subject", n.Subject, "body", n.Body)
	return nil
}

// SESAPI is the part of the SES v2 client SESSender uses.
type SESAPI interface {
	SendEmail(ctx context.Context, in *sesv2.SendEmailInput, optFns ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

// SESSender sends notices as plain-text email from a verified SES identity.
type SESSender struct {
	Client SESAPI
	From   string // verified sender address, e.g. "Easel <billing@easel.dev>"
	// ConfigurationSet, when set, routes the mail through an SES
	// configuration set (bounce and complaint tracking).
	ConfigurationSet string
}

// NewSESSender builds a sender on an AWS config; endpoint, when set,
// overrides the SES endpoint (a local stand-in or a test server).
func NewSESSender(cfg aws.Config, from, endpoint string) (*SESSender, error) {
	if from == "" {
		return nil, errors.New("notify: a From address is required to send email")
	}
	client := sesv2.NewFromConfig(cfg, func(o *sesv2.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return &SESSender{Client: client, From: from}, nil
}

// Send emails n.
func (s *SESSender) Send(ctx context.Context, n Notice) error {
	if n.To == "" {
		return fmt.Errorf("send %s notice: no recipient address", n.Kind)
	}
	in := &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(s.From),
		Destination:      &types.Destination{ToAddresses: []string{n.To}},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String(n.Subject), Charset: aws.String("UTF-8")},
			Body:    &types.Body{Text: &types.Content{Data: aws.String(n.Body), Charset: aws.String("UTF-8")}},
		}},
	}
	if n.Kind != "" {
		// Tags let SES event destinations split metrics by notice kind.
		in.EmailTags = []types.MessageTag{{Name: aws.String("kind"), Value: aws.String(n.Kind)}}
	}
	if s.ConfigurationSet != "" {
		in.ConfigurationSetName = aws.String(s.ConfigurationSet)
	}
	if _, err := s.Client.SendEmail(ctx, in); err != nil {
		return fmt.Errorf("send %s notice to %s through SES: %w", n.Kind, n.To, err)
	}
	return nil
}
