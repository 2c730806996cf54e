package api

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
)

// A page cursor (every list paged newest first: images, generations,
// uploads, usage records, webhook deliveries, admin's users) names where
// the previous page ended: its last item's created_at and its tiebreak (an
// image's name, otherwise the row's id). A cursor on created_at alone
// would skip the rest of the rows sharing an instant when a page ends
// among them: a batch's images, the deliveries of one event to several
// endpoints, the rows one transaction wrote. Clients pass next_before back as ?before= without reading it;
// it is base64url text ("<RFC 3339 time> <key>"), opaque by contract.

// encodeCursor is the cursor after the item created at at with key key.
func encodeCursor(at time.Time, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + " " + key))
}

// decodeCursor reads a cursor encodeCursor made.
func decodeCursor(s string) (time.Time, string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", false
	}
	at, key, ok := strings.Cut(string(raw), " ")
	if !ok || key == "" {
		return time.Time{}, "", false
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil || t.IsZero() {
		return time.Time{}, "", false // no item is created at the zero time
	}
	return t, key, true
}

// parseCursorPage reads ?limit= and ?before= for a list paged by cursor.
// ?before= is the previous page's next_before, or an RFC 3339 time (the
// form these lists took before they had cursors): the items created
// strictly before it. validKey tells a key the list could have made.
func parseCursorPage(c *gin.Context, validKey func(string) bool) (store.Page, bool) {
	v := c.Query("before")
	if _, err := time.Parse(time.RFC3339Nano, v); v == "" || err == nil {
		return parsePage(c)
	}
	p, ok := parseLimit(c)
	if !ok {
		return p, false
	}
	if p.Before, p.AfterKey, ok = decodeCursor(v); !ok || !validKey(p.AfterKey) {
		invalid(c, "before must be a next_before cursor or an RFC 3339 time",
			FieldError{Field: "before", Message: "must be a next_before cursor or an RFC 3339 time"})
		return p, false
	}
	return p, true
}

// anyKey accepts every key: an image's name is compared as text.
func anyKey(string) bool { return true }

// isUUID accepts a row's id (a job's, an upload's, ...), in the form the
// cursor was made with.
func isUUID(key string) bool {
	id, err := uuid.Parse(key)
	return err == nil && id.String() == key
}

// nextCursor is the next_before of a page of n items asked with limit:
// the cursor after its last item, or nil on the last page.
func nextCursor(n, limit int, last func() (time.Time, string)) *string {
	if n < limit || n == 0 {
		return nil
	}
	at, key := last()
	s := encodeCursor(at, key)
	return &s
}
