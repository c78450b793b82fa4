// Package server assembles a sigil server: it opens the store, puts the
// encryption barrier over it, unseals it with the configured key provider,
// bootstraps the account, and serves the AWS-compatible APIs, the native
// /v1/ API, health, readiness and metrics over HTTP.
//
// Use New with a validated Config, then Run (or Start and Shutdown, which
// tests use to get a server on a random port). The server never reads the
// environment or flags; package main does that.
//
// Start-up refuses, with one clear error, anything that could lose or expose
// data: a data directory open to others, a corrupt store file, a missing or
// wrong key-encryption key. It never repairs or overwrites data.
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/barrier"
	"sigil.dev/sigil/internal/dynamic"
	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/images"
	"sigil.dev/sigil/internal/rotation"
	"sigil.dev/sigil/internal/secrets"
	"sigil.dev/sigil/internal/sigv4"
	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/store/bolt"
	"sigil.dev/sigil/internal/sts"
)

// Options carries what tests inject; the zero value is right for production.
type Options struct {
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Rand is the randomness source. Default crypto/rand.Reader.
	Rand io.Reader
	// DynamicEngines builds the database engines of dynamic secrets.
	// Default dynamic.DefaultEngine; tests wrap it to stop a server at a
	// chosen point of issuing a user.
	DynamicEngines dynamic.EngineFactory
}

// Server is one sigil server process.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	rand    io.Reader
	engines dynamic.EngineFactory

	db       store.Store // the backend, instrumented
	barrier  *barrier.Barrier
	keys     *authn.Keys
	verifier *sigv4.Verifier
	metrics  *metrics
	unsealer *barrier.Unsealer // shamir provider, once initialised

	auditKeys *audit.Keys

	// svc is set once the barrier is unsealed and the account bootstrapped.
	svc       atomic.Pointer[services]
	unsealMu  sync.Mutex // serialises unseal and bootstrap
	httpSrv   *http.Server
	ln        net.Listener
	serveErr  chan error
	closeOnce sync.Once
}

// services are the parts that exist only while unsealed.
type services struct {
	account  *account
	audit    auditLog
	secrets  *secrets.Service
	iam      *iam.API
	sts      *sts.Service
	images   *images.Registry
	catalog  *dynamic.Catalog
	leases   *dynamic.Leases
	rotators *rotation.Registry
	authz    iam.Authorizer
	// stop ends the background work started at unseal and waits for it.
	stop func()
}

// New opens the data directory and store and, unless the key provider is
// shamir, unseals the barrier and bootstraps the account. cfg must have been
// validated.
func New(ctx context.Context, cfg Config, opts Options) (*Server, error) {
	s := &Server{cfg: cfg, log: opts.Logger, now: opts.Now, rand: opts.Rand, engines: opts.DynamicEngines, metrics: newMetrics()}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	var err error
	if s.auditKeys, err = audit.LoadOrCreateKeys(cfg.DataDir, s.rand); err != nil {
		return nil, fmt.Errorf("audit keys: %w", err)
	}
	dbPath := filepath.Join(cfg.DataDir, "sigil.db")
	db, err := bolt.Open(dbPath, bolt.Options{Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	s.db = instrument(db, s.metrics)
	s.barrier = barrier.New(s.db, barrier.Options{Logger: s.log, Now: s.now, Rand: s.rand})
	s.keys = authn.NewKeys(s.barrier, s.now)
	if s.verifier, err = sigv4.New(sigv4.Options{
		Region:      cfg.Region,
		Services:    []string{"secretsmanager", "iam", "sts", "sigil"},
		Now:         s.now,
		Credentials: sigv4Credentials{s},
	}); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.openBarrier(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openBarrier unseals the barrier with the file or env key, initialising it
// on first start. With shamir it leaves the barrier sealed for the operator.
func (s *Server) openBarrier(ctx context.Context) error {
	initialized, err := s.barrier.Initialized(ctx)
	if err != nil {
		return fmt.Errorf("reading keyring: %w", err)
	}
	var kek []byte
	switch s.cfg.KeyProvider {
	case "shamir":
		if initialized {
			if s.unsealer, err = s.barrier.NewUnsealer(ctx); err != nil {
				return fmt.Errorf("key provider shamir: %w", err)
			}
			s.log.Warn("server is sealed: run `sigil operator unseal` with threshold shares")
		} else {
			s.log.Warn("server is not initialised: run `sigil operator init` to create the key shares")
		}
		return nil
	case "file":
		if initialized {
			if _, err := os.Stat(s.cfg.KeyFile); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("key provider file: %s is missing but the store was initialised with a key: restore that file, never create a new one", s.cfg.KeyFile)
			}
		}
		kek, _, err = barrier.FileKEK{Path: s.cfg.KeyFile, Rand: s.rand}.LoadOrCreate(ctx)
		if err != nil {
			return fmt.Errorf("key provider file: %w", err)
		}
	case "env":
		kek, err = barrier.EnvKEK{Var: s.cfg.KeyEnvName, Lookup: func(string) (string, bool) {
			return s.cfg.KeyEnv, s.cfg.KeyEnv != ""
		}}.KEK(ctx)
		if err != nil {
			return fmt.Errorf("key provider env: %w", err)
		}
	default:
		return fmt.Errorf("key provider %q is not supported", s.cfg.KeyProvider)
	}
	defer clear(kek)
	if !initialized {
		if err := s.barrier.Initialize(ctx, kek); err != nil && !errors.Is(err, barrier.ErrAlreadyInitialized) {
			return fmt.Errorf("initialising keyring: %w", err)
		}
		s.log.Info("keyring initialised", "provider", s.cfg.KeyProvider)
	}
	if err := s.barrier.Unseal(ctx, kek); err != nil {
		if errors.Is(err, barrier.ErrWrongKey) {
			return fmt.Errorf("key provider %s: the key does not open this data directory's keyring: supply the key it was initialised with", s.cfg.KeyProvider)
		}
		return fmt.Errorf("unsealing: %w", err)
	}
	return s.afterUnseal(ctx)
}

// afterUnseal bootstraps the account and builds the services that need an
// unsealed store.
func (s *Server) afterUnseal(ctx context.Context) error {
	s.unsealMu.Lock()
	defer s.unsealMu.Unlock()
	if s.svc.Load() != nil {
		return nil
	}
	acct, err := s.bootstrap(ctx)
	if err != nil {
		return err
	}
	opened, err := s.openAudit(acct.ID)
	if err != nil {
		return err
	}
	alog := countingLog{auditLog: opened, decisions: s.metrics.decisions}
	ents, err := iam.NewEntities(iam.EntitiesConfig{Store: s.barrier, AccountID: acct.ID, Keys: s.keys, Now: s.now, Rand: s.rand})
	if err != nil {
		alog.Close()
		return err
	}
	authz := iam.NewEngine(ents, s.log)
	iamAPI, err := iam.NewAPI(iam.APIConfig{Entities: ents, Authorizer: authz, Audit: alog, Now: s.now, Logger: s.log})
	if err != nil {
		alog.Close()
		return err
	}
	imgs, err := images.New(ctx, images.Config{Store: s.barrier, Roles: ents, AccountID: acct.ID, Now: s.now, Logger: s.log})
	if err != nil {
		alog.Close()
		return err
	}
	stsSvc, err := sts.New(ctx, sts.Config{
		Images:     imgs,
		Store:      s.barrier,
		Entities:   ents,
		Federation: federation.NewVerifier(federation.Options{Now: s.now, Logger: s.log, AllowInsecureHTTP: s.cfg.AllowInsecureOIDC}),
		Authorizer: authz,
		Audit:      alog,
		AccountID:  acct.ID,
		Region:     s.cfg.Region,
		Now:        s.now,
		Rand:       s.rand,
		Logger:     s.log,
	})
	if err != nil {
		alog.Close()
		return err
	}
	catalog, err := dynamic.NewCatalog(dynamic.CatalogOptions{Store: s.barrier, Now: s.now, Rand: s.rand, Logger: s.log, Engines: s.engines})
	if err != nil {
		alog.Close()
		return err
	}
	replica := s.replicaID()
	leases, err := dynamic.NewLeases(dynamic.Options{Store: s.barrier, Roles: catalog, Now: s.now, Rand: s.rand, Logger: s.log, Replica: replica})
	if err != nil {
		alog.Close()
		return err
	}
	reaper, err := dynamic.NewReaper(dynamic.ReaperOptions{
		Leases: leases, ID: replica, Now: s.now, Interval: s.cfg.ReaperInterval,
		OnRevoke: s.auditRevocation(alog, acct.ID),
	})
	if err != nil {
		alog.Close()
		return err
	}
	rotators, err := rotation.NewRegistry(rotation.RegistryConfig{Store: s.barrier, Region: s.cfg.Region, AccountID: acct.ID, Now: s.now, Rand: s.rand})
	if err != nil {
		alog.Close()
		return err
	}
	// RotateSecret with RotateImmediately kicks the runner, which needs
	// the service: the pointer is set before anything can call it.
	var runnerPtr atomic.Pointer[rotation.Runner]
	sec, err := secrets.New(secrets.Config{
		Store:      s.barrier,
		Authorizer: authz,
		Audit:      alog,
		Region:     s.cfg.Region,
		AccountID:  acct.ID,
		Now:        s.now,
		Rand:       s.rand,
		Logger:     s.log,
		Dynamic:    &dynamicIssuer{catalog: catalog, leases: leases, log: s.log},
		Rotators:   rotators.Check,
		OnRotate: func() {
			if r := runnerPtr.Load(); r != nil {
				r.Kick()
			}
		},
	})
	if err != nil {
		alog.Close()
		return err
	}
	runner, err := rotation.New(rotation.Config{
		Secrets: sec, Store: s.barrier, Registry: rotators, Audit: alog, Now: s.now, Rand: s.rand, Logger: s.log,
		Interval: s.cfg.RotationInterval, HolderID: replica, AccountID: acct.ID, Region: s.cfg.Region,
	})
	if err != nil {
		alog.Close()
		return err
	}
	runnerPtr.Store(runner)
	bg, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { stsSvc.Run(bg) })
	wg.Go(func() { imgs.Run(bg) })
	wg.Go(func() { s.purgeLoop(bg, sec) })
	wg.Go(func() { _ = reaper.Run(bg) })
	wg.Go(func() { _ = runner.Run(bg) })
	// stop ends the background work and waits for it, so nothing writes
	// to the store after Close closes it.
	stop := func() { cancel(); wg.Wait(); catalog.Close() }
	s.svc.Store(&services{account: acct, audit: alog, secrets: sec, iam: iamAPI, sts: stsSvc, images: imgs,
		catalog: catalog, leases: leases, rotators: rotators, authz: authz, stop: stop})
	s.metrics.sealed.Set(0)
	s.log.Info("unsealed", "account", acct.ID, "region", s.cfg.Region)
	return nil
}

// replicaID names this server among the replicas sharing a store, for the
// lock that elects one reaper. It is kept in the data directory, so that a
// server restarted after a crash takes its own lock back at once instead of
// waiting for it to expire.
func (s *Server) replicaID() string {
	path := filepath.Join(s.cfg.DataDir, replicaIDFile)
	host, _ := os.Hostname()
	// An id written on another host is a copied data directory (a baked
	// image, a cloned volume): sharing it would let two replicas both
	// think they hold the same lock, so this host takes a new one.
	if b, err := os.ReadFile(path); err == nil {
		if id := string(bytes.TrimSpace(b)); strings.HasPrefix(id, host+"/") {
			return id
		}
	}
	var b [12]byte
	_, _ = io.ReadFull(s.rand, b[:])
	id := fmt.Sprintf("%s/%x", host, b)
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		s.log.Warn("could not keep the replica id in the data directory; a restart waits for the reaper lock to expire", "err", err)
	}
	return id
}

// replicaIDFile is the file in the data directory holding the replica id.
const replicaIDFile = "replica-id"

// purgeLoop removes secrets whose recovery window has ended, every minute,
// until ctx ends. Reads purge lazily as well; this keeps listings and the
// store small.
func (s *Server) purgeLoop(ctx context.Context, sec *secrets.Service) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := sec.PurgeExpired(ctx); err != nil {
				s.log.Warn("purging deleted secrets", "err", err)
			} else if n > 0 {
				s.log.Info("purged deleted secrets", "count", n)
			}
		}
	}
}

// auditLog is what the server needs of the audit log: *audit.Log, or
// noAudit when audit is off.
type auditLog interface {
	audit.Sink
	Healthy() bool
	Err() error
	Dir() string
	Close() error
}

// noAudit records nothing (AuditMode "off").
type noAudit struct{ audit.Discard }

func (noAudit) Healthy() bool { return true }
func (noAudit) Err() error    { return nil }
func (noAudit) Dir() string   { return "" }
func (noAudit) Close() error  { return nil }

// openAudit opens the durable audit log and its exporters and registers
// its metrics.
func (s *Server) openAudit(accountID string) (auditLog, error) {
	if s.cfg.AuditMode == "off" {
		s.log.Warn("AUDIT IS OFF: no decision is recorded; use --audit-mode off only to measure its cost")
		return noAudit{}, nil
	}
	opts := audit.Options{
		Keys:               s.auditKeys,
		CheckpointEvery:    s.cfg.AuditCheckpointEvery,
		CheckpointInterval: s.cfg.AuditCheckpointInterval,
		Region:             s.cfg.Region,
		AccountID:          accountID,
		Now:                s.now,
		Logger:             s.log,
	}
	if s.cfg.AuditMode == "async" {
		opts.Mode = audit.ModeAsync
	}
	if s.cfg.AuditStdout {
		opts.Exporters = append(opts.Exporters, audit.NewWriterExporter("stdout", os.Stdout))
	}
	if s.cfg.AuditWebhook != "" {
		wh, err := audit.NewWebhook(audit.WebhookOptions{URL: s.cfg.AuditWebhook})
		if err != nil {
			return nil, fmt.Errorf("audit webhook: %w", err)
		}
		opts.Exporters = append(opts.Exporters, wh)
	}
	l, err := audit.Open(s.cfg.AuditDir, opts)
	if err != nil {
		return nil, fmt.Errorf("opening audit log %s: %w", s.cfg.AuditDir, err)
	}
	for _, c := range l.Collectors() {
		if err := s.metrics.reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				l.Close()
				return nil, fmt.Errorf("registering audit metrics: %w", err)
			}
		}
	}
	return l, nil
}

// Start listens on the configured address and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Listen, err)
	}
	return s.StartOn(ln)
}

// StartOn serves on ln in the background; the server owns ln from then on.
func (s *Server) StartOn(ln net.Listener) error {
	s.ln = ln
	s.httpSrv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.serveErr = make(chan error, 1)
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		s.httpSrv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		go func() { s.serveErr <- s.httpSrv.ServeTLS(ln, "", "") }()
	} else {
		go func() { s.serveErr <- s.httpSrv.Serve(ln) }()
	}
	s.log.Info("listening", "addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String())
	return nil
}

// Addr returns the address the server listens on, after Start.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL returns the base URL of the server, after Start.
func (s *Server) URL() string {
	if s.cfg.TLSCert != "" {
		return "https://" + s.ln.Addr().String()
	}
	return "http://" + s.ln.Addr().String()
}

// Run starts the server and serves until ctx is done, then drains in-flight
// requests for up to ShutdownTimeout and closes the store.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		s.Close()
		return err
	}
	select {
	case <-ctx.Done():
		s.log.Info("shutting down", "drain_timeout", s.cfg.ShutdownTimeout.String())
	case err := <-s.serveErr:
		s.Close()
		return fmt.Errorf("serving: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	return s.Shutdown(sctx)
}

// Shutdown stops accepting connections, waits for in-flight requests until
// ctx is done, then closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if s.httpSrv != nil {
		if err = s.httpSrv.Shutdown(ctx); err != nil {
			err = fmt.Errorf("draining requests: %w", err)
			s.httpSrv.Close()
		}
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close flushes the audit log (with a final checkpoint), seals the
// barrier and closes the store, without draining requests.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if svc := s.svc.Load(); svc != nil {
			svc.stop()
			if aerr := svc.audit.Close(); aerr != nil {
				err = fmt.Errorf("closing audit log: %w", aerr)
			}
		}
		s.barrier.Seal()
		if derr := s.db.Close(); err == nil {
			err = derr
		}
	})
	return err
}
