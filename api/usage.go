package api

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/internal/balancecache"
	"github.com/easel/easel/internal/store"
)

// maxUsageSpan bounds a usage report, so one request cannot scan years of
// records (a leap year's worth is allowed).
const maxUsageSpan = 366 * 24 * time.Hour

// csvBatch is how many records the CSV export reads per query: the export
// walks the range in batches instead of holding one connection and cursor
// open for as long as a slow client takes to download.
const csvBatch = 1000

// RegisterUsageRoutes adds the usage report: GET /usage (JSON, paged) and
// GET /usage.csv (every record in range, streamed).
func (s *Server) RegisterUsageRoutes(v1 *gin.RouterGroup) {
	v1.GET("/usage", s.usage)
	v1.GET("/usage.csv", s.usageCSV)
}

// UsageView is the usage report.
type UsageView struct {
	From       time.Time           `json:"from"`
	To         time.Time           `json:"to"`
	Summary    store.UsageSummary  `json:"summary"`
	Records    []store.UsageRecord `json:"records"`
	NextBefore *string             `json:"next_before"`
}

func (s *Server) usage(c *gin.Context) {
	from, to, ok := usageRange(c)
	if !ok {
		return
	}
	page, ok := parseCursorPage(c, isUUID)
	if !ok {
		return
	}
	ctx, uid := c.Request.Context(), user(c).ID
	sum, err := s.Store.UsageBetween(ctx, uid, from, to)
	if err != nil {
		unavailable(c, err)
		return
	}
	recs, err := s.Store.UsageRecords(ctx, uid, from, to, store.UsageCursor{Before: page.Before, BeforeID: page.AfterKey}, page.Limit)
	if err != nil {
		unavailable(c, err)
		return
	}
	if recs == nil {
		recs = []store.UsageRecord{}
	}
	c.JSON(http.StatusOK, UsageView{From: from, To: to, Summary: sum, Records: recs,
		NextBefore: nextCursor(len(recs), page.Limit, func() (time.Time, string) {
			return recs[len(recs)-1].CreatedAt, recs[len(recs)-1].ID
		})})
}

var usageCSVHeader = []string{"job_id", "action_type", "model", "gpu_tier", "steps", "width", "height",
	"batch_size", "compute_seconds", "credits", "created_at"}

func (s *Server) usageCSV(c *gin.Context) {
	from, to, ok := usageRange(c)
	if !ok {
		return
	}
	ctx, uid := c.Request.Context(), user(c).ID
	// Read the first batch before writing anything, so a database failure
	// can still be answered with a problem instead of a truncated file.
	recs, err := s.Store.UsageRecords(ctx, uid, from, to, store.UsageCursor{}, csvBatch)
	if err != nil {
		unavailable(c, err)
		return
	}
	name := fmt.Sprintf("usage-%s-%s.csv", csvDate(from), csvDate(to))
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	if err := w.Write(usageCSVHeader); err != nil {
		_ = c.Error(err)
		return
	}
	for len(recs) > 0 {
		for _, r := range recs {
			if err := w.Write(usageCSVRow(r)); err != nil {
				_ = c.Error(fmt.Errorf("write usage csv: %w", err))
				return
			}
		}
		w.Flush()
		if err := w.Error(); err != nil {
			// The client went away; nothing more to say to it.
			_ = c.Error(fmt.Errorf("write usage csv: %w", err))
			return
		}
		if len(recs) < csvBatch {
			break
		}
		last := recs[len(recs)-1]
		if recs, err = s.Store.UsageRecords(ctx, uid, from, to,
			store.UsageCursor{Before: last.CreatedAt, BeforeID: last.ID}, csvBatch); err != nil {
			// Headers are gone: the truncated body is all we can do; the
			// error is logged by accessLog.
			_ = c.Error(err)
			return
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = c.Error(fmt.Errorf("write usage csv: %w", err))
	}
}

func usageCSVRow(r store.UsageRecord) []string {
	return []string{r.JobID, r.ActionType, r.Model, r.GPUTier, strconv.Itoa(r.Steps), strconv.Itoa(r.Width),
		strconv.Itoa(r.Height), strconv.Itoa(r.BatchSize), computeSeconds(r.ComputeSeconds),
		strconv.Itoa(r.Credits), r.CreatedAt.UTC().Format(time.RFC3339Nano)}
}

// computeSeconds prints GPU seconds to the millisecond, dropping trailing
// zeros: the sum of measured durations carries float noise
// (1.8593368959999999) that means nothing to a reader or a spreadsheet.
func computeSeconds(s float64) string {
	return strconv.FormatFloat(math.Round(s*1000)/1000, 'f', -1, 64)
}

// csvDate names a range bound in the file name: the date alone at midnight,
// else a compact UTC timestamp (no colons, which some file systems refuse).
func csvDate(t time.Time) string {
	t = t.UTC()
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format("2006-01-02")
	}
	return t.Format("20060102T150405Z")
}

// usageRange reads ?from and ?to (RFC 3339 or YYYY-MM-DD, UTC midnight), a
// half-open window [from, to). Missing both: this calendar month (UTC). Only
// from: from until the start of next month. Only to: the calendar month
// that ends at to. It answers 400 naming the field when the range is bad.
func usageRange(c *gin.Context) (from, to time.Time, ok bool) {
	now := time.Now().UTC()
	monthStart := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC) }
	var hasFrom, hasTo bool
	if from, hasFrom, ok = usageTime(c, "from"); !ok {
		return
	}
	if to, hasTo, ok = usageTime(c, "to"); !ok {
		return
	}
	switch {
	case !hasFrom && !hasTo:
		from = monthStart(now)
		to = from.AddDate(0, 1, 0)
	case !hasTo:
		to = monthStart(now).AddDate(0, 1, 0)
	case !hasFrom:
		from = monthStart(to.Add(-time.Nanosecond))
	}
	if !to.After(from) {
		invalid(c, "to must be after from", FieldError{Field: "to", Message: "must be after from"})
		return from, to, false
	}
	if to.Sub(from) > maxUsageSpan {
		invalid(c, "the range may span at most 366 days", FieldError{Field: "to", Message: "must be at most 366 days after from"})
		return from, to, false
	}
	return from, to, true
}

func usageTime(c *gin.Context, field string) (t time.Time, present, ok bool) {
	v := c.Query(field)
	if v == "" {
		return time.Time{}, false, true
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t, err = time.Parse(time.DateOnly, v)
	}
	var msg string
	switch y := t.UTC().Year(); {
	case err != nil:
		msg = "must be an RFC 3339 time or a YYYY-MM-DD date"
	case y < 1 || y > 9999:
		// The answer repeats the period, and JSON times end at year 9999.
		msg = "must be in the years 0001 to 9999 (UTC)"
	default:
		return t.UTC(), true, true
	}
	invalid(c, field+" "+msg, FieldError{Field: field, Message: msg})
	return time.Time{}, true, false
}

// balance is the user's balance through the Redis cache (balancecache),
// falling back to Postgres on a miss or a Redis failure. GET /v1/credits and
// GET /v1/me should read the balance through it.
// invalidateBalance drops a cached balance after a ledger change made
// outside the workers (an admin grant); a failure is logged: the cache
// expires on its own within five minutes.
func (s *Server) invalidateBalance(ctx context.Context, userID string) {
	if s.Redis == nil {
		return
	}
	if err := balancecache.New(s.Redis).Invalidate(ctx, userID); err != nil {
		s.Log.WarnContext(ctx, "invalidate cached balance", "user_id", userID, "err", err)
	}
}

// balance reads the user's balance through the Redis cache.
func (s *Server) balance(ctx context.Context, userID string) (store.Balance, error) {
	load := func(ctx context.Context) (store.Balance, error) { return s.Store.Balance(ctx, userID) }
	if s.Redis == nil {
		return load(ctx)
	}
	return balancecache.New(s.Redis).Balance(ctx, userID, load)
}
