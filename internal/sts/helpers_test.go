package sts_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	iamsdk "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	stssdk "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/barrier"
	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/secrets"
	"sigil.dev/sigil/internal/sigv4"
	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/store/bolt"
	"sigil.dev/sigil/internal/sts"
	"sigil.dev/sigil/internal/testutil"
	"sigil.dev/sigil/internal/testutil/testserver"
)

const (
	testAccount = "123456789012"
	testRegion  = "us-east-1"
)

// offsetClock is the real clock plus an adjustable offset, so SigV4 (real
// time) and session expiry (the offset clock) can disagree on purpose.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// recordingSink keeps every audit event; fail makes Record fail.
type recordingSink struct {
	mu     sync.Mutex
	events []*audit.Event
	fail   atomic.Bool
}

func (s *recordingSink) Record(_ context.Context, ev *audit.Event) error {
	if s.fail.Load() {
		return errors.New("audit log unavailable")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *ev
	s.events = append(s.events, &cp)
	return nil
}

// last returns the last event of a source ("sts.amazonaws.com").
func (s *recordingSink) last(source string) *audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.events) - 1; i >= 0; i-- {
		if s.events[i].Source == source {
			return s.events[i]
		}
	}
	return nil
}

// openBarrier opens a bolt store in dir behind an initialised barrier.
func openBarrier(t testing.TB) store.Store {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "sigil.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("opening bolt store: %v", err)
	}
	b := barrier.New(db, barrier.Options{})
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	if err := b.Initialize(context.Background(), kek); err != nil {
		t.Fatalf("initialising barrier: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// harness is the whole request path of a sigil server, wired as the real
// server wires it, behind an httptest server: STS (query, 2011-06-15),
// IAM (query, 2010-05-08) and Secrets Manager (JSON 1.1), SigV4 with
// long-term keys from authn.Keys and session keys from sts.Service.
type harness struct {
	t        testing.TB
	store    store.Store
	keys     *authn.Keys
	ents     *iam.Entities
	engine   *iam.Engine
	iamAPI   *iam.API
	secrets  *secrets.Service
	fed      *federation.Verifier
	sts      *sts.Service
	verifier *sigv4.Verifier
	issuer   *testutil.OIDCIssuer
	clock    *offsetClock
	audit    *recordingSink
	logs     *testserver.LogBuffer
	srv      *httptest.Server
	reqID    atomic.Int64

	rootID, rootSecret string
}

type harnessOption func(*sts.Config)

func newHarness(t testing.TB, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, store: openBarrier(t), clock: &offsetClock{}, audit: &recordingSink{}, logs: &testserver.LogBuffer{}}
	h.issuer = testutil.StartOIDCIssuer(t)
	h.build(opts...)
	return h
}

// build creates the services over h.store.
func (h *harness) build(opts ...harnessOption) {
	t := h.t
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.keys = authn.NewKeys(h.store, nil)
	var err error
	h.ents, err = iam.NewEntities(iam.EntitiesConfig{Store: h.store, AccountID: testAccount, Keys: h.keys})
	mustNoErr(t, err)
	h.engine = iam.NewEngine(h.ents, log)
	h.iamAPI, err = iam.NewAPI(iam.APIConfig{Entities: h.ents, Authorizer: h.engine, Audit: h.audit, Logger: log})
	mustNoErr(t, err)
	h.secrets, err = secrets.New(secrets.Config{Store: h.store, Authorizer: h.engine, Audit: h.audit,
		Region: testRegion, AccountID: testAccount, Logger: log})
	mustNoErr(t, err)
	h.fed = federation.NewVerifier(federation.Options{Logger: log})
	h.sts = h.newSTS(opts...)
	h.verifier, err = sigv4.New(sigv4.Options{Region: testRegion, Services: []string{"sts", "iam", "secretsmanager"},
		Credentials: sts.Credentials{Sessions: h.sts, Keys: keyCredentials{h.keys}}})
	mustNoErr(t, err)
	root, err := h.keys.CreateRootKey(ctx, nil, testAccount)
	mustNoErr(t, err)
	h.rootID, h.rootSecret = root.AccessKeyID, root.SecretAccessKey.Reveal()
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
}

// newSTS returns a running STS service over the harness's store.
func (h *harness) newSTS(opts ...harnessOption) *sts.Service {
	h.t.Helper()
	cfg := sts.Config{Store: h.store, Entities: h.ents, Federation: h.fed, Authorizer: h.engine, Audit: h.audit,
		AccountID: testAccount, Region: testRegion, Now: h.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := sts.New(context.Background(), cfg)
	mustNoErr(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	h.t.Cleanup(func() { cancel(); <-done })
	return svc
}

// keyCredentials adapts authn.Keys to sigv4.Credentials, as the server
// does.
type keyCredentials struct{ keys *authn.Keys }

func (k keyCredentials) SecretKey(ctx context.Context, id string) (string, error) {
	s, err := k.keys.SecretKey(ctx, id)
	if errors.Is(err, authn.ErrUnknownAccessKey) {
		return "", errors.Join(sigv4.ErrUnknownAccessKey, err)
	}
	return s, err
}

func (h *harness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := "req-" + strconv.FormatInt(h.reqID.Add(1), 10)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		awsproto.WriteQueryError(w, awsproto.STSNamespace, awsproto.Internal(), id)
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		h.serveSecrets(w, r, body, target, id)
		return
	}
	vals, err := awsproto.ParseQuery(body, r)
	if err != nil {
		e, _ := awsproto.As(err)
		awsproto.WriteQueryError(w, awsproto.STSNamespace, e, id)
		return
	}
	switch vals.Version() {
	case sts.APIVersion:
		var p *authn.Principal
		var token string
		if !h.sts.Unsigned(vals.Action()) {
			res, aerr := h.authenticate(r, body, "sts", awsproto.ProtocolQuery)
			if aerr != nil {
				awsproto.WriteQueryError(w, awsproto.STSNamespace, aerr, id)
				return
			}
			p, token = res.principal, res.token
		}
		resp, err := h.sts.Handle(r.Context(), &sts.Call{Action: vals.Action(), Form: vals, Principal: p,
			SessionToken: token, RequestID: id, SourceIP: "127.0.0.1", UserAgent: r.UserAgent(), Start: time.Now()})
		if err != nil {
			e, ok := awsproto.As(err)
			if !ok {
				h.t.Errorf("sts Handle returned a non-wire error: %v", err)
			}
			awsproto.WriteQueryError(w, awsproto.STSNamespace, e, id)
			return
		}
		if err := awsproto.WriteQueryResult(w, awsproto.STSNamespace, vals.Action(), id, resp); err != nil {
			h.t.Errorf("writing %s: %v", vals.Action(), err)
		}
	case iam.APIVersion:
		res, aerr := h.authenticate(r, body, "iam", awsproto.ProtocolQuery)
		if aerr != nil {
			awsproto.WriteQueryError(w, awsproto.IAMNamespace, aerr, id)
			return
		}
		resp, err := h.iamAPI.Handle(r.Context(), &iam.Call{Action: vals.Action(), Params: vals, Principal: res.principal,
			RequestID: id, SourceIP: "127.0.0.1", UserAgent: r.UserAgent()})
		if err != nil {
			e, _ := awsproto.As(err)
			awsproto.WriteQueryError(w, awsproto.IAMNamespace, e, id)
			return
		}
		if err := awsproto.WriteQueryResult(w, awsproto.IAMNamespace, vals.Action(), id, resp); err != nil {
			h.t.Errorf("writing %s: %v", vals.Action(), err)
		}
	default:
		awsproto.WriteQueryError(w, awsproto.STSNamespace, awsproto.Errorf("InvalidAction", http.StatusBadRequest, "unknown version"), id)
	}
}

func (h *harness) serveSecrets(w http.ResponseWriter, r *http.Request, body []byte, target, id string) {
	_, op, ok := awsproto.TargetOperation(target)
	if !ok {
		awsproto.WriteJSONError(w, awsproto.Errorf("UnknownOperationException", http.StatusBadRequest, "unknown target"))
		return
	}
	res, aerr := h.authenticate(r, body, "secretsmanager", awsproto.ProtocolJSON)
	if aerr != nil {
		awsproto.WriteJSONError(w, aerr)
		return
	}
	resp, err := h.secrets.Handle(r.Context(), &secrets.Call{Operation: op, Body: body, Principal: res.principal,
		RequestID: id, SourceIP: "127.0.0.1", UserAgent: r.UserAgent()})
	if err != nil {
		e, _ := awsproto.As(err)
		awsproto.WriteJSONError(w, e)
		return
	}
	_ = awsproto.WriteJSON(w, resp)
}

type authResult struct {
	principal *authn.Principal
	token     string
}

// authenticate is the server's authentication step.
func (h *harness) authenticate(r *http.Request, body []byte, service string, proto awsproto.Protocol) (*authResult, *awsproto.Error) {
	res, err := h.verifier.Verify(r.Context(), r, body)
	if err != nil {
		var se *sigv4.Error
		if !errors.As(err, &se) {
			return nil, awsproto.Internal()
		}
		return nil, awsproto.AuthError(err, proto)
	}
	if res.Service != service {
		return nil, awsproto.AuthError(&sigv4.Error{Kind: sigv4.ErrScope, Message: "wrong service"}, proto)
	}
	p, err := h.sts.Resolve(r.Context(), res, h.keys)
	switch {
	case err == nil:
		return &authResult{principal: p, token: res.SessionToken}, nil
	case sts.AuthError(err, proto) != nil:
		return nil, sts.AuthError(err, proto)
	case errors.Is(err, authn.ErrUnknownAccessKey):
		return nil, awsproto.AuthError(sigv4.ErrUnknownAccessKey, proto)
	}
	return nil, awsproto.Internal()
}

// awsConfig returns an SDK configuration for the harness with the given
// credentials (anonymous when id is empty).
func (h *harness) awsConfig(id, secret, token string) aws.Config {
	cfg := aws.Config{
		Region:       testRegion,
		BaseEndpoint: aws.String(h.srv.URL),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient:   h.srv.Client(),
	}
	if id != "" {
		cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secret, token)
	} else {
		cfg.Credentials = aws.AnonymousCredentials{}
	}
	return cfg
}

func (h *harness) rootConfig() aws.Config { return h.awsConfig(h.rootID, h.rootSecret, "") }

func (h *harness) iamClient() *iamsdk.Client { return iamsdk.NewFromConfig(h.rootConfig()) }

func (h *harness) stsClient(cfg aws.Config) *stssdk.Client { return stssdk.NewFromConfig(cfg) }

func (h *harness) secretsClient(cfg aws.Config) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(cfg)
}

// wantCode checks that err is an API error with the given code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an API error; want %s", err, err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code %q (%s), want %q", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if ae.ErrorMessage() == "" {
		t.Fatalf("error %s has no message", code)
	}
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
