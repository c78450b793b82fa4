package iam

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	iamsdk "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/store/bolt"
)

const testAccount = "123456789012"

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

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

func (s *recordingSink) last() *audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) == 0 {
		return nil
	}
	return s.events[len(s.events)-1]
}

func (s *recordingSink) all() []*audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*audit.Event(nil), s.events...)
}

// recordingAuthorizer records every request and answers with inner.
type recordingAuthorizer struct {
	mu    sync.Mutex
	inner APIAuthorizer
	reqs  []Request
}

func (r *recordingAuthorizer) Authorize(ctx context.Context, req Request) Decision {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	inner := r.inner
	r.mu.Unlock()
	return inner.Authorize(ctx, req)
}

func (r *recordingAuthorizer) use(inner APIAuthorizer) {
	r.mu.Lock()
	r.inner = inner
	r.mu.Unlock()
}

func (r *recordingAuthorizer) requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

func (r *recordingAuthorizer) reset() {
	r.mu.Lock()
	r.reqs = nil
	r.mu.Unlock()
}

// testEnv is an IAM API behind an httptest server, driven by the real
// aws-sdk-go-v2 IAM client. The handler does what the sigil server does
// minus SigV4: parse the form, call Handle as the current caller, write XML.
type testEnv struct {
	t      *testing.T
	store  store.Store
	keys   *authn.Keys
	ents   *Entities
	api    *API
	authz  *recordingAuthorizer
	audit  *recordingSink
	clock  *testClock
	client *iamsdk.Client
	srv    *httptest.Server
	caller atomic.Pointer[authn.Principal]
	reqID  atomic.Int64
}

func rootPrincipal() *authn.Principal {
	return &authn.Principal{Kind: authn.KindRoot, AccountID: testAccount,
		ARN: "arn:aws:iam::" + testAccount + ":root", ID: testAccount, AccessKeyID: "AKIAROOTROOTROOTROOT"}
}

func openTestStore(t testing.TB) store.Store {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "sigil.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("opening bolt store: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// seededRand is deterministic randomness for ids and keys.
type seededRand struct{ r *rand.ChaCha8 }

func (s seededRand) Read(b []byte) (int, error) { return s.r.Read(b) }

func newSeededRand(seed byte) io.Reader {
	var k [32]byte
	k[0] = seed
	return seededRand{r: rand.NewChaCha8(k)}
}

func newTestEntities(t testing.TB, s store.Store, clock *testClock, seed byte) (*Entities, *authn.Keys) {
	t.Helper()
	keys := authn.NewKeys(s, clock.Now)
	ents, err := NewEntities(EntitiesConfig{Store: s, AccountID: testAccount, Keys: keys, Now: clock.Now, Rand: newSeededRand(seed)})
	if err != nil {
		t.Fatal(err)
	}
	return ents, keys
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	e := &testEnv{t: t, store: openTestStore(t), clock: newTestClock(), audit: &recordingSink{},
		authz: &recordingAuthorizer{inner: RootOnly{}}}
	e.ents, e.keys = newTestEntities(t, e.store, e.clock, 1)
	api, err := NewAPI(APIConfig{Entities: e.ents, Authorizer: e.authz, Audit: e.audit, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.api = api
	e.caller.Store(rootPrincipal())
	e.srv = httptest.NewServer(e)
	t.Cleanup(e.srv.Close)
	e.client = iamsdk.New(iamsdk.Options{
		BaseEndpoint:     aws.String(e.srv.URL),
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIAROOTROOTROOTROOT", "test-secret", ""),
		HTTPClient:       e.srv.Client(),
		RetryMaxAttempts: 1,
	})
	return e
}

// as makes the following calls come from p.
func (e *testEnv) as(p *authn.Principal) { e.caller.Store(p) }

func (e *testEnv) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := "req-" + strconv.FormatInt(e.reqID.Add(1), 10)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		awsproto.WriteQueryError(w, awsproto.IAMNamespace, awsproto.Internal(), id)
		return
	}
	vals, err := awsproto.ParseQuery(body, r)
	if err != nil {
		pe, _ := awsproto.As(err)
		awsproto.WriteQueryError(w, awsproto.IAMNamespace, pe, id)
		return
	}
	resp, err := e.api.Handle(r.Context(), &Call{Action: vals.Action(), Params: vals, Principal: e.caller.Load(),
		RequestID: id, SourceIP: "127.0.0.1", UserAgent: r.UserAgent()})
	if err != nil {
		ae, ok := awsproto.As(err)
		if !ok {
			e.t.Errorf("Handle returned a non-wire error: %v", err)
		}
		awsproto.WriteQueryError(w, awsproto.IAMNamespace, ae, id)
		return
	}
	if err := awsproto.WriteQueryResult(w, awsproto.IAMNamespace, vals.Action(), id, resp); err != nil {
		e.t.Errorf("writing %s result: %v", vals.Action(), err)
	}
}

// post sends a raw form to the server, for what the SDK cannot express.
func (e *testEnv) post(form url.Values) (*http.Response, []byte) {
	e.t.Helper()
	resp, err := e.srv.Client().PostForm(e.srv.URL, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// wantAPIError checks that err is the typed SDK error T (e.g.
// *types.NoSuchEntityException), or a generic API error with code when T is
// smithy.APIError.
func wantAPIError[T error](t *testing.T, err error, code string) {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T) is not a %T", err, err, target)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error", err)
	}
	if code != "" && ae.ErrorCode() != code {
		t.Fatalf("error code %q, want %q (%v)", ae.ErrorCode(), code, err)
	}
	if ae.ErrorMessage() == "" {
		t.Fatalf("error %s has no message", ae.ErrorCode())
	}
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const (
	trustEC2 = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	allowS3  = `{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":"*"}]}`
	allowAll = `{"Version":"2012-10-17","Statement":[{"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"}]}`
	denyIAM  = `{"Version":"2012-10-17","Statement":[{"Sid":"NoIAM","Effect":"Deny","Action":"iam:*","Resource":"*"}]}`
)

func decodeDoc(t *testing.T, enc *string) string {
	t.Helper()
	if enc == nil {
		t.Fatal("document missing")
	}
	s, err := url.QueryUnescape(*enc)
	if err != nil {
		t.Fatalf("document %q is not URL-encoded: %v", *enc, err)
	}
	return s
}
