package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// db is what the Store's queries run on: the pool itself, or, for a pool
// under row-level security, scopedDB.
type db interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// scopeSQL sets the row-level security scope for the current transaction
// only (is_local), so it cannot outlive the statements it was sent with.
const scopeSQL = `SELECT set_config('app.user_id', $1, true), set_config('app.admin', $2, true)`

type inBatchKey struct{}

// scopedDB sends the context's Scope in the same round trip as the
// statements: a batch led by the scope, which Postgres runs as one
// implicit transaction, or a transaction begun in the scope's batch. It
// saves the round trip ScopedConfig's PrepareConn makes on every acquire.
type scopedDB struct{ pool *pgxpool.Pool }

// acquireCtx tells PrepareConn that the scope travels with the statements.
func acquireCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, inBatchKey{}, true)
}

func scopeArgs(ctx context.Context) (userID, admin string) {
	s := scopeOf(ctx)
	if s.Admin {
		admin = "on"
	}
	return s.UserID, admin
}

// one sends the scope and then one statement, in one round trip; the
// results start at the statement's.
func (d scopedDB) one(ctx context.Context, sql string, args []any) pgx.BatchResults {
	userID, admin := scopeArgs(ctx)
	b := &pgx.Batch{}
	b.Queue(scopeSQL, userID, admin)
	b.Queue(sql, args...)
	return &scopedResults{BatchResults: d.pool.SendBatch(acquireCtx(ctx), b)}
}

func (d scopedDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	br := d.one(ctx, sql, args)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (d scopedDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	br := d.one(ctx, sql, args)
	rows, err := br.Query()
	if err != nil {
		return nil, errors.Join(err, br.Close())
	}
	return &batchRows{Rows: rows, batch: br}, nil
}

func (d scopedDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return batchRow{batch: d.one(ctx, sql, args)}
}

// Begin starts a transaction and sets the scope in it, in one round trip
// (pgx's Batch.BeginTx).
func (d scopedDB) Begin(ctx context.Context) (pgx.Tx, error) {
	userID, admin := scopeArgs(ctx)
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(scopeSQL, userID, admin)
	br := d.pool.SendBatch(acquireCtx(ctx), b)
	tx := br.Tx()
	if err := br.Close(); err != nil {
		// Ends the transaction if it began, and returns the connection.
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("begin with the row-level security scope: %w", err)
	}
	return tx, nil
}

// scopedResults reads the scope's result before the first statement's.
type scopedResults struct {
	pgx.BatchResults
	read bool
	err  error
}

func (r *scopedResults) skipScope() error {
	if !r.read {
		r.read = true
		if _, err := r.BatchResults.Exec(); err != nil {
			r.err = fmt.Errorf("set row-level security scope: %w", err)
		}
	}
	return r.err
}

func (r *scopedResults) Exec() (pgconn.CommandTag, error) {
	if err := r.skipScope(); err != nil {
		return pgconn.CommandTag{}, err
	}
	return r.BatchResults.Exec()
}

func (r *scopedResults) Query() (pgx.Rows, error) {
	if err := r.skipScope(); err != nil {
		return nil, err
	}
	return r.BatchResults.Query()
}

func (r *scopedResults) QueryRow() pgx.Row {
	if err := r.skipScope(); err != nil {
		return errRow{err}
	}
	return r.BatchResults.QueryRow()
}

// errRow is a row that could not be read.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// batchRow is QueryRow's answer: Scan reads the statement's row and ends
// the batch, returning its connection to the pool.
type batchRow struct{ batch pgx.BatchResults }

func (r batchRow) Scan(dest ...any) error {
	err := r.batch.QueryRow().Scan(dest...)
	if cerr := r.batch.Close(); err == nil {
		err = cerr
	}
	return err
}

// batchRows ends the batch when the rows are closed or read to the end.
type batchRows struct {
	pgx.Rows
	batch  pgx.BatchResults
	closed bool
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	_ = r.batch.Close()
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}
