package temporalserver

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
)

const (
	clusterName = "active"
	loopbackIP  = defaultIP
)

// endpoint is where one service listens and how it is dialed.
type endpoint struct {
	bindIP string
	dialIP string
	port   int
}

func (e endpoint) addr() string { return joinHostPort(e.dialIP, e.port) }

// portPlan holds the gRPC endpoint of every service. Only the frontend is
// meant for clients; the others are internal and always on loopback.
type portPlan struct {
	frontend, history, matching, worker endpoint
	// frontendHTTP serves the HTTP API (and Nexus) next to the frontend's
	// gRPC port; without it the server warns at every start.
	frontendHTTP int
}

// planPorts picks the listen addresses up front because static membership
// and the cluster metadata both need to know them before the server starts.
func planPorts(cfg Options) (portPlan, error) {
	var (
		plan portPlan
		err  error
	)
	// Each port is listened on and closed as it is picked, so the next
	// pick could draw it again: keep them apart.
	picked := map[int]bool{}
	pick := func(ip string) (int, error) {
		for {
			p, err := freePort(ip)
			if err != nil || !picked[p] {
				picked[p] = true
				return p, err
			}
		}
	}
	port := cfg.Port
	if port == 0 {
		if port, err = pick(cfg.IP); err != nil {
			return plan, err
		}
	}
	picked[port] = true
	plan.frontend = endpoint{bindIP: cfg.IP, dialIP: dialableIP(cfg.IP), port: port}
	if plan.frontendHTTP, err = pick(cfg.IP); err != nil {
		return plan, err
	}
	for _, e := range []*endpoint{&plan.history, &plan.matching, &plan.worker} {
		p, err := pick(loopbackIP)
		if err != nil {
			return plan, err
		}
		*e = endpoint{bindIP: loopbackIP, dialIP: loopbackIP, port: p}
	}
	return plan, nil
}

// Ports for services are drawn below Linux's ephemeral range (32768+), so
// the outgoing connections of a busy test process cannot take a port
// between the moment it is picked and the moment the server binds it.
const (
	portRangeStart = 20000
	portRangeSize  = 12000
)

// freePort finds a port that is free now. Another process could still take
// it before the server binds; Start retries on that.
func freePort(ip string) (int, error) {
	for range 50 {
		p := portRangeStart + rand.IntN(portRangeSize)
		if l, err := net.Listen("tcp", joinHostPort(ip, p)); err == nil {
			_ = l.Close()
			return p, nil
		}
	}
	l, err := net.Listen("tcp", joinHostPort(ip, 0))
	if err != nil {
		return 0, fmt.Errorf("find free port on %s: %w", ip, err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer builds and starts the Temporal server on a prepared store.
// It returns once every service is listening.
func startServer(cfg Options, persistence config.Persistence, stopping *atomic.Bool) (srv temporal.Server, hostPort string, err error) {
	// The server reports a port it cannot bind through the logger's Fatal,
	// which panics; turn that into an error the caller can retry.
	defer func() {
		if p := recover(); p != nil {
			srv, hostPort, err = nil, "", fmt.Errorf("start temporal server: %v", p)
		}
	}()
	plan, err := planPorts(cfg)
	if err != nil {
		return nil, "", err
	}
	srv, err = temporal.NewServer(
		temporal.WithConfig(serverConfig(persistence, plan)),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(staticHosts(plan)),
		temporal.WithLogger(newTemporalLogger(cfg.Logger, stopping)),
		temporal.WithDynamicConfigClient(dynamicConfig(cfg.DynamicConfig)),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
	)
	if err != nil {
		return nil, "", fmt.Errorf("create temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, "", fmt.Errorf("start temporal server: %w", err)
	}
	return srv, plan.frontend.addr(), nil
}

func sqlConfig(file string) *config.SQL {
	if file == "" {
		return &config.SQL{
			PluginName: sqliteplugin.PluginName,
			// Shared-cache memory databases are per process: a random name
			// keeps several servers in one process (tests) apart.
			DatabaseName: "devtemporal-" + strconv.FormatInt(rand.Int64(), 36),
			ConnectAttributes: map[string]string{
				"mode":  "memory",
				"cache": "shared",
			},
		}
	}
	return &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: file,
		ConnectAttributes: map[string]string{
			"mode": "rwc",
			// WAL plus synchronous=normal avoids an fsync per commit: with
			// the default rollback journal a file-backed server took 76 ms/op
			// (p50 54) in BenchmarkWorkflowOneActivity's workload, with WAL
			// 32 ms/op (p50 32), the same as in-memory. Losing the last
			// transactions on power loss is fine for dev data.
			"journal_mode": "wal",
			"synchronous":  "normal",
		},
	}
}

// sqlitePersistence is one SQLite store for persistence and visibility.
func sqlitePersistence(sqlCfg *config.SQL, shards int32) config.Persistence {
	return config.Persistence{
		DefaultStore:     sqliteplugin.PluginName,
		VisibilityStore:  sqliteplugin.PluginName,
		NumHistoryShards: shards,
		DataStores: map[string]config.DataStore{
			sqliteplugin.PluginName: {SQL: sqlCfg},
		},
	}
}

// postgresPersistence is a Postgres database for persistence and another
// for visibility, as in a production cluster.
func postgresPersistence(s postgresStores, shards int32) config.Persistence {
	return config.Persistence{
		DefaultStore:     postgresStore,
		VisibilityStore:  postgresVisibilityStore,
		NumHistoryShards: shards,
		DataStores: map[string]config.DataStore{
			postgresStore:           {SQL: s.persistence},
			postgresVisibilityStore: {SQL: s.visibility},
		},
	}
}

// serverConfig is the static server configuration: the given stores and a
// single local cluster.
func serverConfig(persistence config.Persistence, plan portPlan) *config.Config {
	return &config.Config{
		Persistence: persistence,
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: plan.frontend.addr()},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services:            services(plan),
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{
			Archival: config.ArchivalNamespaceDefaults{
				History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
				Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
			},
		},
		// The server's internal SDK clients (system workers) dial this.
		PublicClient: config.PublicClient{HostPort: plan.frontend.addr()},
	}
}

func services(plan portPlan) map[string]config.Service {
	frontend := plan.frontend.service()
	frontend.RPC.HTTPPort = plan.frontendHTTP
	return map[string]config.Service{
		string(primitives.FrontendService): frontend,
		string(primitives.HistoryService):  plan.history.service(),
		string(primitives.MatchingService): plan.matching.service(),
		string(primitives.WorkerService):   plan.worker.service(),
	}
}

func (e endpoint) service() config.Service {
	return config.Service{RPC: config.RPC{GRPCPort: e.port, BindOnIP: e.bindIP}}
}

// staticHosts replaces ringpop gossip membership: with every service in one
// process there is nothing to discover, and skipping ringpop saves the
// membership ports and its join delay at startup.
func staticHosts(plan portPlan) map[primitives.ServiceName]static.Hosts {
	return map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(plan.frontend.addr()),
		primitives.HistoryService:  static.SingleLocalHost(plan.history.addr()),
		primitives.MatchingService: static.SingleLocalHost(plan.matching.addr()),
		primitives.WorkerService:   static.SingleLocalHost(plan.worker.addr()),
	}
}
