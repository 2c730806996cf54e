package invokeai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// InvokeAI serves socket.io (python-socketio, protocol v5 over engine.io v4)
// at /ws/socket.io. Only a small part of it is needed here, so it is spoken
// directly over a websocket rather than through a socket.io client library:
//
//	server: 0{"sid":..,"pingInterval":..,"pingTimeout":..}   engine.io OPEN
//	client: 40 or 40{"token":..}                             connect to "/"
//	server: 40{"sid":..} (or 44{"message":..} on refusal)
//	client: 421["subscribe_queue",{"queue_id":"default"}]    event, ack id 1
//	server: 431[]                                            ack: in the room
//	server: 2  -> client: 3                                  ping / pong
//	server: 42["invocation_progress",{..}]                   events
//
// Waiting for the subscription's ack before enqueueing means no event of
// the new queue item can be missed.

// maxSocketMessage bounds one socket.io message; progress events carry a
// preview image as a data URL, far above the websocket default of 32 KiB.
const maxSocketMessage = 16 << 20

// defaultSocketIdle is used when the server's OPEN packet gives no timings.
const defaultSocketIdle = 45 * time.Second

// sioEvent is one socket.io event: its name and first argument.
type sioEvent struct {
	name string
	data json.RawMessage
}

// socket is a connected, subscribed socket.io client. Events arrive on
// events, which is closed when the connection ends.
type socket struct {
	conn   *websocket.Conn
	events chan sioEvent
	idle   time.Duration // silence longer than pingInterval+pingTimeout: dead link
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why the connection ended; read only after done is closed
}

// openSocket connects and subscribes to the queue, or returns nil (after a
// warning) when that fails, in which case the caller polls over HTTP.
func (e *Engine) openSocket(ctx context.Context) *socket {
	if e.cfg.DisableSocket {
		return nil
	}
	s, err := dialSocket(ctx, e.api, e.cfg.QueueID)
	if err != nil {
		e.log.WarnContext(ctx, "invokeai: socket.io unavailable; polling queue item status instead", "err", err)
		return nil
	}
	return s
}

func dialSocket(ctx context.Context, api *apiClient, queueID string) (*socket, error) {
	hctx, cancel := context.WithTimeout(ctx, api.timeout)
	defer cancel()
	token, err := api.auth.bearer(hctx, api)
	if err != nil {
		return nil, err
	}
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	conn, _, err := websocket.Dial(hctx, socketURL(api), &websocket.DialOptions{HTTPClient: api.http, HTTPHeader: hdr})
	if err != nil {
		return nil, fmt.Errorf("invokeai: dial socket.io: %w", err)
	}
	conn.SetReadLimit(maxSocketMessage)
	s := &socket{conn: conn, events: make(chan sioEvent, 64), idle: defaultSocketIdle, done: make(chan struct{})}
	if err := s.handshake(hctx, token, queueID); err != nil {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("invokeai: socket.io handshake: %w", err)
	}
	// The reader outlives the handshake's deadline but not Close; it must
	// not end with ctx either, or a cancelled render would look like a drop.
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = rcancel
	go s.run(rctx)
	return s, nil
}

// socketURL is the engine.io websocket endpoint under the base URL.
func socketURL(api *apiClient) string {
	u := *api.base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/ws/socket.io/"
	u.RawPath = ""
	u.RawQuery = "EIO=4&transport=websocket"
	return u.String()
}

// handshake reads OPEN, connects to the default namespace and subscribes
// to the queue, waiting for the subscription's ack.
func (s *socket) handshake(ctx context.Context, token, queueID string) error {
	msg, err := s.read(ctx)
	if err != nil {
		return err
	}
	if err := s.readOpen(msg); err != nil {
		return err
	}
	connect := "40"
	if token != "" {
		auth, _ := json.Marshal(map[string]string{"token": token})
		connect += string(auth)
	}
	if err := s.write(ctx, connect); err != nil {
		return err
	}
	if _, err := s.await(ctx, "40"); err != nil {
		return fmt.Errorf("connect to namespace /: %w", err)
	}
	sub, _ := json.Marshal([]any{"subscribe_queue", map[string]string{"queue_id": queueID}})
	if err := s.write(ctx, "421"+string(sub)); err != nil {
		return err
	}
	if _, err := s.await(ctx, "431"); err != nil {
		return fmt.Errorf("subscribe to queue %q: %w", queueID, err)
	}
	return nil
}

// readOpen parses engine.io's OPEN packet for the heartbeat timings.
func (s *socket) readOpen(msg string) error {
	if !strings.HasPrefix(msg, "0") {
		return fmt.Errorf("expected engine.io open packet, got %.40q", msg)
	}
	var open struct {
		PingInterval int `json:"pingInterval"`
		PingTimeout  int `json:"pingTimeout"`
	}
	if err := json.Unmarshal([]byte(msg[1:]), &open); err != nil {
		return fmt.Errorf("engine.io open packet: %w", err)
	}
	if open.PingInterval > 0 {
		s.idle = time.Duration(open.PingInterval+open.PingTimeout) * time.Millisecond
	}
	return nil
}

// await reads until a packet starting with prefix, answering pings and
// skipping anything else; a connect error (44) ends the wait.
func (s *socket) await(ctx context.Context, prefix string) (string, error) {
	for {
		msg, err := s.read(ctx)
		switch {
		case err != nil:
			return "", err
		case strings.HasPrefix(msg, prefix):
			return msg, nil
		case strings.HasPrefix(msg, "44"):
			return "", fmt.Errorf("server refused: %s", msg[2:])
		case msg == "1" || strings.HasPrefix(msg, "41"):
			return "", errors.New("server closed the connection")
		case msg == "2":
			if err := s.write(ctx, "3"); err != nil {
				return "", err
			}
		}
	}
}

// run delivers events until the connection ends or Close is called.
func (s *socket) run(ctx context.Context) {
	defer close(s.done)
	defer close(s.events)
	for {
		msg, err := s.readIdle(ctx)
		if err != nil {
			s.err = err
			return
		}
		switch {
		case msg == "2":
			if err := s.write(ctx, "3"); err != nil {
				s.err = err
				return
			}
		case strings.HasPrefix(msg, "42"):
			ev, ok := parseEvent(msg[2:])
			if !ok {
				continue
			}
			select {
			case s.events <- ev:
			case <-ctx.Done():
				return
			}
		case msg == "1" || strings.HasPrefix(msg, "41"):
			s.err = errors.New("server closed the connection")
			return
		}
	}
}

// readIdle reads one packet, giving up when the server has been silent
// longer than its own heartbeat allows.
func (s *socket) readIdle(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.idle)
	defer cancel()
	return s.read(ctx)
}

// read returns the next text message; binary frames (socket.io binary
// attachments, unused by InvokeAI's queue events) are skipped.
func (s *socket) read(ctx context.Context) (string, error) {
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			return "", err
		}
		if typ == websocket.MessageText {
			return string(data), nil
		}
	}
}

func (s *socket) write(ctx context.Context, msg string) error {
	return s.conn.Write(ctx, websocket.MessageText, []byte(msg))
}

// parseEvent decodes an EVENT payload: optional namespace ("/nsp,"),
// optional ack id, then a JSON array of the name and its arguments.
func parseEvent(p string) (sioEvent, bool) {
	if strings.HasPrefix(p, "/") {
		i := strings.IndexByte(p, ',')
		if i < 0 {
			return sioEvent{}, false
		}
		p = p[i+1:]
	}
	p = strings.TrimLeft(p, "0123456789")
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(p), &arr); err != nil || len(arr) == 0 {
		return sioEvent{}, false
	}
	var ev sioEvent
	if err := json.Unmarshal(arr[0], &ev.name); err != nil {
		return sioEvent{}, false
	}
	if len(arr) > 1 {
		ev.data = arr[1]
	}
	return ev, true
}

// Events returns the event channel; nil (never ready) for a nil socket, so
// a select on it simply never fires when there is no socket.
func (s *socket) Events() <-chan sioEvent {
	if s == nil {
		return nil
	}
	return s.events
}

// Err says why the connection ended; valid once Events is closed.
func (s *socket) Err() error {
	<-s.done
	return s.err
}

// Close says goodbye, closes the connection and waits for the reader.
func (s *socket) Close() {
	if s == nil {
		return
	}
	wctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = s.write(wctx, "41")
	cancel()
	s.cancel()
	_ = s.conn.CloseNow()
	<-s.done
}
