package temporalserver

import (
	"context"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// readyPoll is how often readiness is retried while the server boots.
const readyPoll = 50 * time.Millisecond

// waitReady returns once the namespace answers on the frontend and carries
// every requested search attribute.
func waitReady(ctx context.Context, hostPort string, opts Options) error {
	c, err := dialWithRetry(ctx, hostPort, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := ensureSearchAttributes(ctx, c, opts); err != nil {
		return err
	}
	return retry(ctx, func() error {
		_, err := c.WorkflowService().DescribeNamespace(ctx,
			&workflowservice.DescribeNamespaceRequest{Namespace: opts.Namespace})
		return err
	}, "namespace %q not usable")
}

// dialWithRetry dials until the frontend accepts connections; right after
// the process reports ready its gRPC handlers may still be warming up.
func dialWithRetry(ctx context.Context, hostPort string, opts Options) (client.Client, error) {
	var c client.Client
	err := retry(ctx, func() error {
		var err error
		c, err = client.DialContext(ctx, client.Options{
			HostPort:  hostPort,
			Namespace: opts.Namespace,
			Logger:    sdklog.NewStructuredLogger(opts.Logger),
		})
		return err
	}, "frontend "+hostPort+" not answering")
	return c, err
}

// ensureSearchAttributes adds attributes missing from the namespace. A new
// database already has them (the server process registers them with the
// namespace); this covers a database created before an attribute was added.
func ensureSearchAttributes(ctx context.Context, c client.Client, opts Options) error {
	if len(opts.SearchAttributes) == 0 {
		return nil
	}
	existing, err := listSearchAttributes(ctx, c, opts.Namespace)
	if err != nil {
		return err
	}
	missing, err := missingAttributes(existing, opts.SearchAttributes)
	if err != nil || len(missing) == 0 {
		return err
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        opts.Namespace,
		SearchAttributes: missing,
	})
	if err != nil {
		return errorf("add search attributes: %w", err)
	}
	return nil
}

func listSearchAttributes(ctx context.Context, c client.Client, ns string) (map[string]enumspb.IndexedValueType, error) {
	var resp *operatorservice.ListSearchAttributesResponse
	err := retry(ctx, func() error {
		var err error
		resp, err = c.OperatorService().ListSearchAttributes(ctx,
			&operatorservice.ListSearchAttributesRequest{Namespace: ns})
		return err
	}, "list search attributes")
	if err != nil {
		return nil, err
	}
	return resp.GetCustomAttributes(), nil
}

// missingAttributes rejects a type change: the attribute's values are
// already indexed under the old type, so silently ignoring it would make
// queries misbehave later.
func missingAttributes(existing, want map[string]enumspb.IndexedValueType) (map[string]enumspb.IndexedValueType, error) {
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range want {
		have, ok := existing[name]
		switch {
		case !ok:
			missing[name] = typ
		case have != typ:
			return nil, errorf("search attribute %s exists as %s, want %s; use a fresh DatabaseFile", name, have, typ)
		}
	}
	return missing, nil
}

// retry calls fn until it succeeds or ctx ends, wrapping the last error.
func retry(ctx context.Context, fn func() error, what string) error {
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errorf(what+": %w (last error: %v)", ctx.Err(), err)
		case <-time.After(readyPoll):
		}
	}
}
