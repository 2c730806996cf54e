//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/devstack"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
	"github.com/easel/easel/workflows"
)

// Chaos rounds: each submits a burst of jobs (usersPerRound users on Pro,
// jobsPerUser each, within Pro's 4 concurrent jobs), then kills the whole
// `easel dev` process group killAfter[round] after the burst began.
var killAfter = []time.Duration{200 * time.Millisecond, 120 * time.Millisecond, 300 * time.Millisecond}

const (
	usersPerRound = 4
	jobsPerUser   = 3
	userCredits   = 1000
	cancelRound   = 1 // the round in which a running job is canceled just before the kill
)

// TestChaosKillDevProcess kills -9 the process that runs the Temporal
// server, the workers and the API (`easel dev`) ~200 ms after a burst of
// submissions, restarts it, and retries every POST with its Idempotency-Key,
// three times over; one running job is canceled (DELETE) just before a kill.
// In the end every job has ended (none is left queued with a pending hold),
// the canceled one is canceled with its hold voided, every user's ledger
// balances (granted - settled = available, nothing held) and no job is
// charged more than once or for more than it held.
func TestChaosKillDevProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: builds easel and kills and restarts `easel dev` several times")
	}
	root := testenv.RepoRoot(t)
	if _, err := devstack.FindVersityGW(root); err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	dbURL, redisURL := testenv.PostgresURL(t), testenv.RedisURL(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("connect test database: %v", err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool)

	bin := buildEasel(t, root)
	env := append(os.Environ(), "DATABASE_URL="+dbURL, "REDIS_URL="+redisURL, "LOG_FORMAT=text", "LOG_LEVEL=info")
	dev := newDevProcess(t, bin, root, env)
	dev.start(t)
	if os.Getenv("GOGC") == "" { // the collector's settings for a server (internal/gctune)
		if log, err := os.ReadFile(dev.logPath); err != nil || !strings.Contains(string(log), `msg="garbage collector" gogc=400`) {
			t.Errorf("easel dev did not log its collector settings, GOGC 400 (%v):\n%s", err, lastStart(dev.logPath, 25))
		}
	}
	c := &chaosClient{base: dev.baseURL(), http: &http.Client{Timeout: 20 * time.Second}}

	var (
		jobs     []*chaosJob
		users    []*chaosUser
		canceled *chaosJob
	)
	for round, after := range killAfter {
		batch, rusers := c.newBurst(t, st, round)
		users = append(users, rusers...)
		var cancelJob *chaosJob
		if round == cancelRound {
			cancelJob = c.startLongJob(t, st)
			users = append(users, cancelJob.user)
		}
		began := time.Now()
		wait := c.burst(batch)
		if cancelJob != nil {
			time.Sleep(after / 2)
			c.cancel(t, cancelJob)
			canceled = cancelJob
			batch = append(batch, cancelJob)
		}
		time.Sleep(time.Until(began.Add(after)))
		dev.kill(t)
		wait()
		dev.start(t)
		admitted := countJobs(t, pool, batch)
		c.retryAll(t, batch)
		logRound(t, round, after, admitted, batch)
		jobs = append(jobs, batch...)
	}

	if stuck := waitEnded(t, st, jobs, 2*time.Minute); len(stuck) > 0 {
		for _, j := range stuck {
			t.Errorf("job %s (user %s, key %s) did not end:\n%s", j.id, j.user.ID, j.key, diagnose(t, pool, dev, j.id))
		}
		t.FailNow()
	}
	checkCanceled(t, pool, canceled)
	checkJobsCharged(t, pool, jobs)
	checkLedger(t, pool, st, users)
}

// chaosUser is a user with credits and a token from the dev OIDC issuer.
type chaosUser struct {
	store.User
	token string
}

// chaosJob is one submission: the same key and body on every retry.
type chaosJob struct {
	user  *chaosUser
	key   string
	body  string
	id    string // the job id of the first answer that carried one
	first string // how the first POST ended
}

type chaosClient struct {
	base string
	http *http.Client
}

// newUser creates a user on plan with credits in the database, then signs
// in through the dev issuer's login endpoint, whose subject (dev|email)
// names that user.
func (c *chaosClient) newUser(t *testing.T, st *store.Store, plan string) *chaosUser {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()[:8]
	email := "chaos-" + id + "@example.com"
	u, err := st.UpsertUser(ctx, email, "chaos-"+id, "dev|"+email)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Subscribe(ctx, u.ID, plan, "cus_chaos", time.Now().AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Grant(ctx, store.GrantInput{UserID: u.ID, Amount: userCredits, Source: "test",
		ValidFrom: time.Now().Add(-time.Minute), ValidUntil: time.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	status, body, err := c.do(http.MethodPost, "/dev/oidc/login", "", fmt.Sprintf(`{"email": %q}`, email), "")
	if err != nil || status != http.StatusOK {
		t.Fatalf("dev login: %d %s %v", status, body, err)
	}
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.IDToken == "" {
		t.Fatalf("dev login answered %s: %v", body, err)
	}
	return &chaosUser{User: u, token: tok.IDToken}
}

// newBurst makes the round's users and jobs: small sd-1.5 renders of one or
// two images, one credit each.
func (c *chaosClient) newBurst(t *testing.T, st *store.Store, round int) ([]*chaosJob, []*chaosUser) {
	t.Helper()
	var (
		jobs  []*chaosJob
		users []*chaosUser
	)
	for range usersPerRound {
		u := c.newUser(t, st, "pro")
		users = append(users, u)
		for i := range jobsPerUser {
			body := fmt.Sprintf(`{"prompt": "chaos round %d job %d", "model": "sd-1.5", "width": 256, "height": 256, "steps": 8, "batch_size": %d, "seed": %d}`,
				round, i, 1+i%2, 100*round+i)
			jobs = append(jobs, &chaosJob{user: u, key: fmt.Sprintf("chaos-%d-%d-%s", round, i, uuid.NewString()[:8]), body: body})
		}
	}
	return jobs, users
}

// burst sends every job's first POST at once; the process may die under
// them. wait returns once every request has an answer or an error.
func (c *chaosClient) burst(jobs []*chaosJob) (wait func()) {
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() {
			status, view, err := c.post(j)
			switch {
			case err != nil:
				j.first = "error: " + err.Error()
			default:
				j.first = strconv.Itoa(status)
				if view.ID != "" {
					j.id = view.ID
				}
			}
		})
	}
	return wg.Wait
}

// retryAll retries every job's POST with its key until it is answered with
// the job (200 or 202), as a client would after the crash.
func (c *chaosClient) retryAll(t *testing.T, jobs []*chaosJob) {
	t.Helper()
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for _, j := range jobs {
		wg.Go(func() {
			if err := c.retry(j, time.Minute); err != nil {
				mu.Lock()
				defer mu.Unlock()
				t.Errorf("retry of %s: %v", j.key, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

func (c *chaosClient) retry(j *chaosJob, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last := ""
	for time.Now().Before(deadline) {
		status, view, err := c.post(j)
		switch {
		case err != nil:
			last = err.Error()
		case status == http.StatusOK || status == http.StatusAccepted:
			if j.id != "" && view.ID != j.id {
				return fmt.Errorf("the retry answered job %s, the first answer job %s", view.ID, j.id)
			}
			j.id = view.ID
			return nil
		default:
			last = strconv.Itoa(status)
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("no job after %s; last answer %s", limit, last)
}

func (c *chaosClient) post(j *chaosJob) (int, api.GenerationView, error) {
	var view api.GenerationView
	status, body, err := c.do(http.MethodPost, "/v1/generations", j.user.token, j.body, j.key)
	if err != nil {
		return 0, view, err
	}
	if status == http.StatusOK || status == http.StatusAccepted {
		if err := json.Unmarshal(body, &view); err != nil {
			return 0, view, fmt.Errorf("decode %s: %w", body, err)
		}
	}
	return status, view, nil
}

// startLongJob submits a render of several seconds (Basic plan: its own t4
// workers) and waits until the API reports it running. The API, not the
// database row, is asked: the row only learns "running" when someone reads
// the job, since the GPU worker reports it through Redis.
func (c *chaosClient) startLongJob(t *testing.T, st *store.Store) *chaosJob {
	t.Helper()
	j := &chaosJob{user: c.newUser(t, st, "basic"), key: "chaos-cancel-" + uuid.NewString()[:8],
		body: `{"prompt": "cancel me mid-run", "model": "sd-1.5", "width": 256, "height": 256, "steps": 150, "batch_size": 4}`}
	status, view, err := c.post(j)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("submit the long job: %d %v", status, err)
	}
	j.id, j.first = view.ID, strconv.Itoa(status)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, err := c.do(http.MethodGet, "/v1/generations/"+j.id, j.user.token, "", "")
		if err != nil || code != http.StatusOK {
			t.Fatalf("read the long job: %d %s %v", code, body, err)
		}
		if err := json.Unmarshal(body, &view); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		if view.Status == catalog.JobRunning {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("the long job is still %s after 30 s", view.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cancel DELETEs a running job: 202, canceling.
func (c *chaosClient) cancel(t *testing.T, j *chaosJob) {
	t.Helper()
	status, body, err := c.do(http.MethodDelete, "/v1/generations/"+j.id, j.user.token, "", "")
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("cancel %s: %d %s %v", j.id, status, body, err)
	}
	var view api.GenerationView
	if err := json.Unmarshal(body, &view); err != nil || view.Status != catalog.JobCanceling {
		t.Fatalf("cancel %s answered %s (%v), want status canceling", j.id, body, err)
	}
}

func (c *chaosClient) do(method, path, token, body, idemKey string) (int, []byte, error) {
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// countJobs counts the jobs of the batch's users that the database holds.
func countJobs(t *testing.T, pool *pgxpool.Pool, jobs []*chaosJob) int {
	t.Helper()
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.user.ID)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM generations WHERE user_id = ANY($1::uuid[])`, ids).Scan(&n); err != nil {
		t.Fatalf("count jobs: %v", err)
	}
	return n
}

func logRound(t *testing.T, round int, after time.Duration, admitted int, jobs []*chaosJob) {
	t.Helper()
	firsts := map[string]int{}
	for _, j := range jobs {
		k := j.first
		if strings.HasPrefix(k, "error") {
			k = "error"
		}
		firsts[k]++
	}
	t.Logf("round %d: killed %s after the burst; first POSTs: %v; %d of %d jobs admitted before the kill",
		round, after, firsts, admitted, len(jobs))
}

// waitEnded waits until every job is completed, failed or canceled, and
// returns those that are not.
func waitEnded(t *testing.T, st *store.Store, jobs []*chaosJob, limit time.Duration) []*chaosJob {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var open []*chaosJob
		counts := map[string]int{}
		for _, j := range jobs {
			g, err := st.GetGeneration(context.Background(), j.user.ID, j.id)
			if err != nil {
				t.Fatalf("read job %s: %v", j.id, err)
			}
			counts[g.Status]++
			if !g.Terminal() {
				open = append(open, j)
			}
		}
		if len(open) == 0 {
			t.Logf("all %d jobs ended: %v", len(jobs), counts)
			return nil
		}
		if time.Now().After(deadline) {
			t.Logf("after %s: %v", limit, counts)
			return open
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkCanceled: the job canceled before the kill ended canceled, its hold
// voided, nothing charged.
func checkCanceled(t *testing.T, pool *pgxpool.Pool, j *chaosJob) {
	t.Helper()
	var status, hold string
	err := pool.QueryRow(context.Background(), `SELECT g.status, h.status FROM generations g
		JOIN credit_holds h ON h.id = g.id WHERE g.id = $1`, j.id).Scan(&status, &hold)
	if err != nil {
		t.Fatalf("read the canceled job %s: %v", j.id, err)
	}
	if status != catalog.JobCanceled || hold != store.HoldVoided {
		t.Errorf("job %s canceled before the kill ended %s with its hold %s; want canceled and voided", j.id, status, hold)
	}
}

// checkJobsCharged: a completed job's hold is posted and its usage rows
// draw exactly the settled amount, at most what was held, in at most one
// usage record; any other job's hold is voided and nothing was drawn.
func checkJobsCharged(t *testing.T, pool *pgxpool.Pool, jobs []*chaosJob) {
	t.Helper()
	for _, j := range jobs {
		var (
			status, hold        string
			held, settled, used int
			records             int
		)
		err := pool.QueryRow(context.Background(), `
			SELECT g.status, h.status, h.amount, COALESCE(h.settled_amount, 0),
			  (SELECT COALESCE(-SUM(amount), 0) FROM credit_transactions WHERE reference_id = g.id::text AND transaction_type = 'usage'),
			  (SELECT COUNT(*) FROM usage_records WHERE job_id = g.id::text)
			FROM generations g JOIN credit_holds h ON h.id = g.id WHERE g.id = $1`, j.id).
			Scan(&status, &hold, &held, &settled, &used, &records)
		if err != nil {
			t.Errorf("read job %s: %v", j.id, err)
			continue
		}
		switch {
		case status == catalog.JobCompleted && (hold != store.HoldPosted || used != settled || settled > held || records != 1):
			t.Errorf("completed job %s: hold %s, held %d, settled %d, drawn %d, %d usage records", j.id, hold, held, settled, used, records)
		case status != catalog.JobCompleted && (hold != store.HoldVoided || used != 0):
			t.Errorf("%s job %s: hold %s, drawn %d; want voided, nothing drawn", status, j.id, hold, used)
		}
	}
}

// checkLedger: for every user, what was granted less what was settled is
// what is available, nothing is held, and the credit transactions sum to it.
func checkLedger(t *testing.T, pool *pgxpool.Pool, st *store.Store, users []*chaosUser) {
	t.Helper()
	ctx := context.Background()
	for _, u := range users {
		var granted, settled, txSum int
		err := pool.QueryRow(ctx, `SELECT
			  (SELECT COALESCE(SUM(total_credits), 0) FROM credits WHERE user_id = $1),
			  (SELECT COALESCE(SUM(settled_amount), 0) FROM credit_holds WHERE user_id = $1 AND status = 'posted'),
			  (SELECT COALESCE(SUM(amount), 0) FROM credit_transactions WHERE user_id = $1)`, u.ID).
			Scan(&granted, &settled, &txSum)
		if err != nil {
			t.Fatalf("read ledger of %s: %v", u.ID, err)
		}
		b, err := st.Balance(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if granted-settled != b.Available || b.Held != 0 || txSum != b.Available {
			t.Errorf("user %s: granted %d - settled %d != available %d, or held %d != 0, or transactions sum %d",
				u.ID, granted, settled, b.Available, b.Held, txSum)
		}
	}
}

// diagnose describes a job that did not end: its row and hold, and its
// workflow's status, pending work and history.
func diagnose(t *testing.T, pool *pgxpool.Pool, dev *devProcess, jobID string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	var status, hold string
	var created, holdCreated time.Time
	err := pool.QueryRow(ctx, `SELECT g.status, g.created_at, COALESCE(h.status, 'none'), COALESCE(h.created_at, g.created_at)
		FROM generations g LEFT JOIN credit_holds h ON h.id = g.id WHERE g.id = $1`, jobID).Scan(&status, &created, &hold, &holdCreated)
	fmt.Fprintf(&b, "  database: job %s (created %s), hold %s (created %s), err %v\n",
		status, created.Format(time.RFC3339Nano), hold, holdCreated.Format(time.RFC3339Nano), err)
	tc, err := client.DialContext(ctx, client.Options{HostPort: "127.0.0.1:" + strconv.Itoa(dev.temporalPort)})
	if err != nil {
		fmt.Fprintf(&b, "  temporal: dial: %v\n", err)
		return b.String()
	}
	defer tc.Close()
	wid := workflows.GenerationID(jobID)
	d, err := tc.DescribeWorkflowExecution(ctx, wid, "")
	if err != nil {
		fmt.Fprintf(&b, "  temporal: describe %s: %v\n", wid, err)
		return b.String()
	}
	info := d.GetWorkflowExecutionInfo()
	fmt.Fprintf(&b, "  workflow %s run %s: %s, pending activities %d\n", wid, info.GetExecution().GetRunId(),
		info.GetStatus(), len(d.GetPendingActivities()))
	it := tc.GetWorkflowHistory(ctx, wid, "", false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			fmt.Fprintf(&b, "  history: %v\n", err)
			break
		}
		fmt.Fprintf(&b, "  %3d %s %s\n", ev.GetEventId(), ev.GetEventTime().AsTime().Format("15:04:05.000"), ev.GetEventType())
	}
	return b.String()
}
