package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// ErrStreamEnded is returned (wrapped) by Events when the event stream
// closes or goes silent before the job reached a terminal state. The job is
// still going; poll GetGeneration to learn how it ends.
var ErrStreamEnded = errors.New("event stream ended before the job finished")

// maxEventLine bounds one SSE line; progress events are a few hundred bytes,
// so anything near this is a broken stream, not an event.
const maxEventLine = 1 << 20

// Events follows generation id's event stream, calling fn (which may be nil)
// with each progress update in order. It returns nil after fn has seen a
// terminal state, an error wrapping ErrStreamEnded when the stream closes or
// stays silent before that, a *Problem when the server refuses the stream,
// and ctx's error when ctx is done.
func (c *Client) Events(ctx context.Context, id string, fn func(Progress)) error {
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := c.newRequest(streamCtx, http.MethodGet, generationPath(id)+"/events", nil)
	if err != nil {
		return fmt.Errorf("follow events of generation %s: %w", id, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	// A proxy must not hold the stream back to cache or compress it.
	req.Header.Set("Cache-Control", "no-cache")

	// The watchdog cancels the request when nothing, not even a keep-alive
	// comment, has arrived for a while: a half-open connection would
	// otherwise block the read (or the wait for headers) forever, as the
	// client has no timeout of its own.
	idle := c.streamIdle
	if idle <= 0 {
		idle = defaultStreamIdle
	}
	var idled atomic.Bool
	watchdog := time.AfterFunc(idle, func() { idled.Store(true); cancel() })
	defer watchdog.Stop()

	resp, err := c.httpClient().Do(req)
	if err != nil {
		if ctx.Err() == nil && idled.Load() {
			return fmt.Errorf("follow events of generation %s: no answer for %s: %w", id, idle, ErrStreamEnded)
		}
		return fmt.Errorf("follow events of generation %s: %w", id, ctxOr(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("follow events of generation %s: %w", id, readProblem(resp))
	}
	watchdog.Reset(idle)

	errTerminal := errors.New("terminal")
	err = readSSE(resp.Body, func() { watchdog.Reset(idle) }, func(ev sseEvent) error {
		// The server names its events "status"; an unnamed event would be
		// "message" and carries the same payload from a simpler relay.
		if ev.Type != "status" && ev.Type != "message" {
			return nil
		}
		var p Progress
		if err := json.Unmarshal([]byte(ev.Data), &p); err != nil {
			return fmt.Errorf("decode %s event: %w", ev.Type, err)
		}
		if fn != nil {
			fn(p)
		}
		if p.Terminal() {
			return errTerminal
		}
		return nil
	})
	switch {
	case errors.Is(err, errTerminal):
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("follow events of generation %s: %w", id, ctx.Err())
	case idled.Load():
		return fmt.Errorf("follow events of generation %s: silent for %s: %w", id, idle, ErrStreamEnded)
	case err == nil:
		return fmt.Errorf("follow events of generation %s: %w", id, ErrStreamEnded)
	default:
		return fmt.Errorf("follow events of generation %s: %w: %w", id, ErrStreamEnded, err)
	}
}

// ctxOr prefers ctx's error, which says why better than the transport's
// wrapping of it.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	Type string // "message" when the stream gave no event field
	Data string // data lines joined by "\n"
	ID   string
}

// readSSE parses a text/event-stream as the HTML Living Standard describes
// it: lines end in LF, CRLF or CR; a blank line dispatches the event built
// so far; lines starting with ':' are comments; "field: value" loses one
// space after the colon; an event without data is dropped, as is an
// unfinished one at end of stream. onLine is called for every line read,
// comments included, so callers can tell a live stream from a dead one.
// Parsing stops at the first error dispatch returns; a clean end of stream
// returns nil.
func readSSE(r io.Reader, onLine func(), dispatch func(sseEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	sc.Split(scanSSELines)
	var (
		evType, lastID string
		data           strings.Builder
		hasData        bool
		first          = true
	)
	for sc.Scan() {
		line := sc.Text()
		if first {
			// A UTF-8 byte order mark may precede the first line.
			line = strings.TrimPrefix(line, "\uFEFF")
			first = false
		}
		if onLine != nil {
			onLine()
		}
		if line == "" {
			if hasData {
				typ := evType
				if typ == "" {
					typ = "message"
				}
				if err := dispatch(sseEvent{Type: typ, Data: data.String(), ID: lastID}); err != nil {
					return err
				}
			}
			evType, hasData = "", false
			data.Reset()
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			evType = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		case "id":
			// The id persists across events until changed; a NUL makes
			// the field void by the standard.
			if !strings.ContainsRune(value, 0) {
				lastID = value
			}
		}
		// "retry" and unknown fields are ignored: reconnection is replaced
		// by polling here.
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read event stream: %w", err)
	}
	return nil
}

// scanSSELines is a bufio.SplitFunc for SSE lines, which may end in "\n",
// "\r\n" or a lone "\r" (bufio.ScanLines knows only the first two).
func scanSSELines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		if data[i] == '\n' {
			return i + 1, data[:i], nil
		}
		// A CR may be the first half of a CRLF split across reads; wait
		// for the next byte unless the stream is over.
		if i+1 < len(data) {
			if data[i+1] == '\n' {
				return i + 2, data[:i], nil
			}
			return i + 1, data[:i], nil
		}
		if atEOF {
			return i + 1, data[:i], nil
		}
		return 0, nil, nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}
