package main

import (
	"context"
	"strings"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/internal/notify"
	"github.com/easel/easel/web"
)

// webApp is the web app the API serves at /: the embedded build, where
// people sign in, the origins its images come from, Temporal's Web UI
// (temporalUI, "" for none) and how cards are collected.
func webApp(ctx context.Context, d *deps, cfg config.Config, authority, clientID, temporalUI string) *api.App {
	files, built := web.App()
	if !built {
		files = nil
	}
	app := &api.App{Files: files, Placeholder: web.Placeholder, OIDCAuthority: authority, OIDCClientID: clientID,
		OIDCHostedUI: cfg.OIDCHostedUIURL,
		TemporalUI:   temporalUI, TemporalNamespace: cfg.TemporalNamespace, StripePublishableKey: cfg.StripePublishableKey,
		LowBalanceCredits: notify.DefaultLowBalanceThreshold}
	if cfg.OIDCHostedUIURL != "" {
		app.OIDCMetadata = cognitoEndpoints(authority, cfg.OIDCHostedUIURL)
	}
	if cfg.CloudFrontDomain != "" {
		app.ImageOrigins = append(app.ImageOrigins, "https://"+cfg.CloudFrontDomain)
	}
	if d.objects != nil {
		if origin, err := d.objects.Origin(ctx); err == nil {
			app.ImageOrigins = append(app.ImageOrigins, origin)
		} else {
			d.log.Warn("web app: images from the bucket are not allowed by the page's policy", "err", err)
		}
	}
	return app
}

// cognitoEndpoints are a Cognito user pool's endpoints, as its discovery
// document gives them: the pool (issuer) signs tokens and publishes its
// keys; its hosted UI (managed login) domain signs in, issues tokens and
// signs out.
func cognitoEndpoints(issuer, hostedUI string) map[string]string {
	issuer, hostedUI = strings.TrimSuffix(issuer, "/"), strings.TrimSuffix(hostedUI, "/")
	return map[string]string{
		"issuer":                 issuer,
		"jwks_uri":               issuer + "/.well-known/jwks.json",
		"authorization_endpoint": hostedUI + "/oauth2/authorize",
		"token_endpoint":         hostedUI + "/oauth2/token",
		"end_session_endpoint":   hostedUI + "/logout",
	}
}
