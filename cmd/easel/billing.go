package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/config"
)

// billingCommand holds the billing team's commands. They talk to Temporal
// (TEMPORAL_ADDRESS) and the database (DATABASE_URL, or `easel dev`'s
// without it) directly, through the same renewal as POST
// /v1/admin/subscriptions/{id}/renew.
func billingCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "billing", Short: "Billing operations: renew subscriptions now"}
	cmd.AddCommand(billingRenewCommand())
	return cmd
}

func billingRenewCommand() *cobra.Command {
	var subID, period string
	var allDue bool
	cmd := &cobra.Command{
		Use:   "renew (--subscription ID | --all-due)",
		Short: "End a subscription's current period now: charge and grant the next one",
		Long: "renew asks each subscription's workflow to renew its current period now. The workflow decides\n" +
			"which period that is as it accepts the request, so running it twice charges once: the second\n" +
			"run is refused, because a renewal began the current period less than an hour ago. --period\n" +
			"names the period (its current_period_start) instead: a period already renewed is refused.\n" +
			"--all-due renews every trialing or active subscription whose period has ended (a backstop for\n" +
			"workflows that were paused).",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (subID == "") == !allDue {
				return errors.New("give exactly one of --subscription ID and --all-due")
			}
			at, err := parsePeriod(period, allDue)
			if err != nil {
				return err
			}
			cfg, log, err := loadConfig(config.Needs{})
			if err != nil {
				return err
			}
			useDevDatabase(cmd, &cfg)
			d, err := connect(cmd.Context(), cfg, config.Needs{Database: true, Temporal: true}, log)
			if err != nil {
				return err
			}
			defer d.close()
			ids := []string{subID}
			if allDue {
				due, err := d.store.DueSubscriptions(cmd.Context(), time.Now())
				if err != nil {
					return err
				}
				ids = ids[:0]
				for _, s := range due {
					ids = append(ids, s.ID)
				}
			}
			return renewAll(cmd, d, ids, at)
		},
	}
	cmd.Flags().StringVar(&subID, "subscription", "", "subscription id to renew")
	cmd.Flags().StringVar(&period, "period", "", "the period to renew, as its start (RFC 3339, e.g. 2025-04-01T00:00:00Z)")
	cmd.Flags().BoolVar(&allDue, "all-due", false, "renew every subscription whose period has ended")
	return cmd
}

// renewAll renews each subscription, reporting each outcome; it fails if
// any renewal failed for a reason other than a refusal.
func renewAll(cmd *cobra.Command, d *deps, ids []string, period time.Time) error {
	out := cmd.OutOrStdout()
	var renewed, refused, failed int
	for _, id := range ids {
		res, err := api.RenewSubscription(cmd.Context(), d.temporal, id, period)
		switch {
		case err == nil:
			renewed++
			fmt.Fprintf(out, "renewed %s (period from %s)\n", id, res.PeriodStart.UTC().Format(time.RFC3339))
		case errors.Is(err, api.ErrRenewRefused):
			refused++
			fmt.Fprintf(out, "refused %s: %v\n", id, err)
		default:
			failed++
			fmt.Fprintf(out, "failed  %s: %v\n", id, err)
		}
	}
	// A refusal is the renewal's idempotence at work (already renewed), not
	// a failure: the exit status is 0 unless a renewal failed.
	fmt.Fprintf(out, "%d subscription(s): %d renewed, %d refused, %d failed\n", len(ids), renewed, refused, failed)
	if failed > 0 {
		return fmt.Errorf("%d renewal(s) failed", failed)
	}
	return nil
}

// parsePeriod reads --period; it names one subscription's period, so it
// cannot go with --all-due.
func parsePeriod(period string, allDue bool) (time.Time, error) {
	if period == "" {
		return time.Time{}, nil
	}
	if allDue {
		return time.Time{}, errors.New("--period names one subscription's period: use it with --subscription")
	}
	at, err := time.Parse(time.RFC3339Nano, period)
	if err != nil {
		return time.Time{}, fmt.Errorf("--period %q: want an RFC 3339 time such as 2025-04-01T00:00:00Z: %w", period, err)
	}
	return at, nil
}
