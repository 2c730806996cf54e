package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/workflows"
)

// defaultAdminGrantDays is how long an admin grant lasts when the request
// names no valid_until.
const defaultAdminGrantDays = 30

var grantReachMessage = fmt.Sprintf("must be within %d days of now", store.MaxAdminGrantDays)

// withinGrantReach is whether t is at most store.MaxAdminGrantDays from now,
// either way.
func withinGrantReach(t, now time.Time) bool {
	reach := store.MaxAdminGrantDays * 24 * time.Hour
	return !t.Before(now.Add(-reach)) && !t.After(now.Add(reach))
}

// maxEmailFilterChars bounds ?email= to what users.email can hold.
const maxEmailFilterChars = 255

// AdminGrantRequest is the body of POST /v1/admin/grants: the target is
// user_id or email, exactly one. Times are RFC 3339 strings, not time.Time,
// so a malformed value is answered with a field error naming it.
type AdminGrantRequest struct {
	UserID     *string `json:"user_id"`
	Email      *string `json:"email"`
	Credits    int     `json:"credits"`
	ValidFrom  *string `json:"valid_from"`
	ValidUntil *string `json:"valid_until"`
	Reason     string  `json:"reason"`
}

// AdminGrantView is an admin grant: the audit record and the credits row it
// created (CreditID, the id GET /v1/credits lists).
type AdminGrantView struct {
	ID          string    `json:"id"`
	UserID      string    `json:"user_id"`
	AdminUserID string    `json:"admin_user_id"`
	CreditID    *string   `json:"credit_id"`
	Credits     int       `json:"credits"`
	ValidFrom   time.Time `json:"valid_from"`
	ValidUntil  time.Time `json:"valid_until"`
	Reason      string    `json:"reason"`
	CreatedAt   time.Time `json:"created_at"`
}

// AdminUserView is a user as an administrator sees it.
type AdminUserView struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	Name        string     `json:"name"`
	Role        string     `json:"role"`
	IsActive    bool       `json:"is_active"`
	CreatedAt   time.Time  `json:"created_at"`
	LastLoginAt *time.Time `json:"last_login_at"`
}

// AdminUserListItem is one user in GET /v1/admin/users.
type AdminUserListItem struct {
	AdminUserView
	Plan             string `json:"plan"`
	CreditsAvailable int    `json:"credits_available"`
}

// RegisterAdminRoutes adds the administration routes to the authenticated
// /v1 group. Every one of them goes through requireAdmin first, so a
// non-admin learns nothing from them, not even which ids exist.
func (s *Server) RegisterAdminRoutes(v1 *gin.RouterGroup) {
	admin := v1.Group("/admin", s.requireAdmin)
	admin.POST("/grants", s.adminGrant)
	admin.GET("/users", s.adminListUsers)
	admin.GET("/users/:id", s.adminGetUser)
	admin.POST("/users/:id/suspend", s.adminSetActive(false))
	admin.POST("/users/:id/reactivate", s.adminSetActive(true))
	admin.POST("/subscriptions/:id/renew", s.adminRenew)
	admin.GET("/billing", s.adminBilling)
}

// requireAdmin lets through admins signed in with a session. An API key is
// refused even when its owner is an admin: keys live in scripts and CI, and
// a leaked one must not carry the power to mint credits or suspend users.
func (s *Server) requireAdmin(c *gin.Context) {
	token, _ := bearerToken(c)
	u := user(c)
	if u.Role != store.RoleAdmin || IsAPIKey(token) {
		adminOnly(c)
		return
	}
	// Administrators work across users: row-level security lets the admin
	// scope through.
	c.Request = c.Request.WithContext(store.WithScope(c.Request.Context(), store.Scope{UserID: u.ID, Admin: true}))
	c.Next()
}

func adminOnly(c *gin.Context) {
	problem(c, http.StatusForbidden, "admin-only", "Administrators only",
		"this route is for administrators signed in with a session", nil)
}

func adminUserView(u store.AdminUser) AdminUserView {
	return AdminUserView{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, IsActive: u.Active,
		CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt}
}

func adminGrantView(g store.TestGrant) AdminGrantView {
	v := AdminGrantView{ID: g.ID, UserID: g.TargetUserID, AdminUserID: g.AdminUserID, Credits: g.Credits,
		ValidFrom: g.ValidFrom, ValidUntil: g.ValidUntil, Reason: g.Reason, CreatedAt: g.CreatedAt}
	if g.CreditID != "" {
		v.CreditID = &g.CreditID
	}
	return v
}

func (s *Server) adminGrant(c *gin.Context) {
	admin := user(c)
	key := c.GetHeader("Idempotency-Key")
	if key != "" && (!validIdempotencyKey(key) || len(key) > store.MaxAdminGrantKeyLen) {
		invalid(c, fmt.Sprintf("Idempotency-Key must be 1-%d printable ASCII characters without spaces", store.MaxAdminGrantKeyLen),
			FieldError{Field: "Idempotency-Key", Message: "invalid header"})
		return
	}
	var req AdminGrantRequest
	if !s.decodeJSON(c, &req) {
		return
	}
	in, errs := req.validate(time.Now())
	if len(errs) > 0 {
		invalid(c, fmt.Sprintf("%d field(s) are invalid", len(errs)), errs...)
		return
	}
	in.AdminUserID, in.IdempotencyKey = admin.ID, key
	tg, _, err := s.Store.AdminGrant(c.Request.Context(), in)
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound(c, "user")
		return
	case errors.Is(err, store.ErrIdempotencyConflict):
		idempotencyConflict(c)
		return
	case errors.Is(err, store.ErrNotAdmin):
		// Demoted between authentication and the grant.
		adminOnly(c)
		return
	case err != nil:
		unavailable(c, err)
		return
	}
	s.invalidateBalance(c.Request.Context(), tg.TargetUserID)
	status := http.StatusCreated
	if tg.Replayed {
		status = http.StatusOK
	} else {
		s.Log.InfoContext(c.Request.Context(), "admin grant", "request_id", c.GetString(ctxRequestID),
			"admin_user_id", admin.ID, "target_user_id", tg.TargetUserID, "credits", tg.Credits, "grant_id", tg.ID)
	}
	c.JSON(status, adminGrantView(tg))
}

// validate returns the grant the request describes, or every problem. The
// store checks the same limits again; checking here names the fields.
func (r AdminGrantRequest) validate(now time.Time) (store.AdminGrantInput, []FieldError) {
	var in store.AdminGrantInput
	var errs []FieldError
	switch {
	case r.UserID != nil && r.Email != nil:
		errs = append(errs, FieldError{Field: "user_id", Message: "send user_id or email, not both"})
	case r.UserID != nil:
		id, err := uuid.Parse(*r.UserID)
		if err != nil {
			errs = append(errs, FieldError{Field: "user_id", Message: "must be a UUID"})
		}
		in.UserID = id.String()
	case r.Email != nil:
		in.Email = strings.TrimSpace(*r.Email)
		if in.Email == "" || len(in.Email) > maxEmailFilterChars {
			errs = append(errs, FieldError{Field: "email", Message: "must be an email address"})
		}
	default:
		errs = append(errs, FieldError{Field: "user_id", Message: "user_id or email is required"})
	}
	in.Credits = r.Credits
	if r.Credits < 1 || r.Credits > store.MaxAdminGrantCredits {
		errs = append(errs, FieldError{Field: "credits", Message: fmt.Sprintf("must be between 1 and %d", store.MaxAdminGrantCredits)})
	}
	in.ValidFrom = now
	fromOK := true
	if r.ValidFrom != nil {
		t, err := time.Parse(time.RFC3339, *r.ValidFrom)
		switch {
		case err != nil:
			errs = append(errs, FieldError{Field: "valid_from", Message: "must be an RFC 3339 time, like 2030-01-02T15:04:05Z"})
			fromOK = false
		case !withinGrantReach(t, now):
			errs = append(errs, FieldError{Field: "valid_from", Message: grantReachMessage})
			fromOK = false
		}
		in.ValidFrom = t
	}
	in.ValidUntil = in.ValidFrom.AddDate(0, 0, defaultAdminGrantDays)
	if r.ValidUntil != nil {
		t, err := time.Parse(time.RFC3339, *r.ValidUntil)
		switch {
		case err != nil:
			errs = append(errs, FieldError{Field: "valid_until", Message: "must be an RFC 3339 time, like 2030-01-02T15:04:05Z"})
		case fromOK && !t.After(in.ValidFrom):
			errs = append(errs, FieldError{Field: "valid_until", Message: "must be after valid_from"})
		case !t.After(now):
			// A grant that has already ended could never be spent.
			errs = append(errs, FieldError{Field: "valid_until", Message: "must be in the future"})
		case !withinGrantReach(t, now):
			errs = append(errs, FieldError{Field: "valid_until", Message: grantReachMessage})
		}
		in.ValidUntil = t
	}
	if fromOK && r.ValidUntil == nil && !in.ValidUntil.After(now) {
		// The default validity would end before today: the grant would be
		// written expired.
		errs = append(errs, FieldError{Field: "valid_from", Message: fmt.Sprintf(
			"with the default %d days, a grant from %s has already ended; send a later valid_from or a valid_until",
			defaultAdminGrantDays, in.ValidFrom.Format(time.RFC3339))})
	}
	in.Reason = strings.TrimSpace(r.Reason)
	switch n := utf8.RuneCountInString(in.Reason); {
	case n == 0:
		errs = append(errs, FieldError{Field: "reason", Message: "is required"})
	case n > store.MaxAdminGrantReason:
		errs = append(errs, FieldError{Field: "reason", Message: fmt.Sprintf("must be at most %d characters", store.MaxAdminGrantReason)})
	case strings.ContainsFunc(in.Reason, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
		// NUL above all, which Postgres refuses; line breaks are fine in an
		// audit note.
		errs = append(errs, FieldError{Field: "reason", Message: "must not contain control characters"})
	}
	return in, errs
}

func (s *Server) adminListUsers(c *gin.Context) {
	page, ok := parseCursorPage(c, isUUID)
	if !ok {
		return
	}
	email := c.Query("email")
	if utf8.RuneCountInString(email) > maxEmailFilterChars {
		invalid(c, "email is too long", FieldError{Field: "email", Message: fmt.Sprintf("must be at most %d characters", maxEmailFilterChars)})
		return
	}
	users, err := s.Store.AdminListUsers(c.Request.Context(), store.AdminUserFilter{Email: email, Page: page})
	if err != nil {
		unavailable(c, err)
		return
	}
	views := make([]AdminUserListItem, 0, len(users))
	for _, u := range users {
		views = append(views, AdminUserListItem{AdminUserView: adminUserView(u.AdminUser), Plan: u.PlanSlug,
			CreditsAvailable: u.Available})
	}
	c.JSON(http.StatusOK, gin.H{"users": views, "next_before": nextCursor(len(views), page.Limit, func() (time.Time, string) {
		return users[len(users)-1].CreatedAt, users[len(users)-1].ID
	})})
}

// adminGetUser answers what /v1/me answers the user, and the admin grants
// they received.
func (s *Server) adminGetUser(c *gin.Context) {
	ctx := c.Request.Context()
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		notFound(c, "user")
		return
	}
	u, err := s.Store.AdminGetUser(ctx, id.String())
	if errors.Is(err, store.ErrNotFound) {
		notFound(c, "user")
		return
	}
	if err != nil {
		unavailable(c, err)
		return
	}
	acct, err := s.account(ctx, u.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	grants, err := s.Store.Grants(ctx, u.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	adminGrants, err := s.Store.TestGrants(ctx, u.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	adminGrantViews := make([]AdminGrantView, 0, len(adminGrants))
	for _, g := range adminGrants {
		adminGrantViews = append(adminGrantViews, adminGrantView(g))
	}
	jobs, err := s.Store.ListGenerations(ctx, u.ID, store.Page{Limit: adminRecentJobs})
	if err != nil {
		unavailable(c, err)
		return
	}
	body := gin.H{
		"user":               adminUserView(u),
		"plan":               acct.Plan,
		"credits":            CreditsWithGrants{CreditsView: acct.Credits, Grants: grantViews(grants)},
		"usage":              acct.Usage,
		"storage":            acct.Storage,
		"admin_grants":       adminGrantViews,
		"recent_generations": adminJobViews(jobs),
	}
	switch sub, err := s.Store.LiveSubscription(ctx, u.ID); {
	case err == nil:
		body["subscription"] = s.subscriptionView(ctx, sub)
	case !errors.Is(err, store.ErrNotFound):
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusOK, body)
}

// adminRecentJobs is how many of a user's latest jobs the administrator's
// view of them lists.
const adminRecentJobs = 10

// AdminJobView is one of a user's jobs as an administrator sees it: enough
// to find it, and its workflow, in Temporal UI.
type AdminJobView struct {
	ID             string    `json:"id"`
	Status         string    `json:"status"`
	Model          string    `json:"model"`
	CreditsHeld    int       `json:"credits_held"`
	CreditsSettled *int      `json:"credits_settled"`
	Error          string    `json:"error,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	WorkflowID     string    `json:"workflow_id"`
}

func adminJobViews(jobs []store.Generation) []AdminJobView {
	views := make([]AdminJobView, 0, len(jobs))
	for _, g := range jobs {
		views = append(views, AdminJobView{ID: g.ID, Status: g.Status, Model: g.Model, CreditsHeld: g.CreditsHeld,
			CreditsSettled: g.CreditsSettled, Error: g.Error, CreatedAt: g.CreatedAt, WorkflowID: workflows.GenerationID(g.ID)})
	}
	return views
}

// CreditsWithGrants is the balance with the grants it is made of, as the
// admin user detail shows it.
type CreditsWithGrants struct {
	CreditsView
	Grants []GrantView `json:"grants"`
}

// adminSetActive suspends (false) or reactivates (true) the user. The change
// takes effect on the user's next request: authentication reads is_active
// every time. Suspending also cancels the user's queued and running jobs,
// each refunded in full as any cancel is: a suspended user can no longer
// cancel them, and the account is not charged for work after it was
// frozen. A repeat (after a failure) cancels what is still unfinished.
func (s *Server) adminSetActive(active bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		admin := user(c)
		id, err := uuid.Parse(c.Param("id"))
		if err != nil {
			notFound(c, "user")
			return
		}
		if !active && id.String() == admin.ID {
			// Suspending yourself could leave no admin able to undo it.
			problem(c, http.StatusConflict, "cannot-suspend-self", "Cannot suspend yourself",
				"an administrator cannot suspend their own account; ask another administrator", nil)
			return
		}
		u, err := s.Store.SetUserActive(c.Request.Context(), id.String(), active)
		s.forget(id.String())
		if errors.Is(err, store.ErrNotFound) {
			notFound(c, "user")
			return
		}
		if err != nil {
			unavailable(c, err)
			return
		}
		canceled := 0
		if !active {
			if canceled, err = s.cancelUnfinished(c, u.ID); err != nil {
				unavailable(c, err)
				return
			}
		}
		s.Log.InfoContext(c.Request.Context(), "admin set user active", "request_id", c.GetString(ctxRequestID),
			"admin_user_id", admin.ID, "target_user_id", u.ID, "active", active, "jobs_canceled", canceled)
		c.JSON(http.StatusOK, adminUserView(u))
	}
}

// cancelUnfinished cancels every queued or running job of the user and
// counts them.
func (s *Server) cancelUnfinished(c *gin.Context, userID string) (int, error) {
	ctx, cancel := detached(c, 30*time.Second)
	defer cancel()
	jobs, err := s.Store.UnfinishedGenerations(ctx, userID)
	if err != nil {
		return 0, err
	}
	for _, g := range jobs {
		if _, err := s.cancelJob(ctx, g); err != nil {
			return 0, err
		}
	}
	return len(jobs), nil
}
