package store

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsDataError reports whether err is Postgres refusing a value itself
// (SQLSTATE class 22, "data exception": a NUL or invalid UTF-8 in text
// (22021), \u0000 in jsonb (22P05), a string too long for its column
// (22001), a malformed uuid (22P02), ...). Such an error is the input's
// fault: retrying it can never succeed, so callers answer it as bad input
// and activities fail without retrying.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && len(pgErr.Code) == 5 && pgErr.Code[:2] == "22"
}

// storableText makes text from outside the database's control (an engine's
// error message) storable: invalid UTF-8 and NUL become U+FFFD. Releasing a
// hold must never fail on the wording of the reason it is released for.
func storableText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
