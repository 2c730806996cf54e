package main

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/easel/easel/internal/balancecache"
	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/internal/store"
)

// adminCommand holds the operator's administration commands. They write the
// database directly (DATABASE_URL), through the same store methods as the
// /v1/admin API, so that the first admin can be made before any admin can
// sign in.
func adminCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Administer users and credits (DATABASE_URL)"}
	cmd.AddCommand(adminGrantCommand(), adminPromoteCommand())
	return cmd
}

// withStore runs fn with a store on DATABASE_URL. Without DATABASE_URL it
// uses the database (and Redis) of `easel dev`, saying so on stderr, so the
// development stack needs no environment to administer.
func withStore(cmd *cobra.Command, fn func(st *store.Store) error) error {
	cfg, log, err := loadConfig(config.Needs{})
	if err != nil {
		return err
	}
	useDevDatabase(cmd, &cfg)
	// Redis is optional here: with REDIS_URL set, a grant also drops the
	// user's cached balance so the API shows it at once.
	d, err := connect(cmd.Context(), cfg, config.Needs{Database: true, Redis: cfg.RedisURL != ""}, log)
	if err != nil {
		return err
	}
	defer d.close()
	cliRedis = d.redis
	return fn(d.store)
}

// useDevDatabase points a command without DATABASE_URL at the database
// (and Redis) of `easel dev`, saying so on stderr.
func useDevDatabase(cmd *cobra.Command, cfg *config.Config) {
	if cfg.DatabaseURL != "" {
		return
	}
	cfg.DatabaseURL, cfg.RedisURL = devDatabaseURL, cmp.Or(cfg.RedisURL, devRedisURL)
	fmt.Fprintf(cmd.ErrOrStderr(), "note: DATABASE_URL is not set; using the development database %s\n", redact(cfg.DatabaseURL))
}

// cliRedis is the Redis client of the running admin command, if any.
var cliRedis *redis.Client

func invalidateBalance(cmd *cobra.Command, userID string) {
	if cliRedis == nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "note: REDIS_URL is not set; the API may show the old balance for up to 5 minutes")
		return
	}
	if err := balancecache.New(cliRedis).Invalidate(cmd.Context(), userID); err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "note: could not drop the cached balance:", err)
	}
}

func adminGrantCommand() *cobra.Command {
	var email, adminEmail, reason, key string
	var credits, days int
	cmd := &cobra.Command{
		Use:   "grant",
		Short: "Grant a user test credits, recorded as an admin grant",
		Example: `  easel admin grant --email ana@example.com --credits 500 --days 14 --reason "load test"
  easel admin grant --email ana@example.com --credits 500 --reason "retry-safe" --idempotency-key ticket-123`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Checked before connecting, so a typo costs no database round trip.
			switch {
			case strings.TrimSpace(email) == "":
				return errors.New("--email is required")
			case credits < 1 || credits > store.MaxAdminGrantCredits:
				return fmt.Errorf("--credits must be between 1 and %d", store.MaxAdminGrantCredits)
			case days < 1 || days > store.MaxAdminGrantDays:
				return fmt.Errorf("--days must be between 1 and %d", store.MaxAdminGrantDays)
			case strings.TrimSpace(reason) == "":
				return errors.New("--reason is required")
			}
			return withStore(cmd, func(st *store.Store) error {
				ctx := cmd.Context()
				admin, err := grantingAdmin(cmd, st, adminEmail)
				if err != nil {
					return err
				}
				now := time.Now()
				tg, g, err := st.AdminGrant(ctx, store.AdminGrantInput{AdminUserID: admin.ID, Email: email,
					Credits: credits, ValidFrom: now, ValidUntil: now.AddDate(0, 0, days),
					Reason: strings.TrimSpace(reason), IdempotencyKey: key})
				if errors.Is(err, store.ErrNotFound) {
					return noAccount(email)
				}
				if err != nil {
					return err
				}
				invalidateBalance(cmd, tg.TargetUserID)
				verb, by := "granted", admin.Email
				if tg.Replayed {
					verb = "already granted (same --idempotency-key)"
					if tg.AdminUserID != admin.ID {
						// The first run may have been recorded under another admin.
						by = "admin " + tg.AdminUserID
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %d credits to %s\n  grant %s (credits %s)\n  valid %s to %s\n  by %s: %s\n",
					verb, tg.Credits, email, tg.ID, g.ID, tg.ValidFrom.UTC().Format(time.RFC3339),
					tg.ValidUntil.UTC().Format(time.RFC3339), by, tg.Reason)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&email, "email", "", "email of the user to credit (required)")
	f.IntVar(&credits, "credits", 0, fmt.Sprintf("credits to grant, 1 to %d (required)", store.MaxAdminGrantCredits))
	f.IntVar(&days, "days", 30, "days the credits stay valid")
	f.StringVar(&reason, "reason", "", "why, kept in the audit record (required)")
	f.StringVar(&adminEmail, "admin-email", "", "email of the admin the grant is recorded under (default: the first admin)")
	f.StringVar(&key, "idempotency-key", "", "makes a rerun with the same key return the first grant instead of granting again")
	return cmd
}

// grantingAdmin is the admin named by email, or the first admin when email
// is empty. test_plan_grants records who granted, so there must be one.
func grantingAdmin(cmd *cobra.Command, st *store.Store, email string) (store.AdminUser, error) {
	if email == "" {
		a, err := st.FirstAdmin(cmd.Context())
		if errors.Is(err, store.ErrNotFound) {
			return a, errors.New("there is no admin user to record the grant under; " +
				"make one with `easel admin promote --email <address>` or name one with --admin-email")
		}
		return a, err
	}
	a, err := st.UserByEmail(cmd.Context(), email)
	if errors.Is(err, store.ErrNotFound) {
		return a, fmt.Errorf("--admin-email: no user has the email %s", email)
	}
	if err == nil && a.Role != store.RoleAdmin {
		return a, fmt.Errorf("--admin-email: %s is not an admin; promote them with `easel admin promote --email %s`", email, email)
	}
	return a, err
}

func adminPromoteCommand() *cobra.Command {
	var email string
	cmd := &cobra.Command{
		Use:   "promote",
		Short: "Make a user an admin (how the first admin is made)",
		Long: "Make a user an admin. The account must exist: it is created by the user's first request to the API\n" +
			"after signing in (opening the web app is enough).\n" +
			"Admins use the /v1/admin API with a signed-in session.",
		Example: "  easel admin promote --email ops@example.com",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(email) == "" {
				return errors.New("--email is required")
			}
			return withStore(cmd, func(st *store.Store) error {
				u, err := st.UserByEmail(cmd.Context(), email)
				if errors.Is(err, store.ErrNotFound) {
					return noAccount(email)
				}
				if err != nil {
					return err
				}
				if u.Role == store.RoleAdmin {
					fmt.Fprintf(cmd.OutOrStdout(), "%s (%s) is already an admin\n", u.Email, u.ID)
					return nil
				}
				if _, err := st.SetUserRole(cmd.Context(), u.ID, store.RoleAdmin); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s (%s) is now an admin\n", u.Email, u.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "email of the user to promote (required)")
	return cmd
}

// noAccount says why an email has no account yet: accounts are created
// by the first API request after sign-in, not by the sign-in itself.
func noAccount(email string) error {
	return fmt.Errorf("no user has the email %s; the account is created by their first request to the API after signing in (opening the web app is enough)", email)
}
