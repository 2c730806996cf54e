package main

import (
	"context"

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
