package invokeai

import (
	"errors"
	"fmt"
	"strings"

	"github.com/easel/easel/internal/engine"
)

// Failure classes of a queue item. ErrOutOfMemory and ErrRenderFailed do not
// wrap engine.ErrInvalidRequest, so the render is retried (possibly on a
// host with more free GPU memory).
var (
	ErrOutOfMemory  = errors.New("invokeai: out of GPU memory")
	ErrRenderFailed = errors.New("invokeai: render failed")

	// errUnknownModel: the graph names a model key InvokeAI does not have.
	// Render turns it into errStaleModel (cached key: look up again) or
	// engine.ErrInvalidRequest.
	errUnknownModel = errors.New("invokeai: model not installed")
	errStaleModel   = errors.New("invokeai: cached model key is stale")
)

// invalidTypes are InvokeAI exception class names (error_type of a failed
// queue item) that mean the graph itself is wrong: running it again can only
// fail again. They are the classes of InvokeAI 6.x's graph validation
// (invokeai/app/services/shared/graph.py) and node preparation
// (invokeai/app/invocations/baseinvocation.py), plus pydantic's.
var invalidTypes = map[string]bool{
	"ValidationError":             true, // pydantic: a field value the node rejects
	"NodeInputError":              true, // an incoming value fails the node's validation
	"RequiredConnectionException": true, // a connection-only input has no edge
	"MissingInputException":       true, // a required input has neither value nor edge
	"InvalidEdgeError":            true,
	"NodeNotFoundError":           true,
	"NodeFieldNotFoundError":      true,
	"NodeIdMismatchError":         true,
	"NodeAlreadyInGraphError":     true,
	"DuplicateNodeIdError":        true,
	"CyclicalGraphError":          true,
	"UnknownGraphValidationError": true,
	"InvalidVersionError":         true, // a node version this InvokeAI does not have
	"InvalidFieldError":           true,
}

// unknownModelTypes are the exceptions InvokeAI raises for a model key it
// does not know.
var unknownModelTypes = map[string]bool{
	"UnknownModelException": true,
	"ModelNotFoundError":    true,
}

// maxErrorMessage bounds an InvokeAI error message quoted in our errors.
const maxErrorMessage = 500

// itemError classifies a failed queue item by InvokeAI's error_type (the
// Python exception's class name) and error_message.
func itemError(id int, typ, msg string) error {
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage] + "..."
	}
	detail := fmt.Sprintf("queue item %d failed: %s: %s", id, typ, msg)
	lower := strings.ToLower(typ + " " + msg)
	switch {
	case strings.Contains(lower, "outofmemory") || strings.Contains(lower, "out of memory"):
		return fmt.Errorf("%w: %s", ErrOutOfMemory, detail)
	case unknownModelTypes[typ] || strings.Contains(lower, "unknown model"):
		return fmt.Errorf("%w: %s", errUnknownModel, detail)
	case invalidTypes[typ]:
		return fmt.Errorf("%w: %s", engine.ErrInvalidRequest, detail)
	}
	return fmt.Errorf("%w: %s", ErrRenderFailed, detail)
}
