package temporalserver

import (
	"context"
	"net"
	"net/http"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/server_options"
)

// uiStartTimeout bounds how long we wait for the Web UI to accept requests.
const uiStartTimeout = 10 * time.Second

// uiServer is the Temporal Web UI served from the embedded assets.
type uiServer struct {
	srv     *uiserver.Server
	address string
	done    chan struct{}
}

// startUI serves the Web UI on opts.IP:opts.UIPort and waits until it answers.
func startUI(opts Options, frontend string) (*uiServer, error) {
	// The UI server exits the whole process (echo Logger.Fatal) when it cannot
	// bind, so find out first and return an error instead.
	if err := checkBindable("ui", uiListenAddr(opts)); err != nil {
		return nil, err
	}
	srv, err := newUIServer(uiConfig(opts, frontend))
	if err != nil {
		return nil, err
	}
	ui := &uiServer{
		srv:     srv,
		address: "http://" + joinHostPort(dialableIP(opts.IP), opts.UIPort),
		done:    make(chan struct{}),
	}
	go func() {
		defer close(ui.done)
		_ = srv.Start()
	}()
	if err := ui.waitServing(); err != nil {
		ui.stop()
		return nil, err
	}
	return ui, nil
}

func uiConfig(opts Options, frontend string) *uiconfig.Config {
	return &uiconfig.Config{
		TemporalGRPCAddress: frontend,
		Host:                opts.IP,
		Port:                opts.UIPort,
		// EnableUI serves the bundled static assets (UIAssetPath empty means
		// the copy embedded in the ui-server module).
		EnableUI:         true,
		DefaultNamespace: opts.Namespace,
		// Plain HTTP: a Secure CSRF cookie would not be sent back by browsers
		// on non-localhost addresses, breaking every write action.
		CORS:     uiconfig.CORS{CookieInsecure: true},
		HideLogs: true, // no per-request access log in `easel dev` output

	}
}

// newUIServer converts the UI server's construction panics into errors.
func newUIServer(cfg *uiconfig.Config) (srv *uiserver.Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, errorf("ui config: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = errorf("create ui server: %v", r)
		}
	}()
	return uiserver.NewServer(server_options.WithConfigProvider(cfg)), nil
}

func uiListenAddr(opts Options) string { return joinHostPort(opts.IP, opts.UIPort) }

// checkBindable fails when addr cannot be listened on now; what names the
// address in the error ("ui", "frontend").
func checkBindable(what, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return errorf("%s address %s unavailable: %w", what, addr, err)
	}
	return l.Close()
}

// waitServing polls the health endpoint so Start only returns once the UI
// can be opened.
func (u *uiServer) waitServing() error {
	ctx, cancel := context.WithTimeout(context.Background(), uiStartTimeout)
	defer cancel()
	for {
		if u.healthy(ctx) {
			return nil
		}
		select {
		case <-u.done:
			return errorf("ui server exited during startup")
		case <-ctx.Done():
			return errorf("ui server not ready: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (u *uiServer) healthy(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.address+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (u *uiServer) stop() {
	u.srv.Stop()
	<-u.done
}
