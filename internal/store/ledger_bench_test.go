package store_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

// ledgerBenchUsers is the concurrency the product's ledger target is stated
// at: 64 users, each holding and settling its own jobs, so the benchmark
// measures the ledger's cost per pair rather than contention on one user's
// row lock (TestConcurrentHoldsNeverOverspend covers that).
const ledgerBenchUsers = 64

// ledgerBenchConns is the pool size. It matches testenv.Postgres (32), so
// half of the 64 users wait for a connection, as the API does when it has
// more requests in flight than connections. EASEL_BENCH_PG_CONNS overrides
// it to study pool sizing (production's store.Connect leaves pgxpool's
// default of max(4, NumCPU) unless the URL sets pool_max_conns).
func ledgerBenchConns() int32 {
	if n, err := strconv.Atoi(os.Getenv("EASEL_BENCH_PG_CONNS")); err == nil && n > 0 {
		return int32(n)
	}
	return 32
}

// BenchmarkLedger measures credit hold+settle pairs per second with 64
// concurrent users, against baselines run on the same database, pool and
// concurrency in the same process:
//
//   - baseline-select1: BEGIN; SELECT 1; COMMIT, the cost of a transaction's
//     round trips alone (a read-only commit does not wait for the WAL flush);
//   - baseline-insert: BEGIN; INSERT one row; COMMIT, adding a durable commit
//     (WAL flush), which every ledger transaction also pays;
//   - baseline-insert-autocommit: the same INSERT alone, one round trip per
//     durable transaction, the floor for any ledger write;
//   - hold+settle: store.Hold then store.Settle of a fresh job id, two
//     durable transactions of one server-side call each.
//
// One benchmark iteration is a whole experiment of a fixed size (ledgerPairs
// pairs, baselineTxs transactions), so `make bench` (-benchtime 1x) records
// meaningful numbers and ns/op is the experiment's duration. Each reports
// throughput (tx/s or pairs/s), p50/p99 latency per transaction or pair, the
// SQL statements per transaction or pair (a pgx tracer counts them, BEGIN
// and COMMIT included), and how many CPU cores Postgres and this process
// used, which tells whether the 2-core machine is saturated. The run ends by
// checking that no user overspent.
//
//	go test -run '^$' -bench Ledger -benchtime 1x -v ./store/
func BenchmarkLedger(b *testing.B) {
	ctx := context.Background()
	trace := &sqlTracer{}
	pool := benchPool(b, trace)
	s := store.New(pool)
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_baseline (id BIGSERIAL PRIMARY KEY, v INT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	users := make([]string, ledgerBenchUsers)
	grantOf := make(map[string]string, ledgerBenchUsers)
	for i := range users {
		id := uuid.NewString()
		u, err := s.UpsertUser(ctx, id+"@example.com", "Bench User", "sub-"+id)
		if err != nil {
			b.Fatal(err)
		}
		// A grant no benchmark run can exhaust: refusals would make the
		// pairs cheaper and hide the cost being measured.
		g, err := s.Grant(ctx, store.GrantInput{UserID: u.ID, Amount: 1_000_000_000, Source: "bench",
			ValidFrom: time.Now().Add(-time.Minute), ValidUntil: time.Now().Add(24 * time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		users[i], grantOf[u.ID] = u.ID, g.ID
	}

	b.Run("baseline-select1", func(b *testing.B) {
		runLedgerOps(b, trace, baselineTxs, "tx", func(ctx context.Context, _ string) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				var one int
				return tx.QueryRow(ctx, `SELECT 1`).Scan(&one)
			})
		})
	})
	b.Run("baseline-insert", func(b *testing.B) {
		runLedgerOps(b, trace, baselineTxs, "tx", func(ctx context.Context, _ string) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO bench_baseline (v) VALUES ($1)`, 1)
				return err
			})
		})
	})
	b.Run("baseline-insert-autocommit", func(b *testing.B) {
		runLedgerOps(b, trace, baselineTxs, "tx", func(ctx context.Context, _ string) error {
			_, err := pool.Exec(ctx, `INSERT INTO bench_baseline (v) VALUES ($1)`, 1)
			return err
		})
	})
	const held, settled = 3, 2 // settle below the hold, as a partial batch does
	// baseline-rows writes exactly the rows a pair writes (the hold; the
	// grant's use, its usage transaction and the posted hold), with their
	// indexes, foreign keys and triggers, in the same two durable
	// autocommit statements, but with no lock, no read and no check: the
	// ceiling for a ledger that must commit a hold before the job runs and
	// its settle after, on this database.
	var rowPairs atomic.Int64
	b.Run("baseline-rows", func(b *testing.B) {
		runLedgerOps(b, trace, ledgerPairs, "pair", func(ctx context.Context, user string) error {
			job := uuid.NewString()
			if _, err := pool.Exec(ctx, `INSERT INTO credit_holds (id, user_id, amount, expires_at)
				VALUES ($1, $2, $3, now() + interval '1 day')`, job, user, held); err != nil {
				return err
			}
			_, err := pool.Exec(ctx, `
				WITH used AS (
				    UPDATE credits SET used_credits = used_credits + $4 WHERE id = $3 RETURNING id
				), usage AS (
				    INSERT INTO credit_transactions (user_id, credit_id, amount, transaction_type, description, reference_id)
				    SELECT $2, id, -$4::integer, 'usage', 'generation ' || $5::text, $5 FROM used
				)
				UPDATE credit_holds SET status = 'posted', settled_amount = $4 WHERE id = $1`,
				job, user, grantOf[user], settled, job)
			if err == nil {
				rowPairs.Add(1)
			}
			return err
		}, users...)
	})
	var pairs atomic.Int64
	b.Run("hold+settle", func(b *testing.B) {
		runLedgerOps(b, trace, ledgerPairs, "pair", func(ctx context.Context, user string) error {
			job := uuid.NewString()
			if _, err := s.Hold(ctx, store.HoldInput{JobID: job, UserID: user, Amount: held}); err != nil {
				return err
			}
			if _, err := s.Settle(ctx, job, settled); err != nil {
				return err
			}
			pairs.Add(1)
			return nil
		}, users...)
	})
	verifyNoOverspend(b, s, users, (pairs.Load()+rowPairs.Load())*settled)
	logTableWrites(b, pool)
}

// logTableWrites logs how the ledger's tables were updated: an update that
// is not HOT (heap-only) also writes every index of the table, and the dead
// versions it leaves slow the next scan of that user's rows.
func logTableWrites(b *testing.B, pool *pgxpool.Pool) {
	rows, err := pool.Query(context.Background(), `
		SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables
		WHERE relname IN ('users', 'credits', 'credit_holds', 'credit_transactions') ORDER BY relname`)
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	for rows.Next() {
		var name string
		var ins, upd, hot, dead int64
		if err := rows.Scan(&name, &ins, &upd, &hot, &dead); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&sb, "  %-20s inserts %7d  updates %7d  HOT %7d  dead %7d\n", name, ins, upd, hot, dead)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	b.Logf("table writes (pg_stat_user_tables; stats lag by up to a second):\n%s", sb.String())
}

// Experiment sizes: long enough (about 10 s for the ledger on 2 cores) to
// average over checkpoints and the other load on a shared machine, short
// enough for `make bench`.
const (
	ledgerPairs = 10_000
	baselineTxs = 20_000
)

// runLedgerOps runs b.N*perIter calls of op spread over ledgerBenchUsers
// goroutines, goroutine i passing users[i] (when given), and reports
// throughput, latency percentiles, statements per call and CPU use; noun
// names one call in the metrics ("tx", "pair").
func runLedgerOps(b *testing.B, trace *sqlTracer, perIter int, noun string, op func(context.Context, string) error, users ...string) {
	ctx := context.Background()
	// A short warm-up fills the pool and pgx's statement caches, so the
	// measured part sees steady state rather than connection setup.
	for i := range ledgerBenchUsers {
		if err := op(ctx, userAt(users, i)); err != nil {
			b.Fatal(err)
		}
	}
	trace.reset()
	total := b.N * perIter
	var next atomic.Int64
	lat := make([][]time.Duration, ledgerBenchUsers)
	errs := make(chan error, ledgerBenchUsers)
	cpu := startCPUSample()
	backends := trace.backendCPU()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range ledgerBenchUsers {
		wg.Go(func() {
			user := userAt(users, g)
			for next.Add(1) <= int64(total) {
				t0 := time.Now()
				if err := op(ctx, user); err != nil {
					errs <- err
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	cpu.report(b, wall)
	b.ReportMetric(float64((trace.backendCPU()-backends).Microseconds())/float64(total), "pg-us/"+noun)
	all := slices.Concat(lat...)
	reportPercentiles(b, all, noun)
	b.ReportMetric(float64(total)/wall.Seconds(), noun+"s/s")
	b.ReportMetric(float64(trace.total())/float64(total), "stmts/"+noun)
	b.Logf("%d %ss in %v; SQL time per %s by statement (client-side, includes waits):\n%s",
		total, noun, wall.Round(time.Millisecond), noun, trace.summary(total))
}

func userAt(users []string, i int) string {
	if len(users) == 0 {
		return ""
	}
	return users[i%len(users)]
}

// verifyNoOverspend checks the money after the run: for every user, the
// ledger's transactions sum to the unused balance, nothing is left held, no
// grant is overdrawn, and exactly the settled credits were used.
func verifyNoOverspend(b *testing.B, s *store.Store, users []string, wantUsed int64) {
	ctx := context.Background()
	var used int64
	for _, u := range users {
		bal, err := s.Balance(ctx, u)
		if err != nil {
			b.Fatal(err)
		}
		var txSum, userUsed, negative int64
		err = s.Pool().QueryRow(ctx, `
			SELECT (SELECT COALESCE(SUM(amount), 0) FROM credit_transactions WHERE user_id = $1),
			       (SELECT COALESCE(SUM(used_credits), 0) FROM credits WHERE user_id = $1),
			       (SELECT count(*) FROM credits WHERE user_id = $1 AND used_credits > total_credits)`,
			u).Scan(&txSum, &userUsed, &negative)
		if err != nil {
			b.Fatal(err)
		}
		if txSum != int64(bal.Granted) || bal.Held != 0 || bal.Available < 0 || negative != 0 {
			b.Fatalf("user %s overspent: transactions sum to %d, balance %+v, %d overdrawn grants",
				u, txSum, bal, negative)
		}
		used += userUsed
	}
	if used != wantUsed {
		b.Fatalf("grants used %d credits, settles charged %d", used, wantUsed)
	}
	b.Logf("no overspend: %d users, %d credits settled, transactions match balances", len(users), used)
}

// benchPool opens a pool on a fresh migrated database with a tracer that
// counts statements.
func benchPool(b *testing.B, trace *sqlTracer) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(testenv.PostgresURL(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = ledgerBenchConns()
	cfg.ConnConfig.Tracer = trace
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		trace.addBackend(c.PgConn().PID())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// sqlTracer counts statements and their client-side time, keyed by the
// statement's first words, so the benchmark can say where a pair's time goes.
type sqlTracer struct {
	mu       sync.Mutex
	stats    map[string]*sqlStat
	backends []uint32 // the pool's Postgres backend processes
}

func (t *sqlTracer) addBackend(pid uint32) {
	t.mu.Lock()
	t.backends = append(t.backends, pid)
	t.mu.Unlock()
}

// backendCPU is the CPU time the pool's Postgres backends have used: the
// server's work for this benchmark alone, which other clients of a shared
// server do not inflate as they do the pg-cores figure.
func (t *sqlTracer) backendCPU() time.Duration {
	t.mu.Lock()
	pids := slices.Clone(t.backends)
	t.mu.Unlock()
	return testenv.PIDsCPU(pids)
}

type sqlStat struct {
	n   int
	dur time.Duration
}

type traceKey struct{}

type traceStart struct {
	sql string
	at  time.Time
}

func (t *sqlTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, traceKey{}, traceStart{sql: d.SQL, at: time.Now()})
}

func (t *sqlTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	t.end(ctx)
}

// Waiting for a pool connection is traced too: with more users than
// connections it is part of every op's latency.
func (t *sqlTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return context.WithValue(ctx, traceKey{}, traceStart{sql: acquireKey, at: time.Now()})
}

func (t *sqlTracer) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireEndData) {
	t.end(ctx)
}

// acquireKey names pool waits in the summary; total() leaves them out of
// the statement count.
const acquireKey = "(pool acquire)"

func (t *sqlTracer) end(ctx context.Context) {
	st, ok := ctx.Value(traceKey{}).(traceStart)
	if !ok {
		return
	}
	d := time.Since(st.at)
	key := statementKey(st.sql)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stats == nil {
		t.stats = map[string]*sqlStat{}
	}
	s := t.stats[key]
	if s == nil {
		s = &sqlStat{}
		t.stats[key] = s
	}
	s.n++
	s.dur += d
}

func (t *sqlTracer) reset() {
	t.mu.Lock()
	t.stats = nil
	t.mu.Unlock()
}

func (t *sqlTracer) total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k, s := range t.stats {
		if k != acquireKey {
			n += s.n
		}
	}
	return n
}

func (t *sqlTracer) summary(ops int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.stats))
	for k := range t.stats {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return t.stats[keys[i]].dur > t.stats[keys[j]].dur })
	var sb strings.Builder
	for _, k := range keys {
		s := t.stats[k]
		fmt.Fprintf(&sb, "  %5.2f x  mean %7.3f ms  %s\n", float64(s.n)/float64(ops),
			float64(s.dur.Microseconds())/1000/float64(s.n), k)
	}
	return sb.String()
}

func statementKey(sql string) string {
	k := strings.Join(strings.Fields(sql), " ")
	if len(k) > 90 {
		k = k[:90] + "..."
	}
	return k
}

func reportPercentiles(b *testing.B, lat []time.Duration, noun string) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	ms := func(q float64) float64 {
		return float64(lat[min(int(q*float64(len(lat))), len(lat)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(ms(0.50), "p50-ms/"+noun)
	b.ReportMetric(ms(0.99), "p99-ms/"+noun)
}

// cpuSample measures how many cores this process and the Postgres server
// used over a run: with both near the machine's 2 cores the benchmark is
// CPU-bound, not latency-bound. Postgres is the sum over its processes that
// live across the run (pool connections do); other clients' load on a shared
// server also counts, so treat it as an upper bound.
type cpuSample struct {
	self, pg time.Duration
}

func startCPUSample() cpuSample {
	return cpuSample{self: testenv.SelfCPU(), pg: testenv.ProcessCPU("postgres")}
}

func (c cpuSample) report(b *testing.B, wall time.Duration) {
	b.ReportMetric((testenv.SelfCPU()-c.self).Seconds()/wall.Seconds(), "go-cores")
	b.ReportMetric((testenv.ProcessCPU("postgres")-c.pg).Seconds()/wall.Seconds(), "pg-cores")
}
