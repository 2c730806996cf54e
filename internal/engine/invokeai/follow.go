package invokeai

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/easel/easel/internal/engine"
)

// Queue item statuses (SessionQueueItem.status).
const (
	statusCompleted = "completed"
	statusFailed    = "failed"
	statusCanceled  = "canceled"
)

// maxPollFailures is how many polls in a row may fail before the render
// gives up on the item (InvokeAI restarting loses its in-flight item).
const maxPollFailures = 3

// queueItem is the part of SessionQueueItem the engine reads.
type queueItem struct {
	ItemID       int     `json:"item_id"`
	Status       string  `json:"status"`
	ErrorType    string  `json:"error_type"`
	ErrorMessage string  `json:"error_message"`
	Session      session `json:"session"`
}

// session is the part of GraphExecutionState needed to find the result:
// results are keyed by prepared node ids, which the mappings relate to the
// ids of the submitted graph.
type session struct {
	Results               map[string]json.RawMessage `json:"results"`
	SourcePreparedMapping map[string][]string        `json:"source_prepared_mapping"`
	ExecutedHistory       []string                   `json:"executed_history"`
}

type batch struct {
	Graph       json.RawMessage `json:"graph"`
	Runs        int             `json:"runs"`
	Origin      string          `json:"origin"`
	Destination string          `json:"destination,omitempty"`
}

type enqueueBody struct {
	Batch   batch `json:"batch"`
	Prepend bool  `json:"prepend"`
}

func (e *Engine) queuePath(suffix string) string {
	return "/api/v1/queue/" + url.PathEscape(e.cfg.QueueID) + suffix
}

func (e *Engine) itemPath(id int, suffix string) string {
	return e.queuePath("/i/" + strconv.Itoa(id) + suffix)
}

// enqueue submits the graph as a one-run batch and returns its item id.
func (e *Engine) enqueue(ctx context.Context, p *plan) (int, error) {
	if p.jobID != "" {
		e.announceRetry(ctx, p.jobID, attemptOf(ctx))
		e.cancelLeftovers(ctx, p.jobID)
	}
	body := enqueueBody{Batch: batch{Graph: p.graph, Runs: 1, Origin: "easel", Destination: p.jobID}}
	var res struct {
		ItemIDs []int `json:"item_ids"`
	}
	// Not cancelled with ctx: once InvokeAI has the request it may queue the
	// item, and an item whose id never came back could not be cancelled.
	// follow cancels it if ctx ended meanwhile.
	if err := e.api.doJSON(context.WithoutCancel(ctx), "POST", e.queuePath("/enqueue_batch"), nil, body, &res); err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	if len(res.ItemIDs) != 1 {
		return 0, fmt.Errorf("%w: enqueue returned %d queue items, want 1", ErrRenderFailed, len(res.ItemIDs))
	}
	return res.ItemIDs[0], nil
}

// cancelLeftovers cancels the job's items that an earlier attempt left in
// a queue (a worker that crashed or lost its lease mid-render), so no GPU
// keeps rendering images nobody will collect. The earlier attempt may have
// run on another GPU of this host, so every server of the host is asked
// (see NewPerDevice); other hosts hear of the retry through RetryChannel
// (see ListenRetries).
func (e *Engine) cancelLeftovers(ctx context.Context, jobID string) {
	for _, api := range append([]*apiClient{e.api}, e.peers...) {
		e.cancelLeftoversOn(ctx, api, jobID)
	}
}

func (e *Engine) cancelLeftoversOn(ctx context.Context, api *apiClient, jobID string) {
	var res struct {
		Canceled int `json:"canceled"`
	}
	q := url.Values{"destination": {jobID}}
	if err := api.doJSON(ctx, "PUT", e.queuePath("/cancel_by_destination"), q, nil, &res); err != nil {
		e.log.WarnContext(ctx, "invokeai: cancel earlier queue items", "job_id", jobID, "server", api.base.String(), "err", err)
		return
	}
	if res.Canceled > 0 {
		e.log.InfoContext(ctx, "invokeai: canceled queue items of an earlier attempt", "job_id", jobID,
			"server", api.base.String(), "count", res.Canceled)
	}
}

func (e *Engine) getItem(ctx context.Context, id int) (*queueItem, error) {
	var item queueItem
	if err := e.api.doJSON(ctx, "GET", e.itemPath(id, ""), nil, nil, &item); err != nil {
		return nil, err
	}
	return &item, nil
}

// cancelItem cancels the item even though ctx has ended: that is when it
// is needed, and the GPU should not finish an image nobody will collect.
func (e *Engine) cancelItem(ctx context.Context, id int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RequestTimeout)
	defer cancel()
	if err := e.api.doJSON(ctx, "PUT", e.itemPath(id, "/cancel"), nil, nil, nil); err != nil {
		e.log.WarnContext(ctx, "invokeai: cancel queue item", "item_id", id, "err", err)
	}
}

// follow waits for the item to finish, reporting progress from socket
// events. The item is also polled over HTTP: often while there is no
// socket, seldom while there is one (a missed event must not hang the
// render). Each poll repeats the last progress, so the caller's heartbeat
// keeps beating while the item waits in the queue or the socket is down.
func (e *Engine) follow(ctx context.Context, sock *socket, id int, p *plan, onProgress func(engine.Progress)) (*queueItem, error) {
	f := &follower{id: id, node: p.progressNode, total: p.steps, onProgress: onProgress}
	if f.total <= 0 {
		f.total = 100 // a raw graph without a step count: report percent
	}
	events := sock.Events()
	interval := e.cfg.SocketPollInterval
	if events == nil {
		interval = e.cfg.PollInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	failures := 0
	for {
		check := false
		select {
		case <-ctx.Done():
			e.cancelItem(ctx, id)
			return nil, fmt.Errorf("invokeai: queue item %d: %w", id, ctx.Err())
		case ev, ok := <-events:
			if !ok {
				e.log.WarnContext(ctx, "invokeai: socket.io connection lost; polling queue item status",
					"item_id", id, "err", sock.Err())
				events = nil
				ticker.Reset(e.cfg.PollInterval)
				continue
			}
			check = f.event(ev)
		case <-ticker.C:
			f.report()
			check = true
		}
		if !check {
			continue
		}
		item, err := e.getItem(ctx, id)
		if err != nil {
			if failures++; failures >= maxPollFailures && ctx.Err() == nil {
				return nil, fmt.Errorf("poll queue item %d: %w", id, err)
			}
			continue
		}
		failures = 0
		if done, err := f.terminal(item); done {
			return item, err
		}
	}
}

// follower turns events of one queue item into engine progress.
type follower struct {
	id         int
	node       string // progress counts only from this node, when set
	total      int
	step       int
	onProgress func(engine.Progress)
	// preview is the latest progress image, sent with the next report.
	preview *engine.Preview
	// lastError is the latest invocation_error, for failures whose status
	// change carries no message.
	lastErrorType, lastError string
}

// event handles one socket event and says whether it reports a terminal
// status of the item, which is then read back over HTTP.
func (f *follower) event(ev sioEvent) bool {
	var e struct {
		ItemID     int      `json:"item_id"`
		Source     string   `json:"invocation_source_id"`
		Percentage *float64 `json:"percentage"`
		Status     string   `json:"status"`
		ErrorType  string   `json:"error_type"`
		ErrorMsg   string   `json:"error_message"`
		// Image is InvokeAI's ProgressImage, on some progress events.
		Image *struct {
			Width   int    `json:"width"`
			Height  int    `json:"height"`
			DataURL string `json:"dataURL"`
		} `json:"image"`
	}
	if err := json.Unmarshal(ev.data, &e); err != nil || e.ItemID != f.id {
		return false // another worker's item, or not an item event
	}
	counts := f.node == "" || e.Source == f.node
	switch ev.name {
	case "invocation_progress":
		if counts && e.Image != nil && strings.HasPrefix(e.Image.DataURL, "data:image/") {
			f.preview = &engine.Preview{DataURL: e.Image.DataURL, Width: e.Image.Width, Height: e.Image.Height}
		}
		if e.Percentage != nil && counts {
			f.advance(*e.Percentage)
		}
	case "invocation_complete":
		if counts && f.node != "" {
			f.advance(1) // the denoise node is done, whatever the last step event said
		}
	case "invocation_error":
		f.lastErrorType, f.lastError = e.ErrorType, e.ErrorMsg
	case "queue_item_status_changed":
		return e.Status == statusCompleted || e.Status == statusFailed || e.Status == statusCanceled
	}
	return false
}

// advance reports progress when the step moved forward; progress never
// goes back, even when a later node restarts its own percentage.
func (f *follower) advance(pct float64) {
	step := int(math.Round(min(max(pct, 0), 1) * float64(f.total)))
	if step > f.step {
		f.step = step
		f.report()
	}
}

func (f *follower) report() {
	f.onProgress(engine.Progress{Step: f.step, TotalSteps: f.total, Preview: f.preview})
	f.preview = nil
}

// terminal reports whether the item is finished and, if it failed, why.
func (f *follower) terminal(item *queueItem) (bool, error) {
	switch item.Status {
	case statusCompleted:
		if f.step < f.total {
			f.step = f.total
			f.report()
		}
		return true, nil
	case statusFailed:
		typ, msg := item.ErrorType, item.ErrorMessage
		if typ == "" && msg == "" {
			typ, msg = f.lastErrorType, f.lastError
		}
		return true, itemError(f.id, typ, msg)
	case statusCanceled:
		// Not by this render (that returns ctx.Err() first): an operator or
		// a newer attempt of the same job cancelled it.
		return true, fmt.Errorf("%w: queue item %d was canceled in InvokeAI", ErrRenderFailed, f.id)
	}
	return false, nil
}
