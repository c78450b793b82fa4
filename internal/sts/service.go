package sts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/store"
)

// APIVersion is the only STS API version sigil serves.
const APIVersion = "2011-06-15"

// auditSource is the audit Source of every event the service records.
const auditSource = "sts.amazonaws.com"

// DefaultPollInterval is how often Run looks for revocations and key
// rotations made by other replicas when Config.PollInterval is zero.
const DefaultPollInterval = 250 * time.Millisecond

// MaxPollInterval is the longest Config.PollInterval accepted: with it,
// every replica enforces a revocation within about a second.
const MaxPollInterval = 500 * time.Millisecond

// Authorizer decides whether a request is allowed; every iam authorizer
// satisfies it. AssumeRole asks it whether the caller's own policies allow
// sts:AssumeRole (and sts:TagSession, sts:SetSourceIdentity) on the role.
//
// An Authorizer that also implements AuthorizeGrant, as *iam.Engine does,
// gets AWS's same-account rules: a trust policy that names the caller
// itself needs no identity-policy Allow. Any other Authorizer must allow
// the action outright, which is stricter than AWS.
type Authorizer interface {
	Authorize(ctx context.Context, req iam.Request) iam.Decision
}

// grantAuthorizer is the optional extension of Authorizer described there.
type grantAuthorizer interface {
	AuthorizeGrant(ctx context.Context, req iam.Request, grant iam.Grant) iam.Decision
}

// Config configures New. Store, Entities, Federation, Authorizer, Audit,
// AccountID and Region are required.
type Config struct {
	// Store holds the session keys and the revocations. In production it
	// is the encryption barrier: the keys must never reach the disk in
	// plaintext.
	Store store.Store
	// Entities holds the roles, their trust and identity policies, and
	// the OIDC providers.
	Entities *iam.Entities
	// Federation verifies web-identity tokens.
	Federation *federation.Verifier
	// Authorizer checks the caller's side of AssumeRole.
	Authorizer Authorizer
	// Audit receives one event per call; audit.Discard{} drops them. A
	// call that issues credentials fails when its event cannot be
	// recorded.
	Audit audit.Sink
	// AccountID is the 12-digit account that owns every role; Region the
	// region the service answers for.
	AccountID, Region string
	// Now is the clock for issue and expiry times and for every check of
	// them. Nil means time.Now.
	Now func() time.Time
	// Rand is the randomness for session keys, access key ids, session
	// ids and token nonces. Nil means crypto/rand.Reader; anything else
	// must be cryptographically secure outside tests.
	Rand io.Reader
	// Logger receives operational messages and the precise reasons of
	// refusals (never a token, key or secret). Nil discards.
	Logger *slog.Logger
	// PollInterval is how often Run reads the store for changes made by
	// other replicas. Zero means DefaultPollInterval; at most
	// MaxPollInterval.
	PollInterval time.Duration
	// Images verifies sealed-image assertions (web-identity tokens with
	// iss "sigil:image") and says which image digests are revoked; nil
	// refuses such assertions and every session minted for an image.
	Images ImageVerifier
}

// Call is one STS request, as the HTTP server hands it over.
type Call struct {
	// Action is the form's Action, e.g. "AssumeRoleWithWebIdentity".
	Action string
	// Form holds the request's parameters from awsproto.ParseQuery
	// (including Action and Version).
	Form awsproto.Values
	// Principal is the authenticated caller; nil for unsigned actions
	// (see Unsigned), which the server does not authenticate.
	Principal *authn.Principal
	// SessionToken is the X-Amz-Security-Token the request was signed
	// with, when the caller is an assumed-role session. AssumeRole needs
	// it for role chaining (the caller's transitive session tags); it is a
	// bearer credential and is never logged.
	SessionToken string
	// RequestID, SourceIP and UserAgent describe the request for audit and
	// the condition context.
	RequestID, SourceIP, UserAgent string
	// SecureTransport is true when the request arrived over TLS.
	SecureTransport bool
	// Start is when the server received the request; the zero value means
	// the time Handle was called.
	Start time.Time
}

// Service implements STS: it issues session credentials and verifies them.
// It is safe for concurrent use.
type Service struct {
	store   store.Store
	ents    *iam.Entities
	fed     *federation.Verifier
	images  ImageVerifier
	authz   Authorizer
	audit   audit.Sink
	account string
	region  string
	now     func() time.Time
	log     *slog.Logger
	poll    time.Duration

	randMu sync.Mutex
	rand   io.Reader

	// ring and revoked are immutable snapshots replaced whole, so the
	// verification path reads them without locks.
	ring    atomic.Pointer[keyring]
	revoked atomic.Pointer[revocations]
	// syncMu serialises rebuilding revoked.
	syncMu sync.Mutex

	trust policyCache
	pack  packer
}

var (
	regionPattern  = regexp.MustCompile(`^[a-z0-9]{1,16}(-[a-z0-9]{1,16}){0,4}$`)
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
)

// New checks cfg and returns a Service. It loads the session keys from
// the store, creating them (once, with compare-and-swap, so replicas
// agree) when the store has none, and loads the revocations.
func New(ctx context.Context, cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, fmt.Errorf("%w: Store is required", ErrInvalidConfig)
	case cfg.Entities == nil:
		return nil, fmt.Errorf("%w: Entities is required", ErrInvalidConfig)
	case cfg.Federation == nil:
		return nil, fmt.Errorf("%w: Federation is required", ErrInvalidConfig)
	case cfg.Authorizer == nil:
		return nil, fmt.Errorf("%w: Authorizer is required", ErrInvalidConfig)
	case cfg.Audit == nil:
		return nil, fmt.Errorf("%w: Audit is required", ErrInvalidConfig)
	case !accountPattern.MatchString(cfg.AccountID):
		return nil, fmt.Errorf("%w: AccountID %q is not 12 digits", ErrInvalidConfig, cfg.AccountID)
	case cfg.Entities.AccountID() != cfg.AccountID:
		return nil, fmt.Errorf("%w: Entities belong to account %s, not %s", ErrInvalidConfig, cfg.Entities.AccountID(), cfg.AccountID)
	case !regionPattern.MatchString(cfg.Region):
		return nil, fmt.Errorf("%w: Region %q is not a region name", ErrInvalidConfig, cfg.Region)
	case cfg.PollInterval < 0 || cfg.PollInterval > MaxPollInterval:
		return nil, fmt.Errorf("%w: PollInterval %s is not between 0 and %s", ErrInvalidConfig, cfg.PollInterval, MaxPollInterval)
	}
	s := &Service{store: cfg.Store, ents: cfg.Entities, fed: cfg.Federation, images: cfg.Images, authz: cfg.Authorizer,
		audit: cfg.Audit, account: cfg.AccountID, region: cfg.Region, now: cfg.Now, log: cfg.Logger,
		poll: cfg.PollInterval, rand: cfg.Rand}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.poll == 0 {
		s.poll = DefaultPollInterval
	}
	s.revoked.Store(&revocations{})
	ring, err := s.loadKeyring(ctx)
	if err != nil {
		return nil, err
	}
	s.ring.Store(ring)
	if err := s.syncRevocations(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// operation is one STS action.
type operation struct {
	run func(s *Service, ctx context.Context, inv *invocation) (any, error)
	// unsigned actions carry their own proof (a web-identity token).
	unsigned bool
}

var operations = map[string]operation{
	"AssumeRole":                {run: (*Service).assumeRole},
	"AssumeRoleWithWebIdentity": {run: (*Service).assumeRoleWithWebIdentity, unsigned: true},
	"GetCallerIdentity":         {run: (*Service).getCallerIdentity},
}

// KnownAction reports whether action is an STS action sigil serves; the
// server uses it to keep metric labels bounded.
func KnownAction(action string) bool {
	_, ok := operations[action]
	return ok
}

// Unsigned reports whether the server must skip SigV4 for action, as AWS
// does: AssumeRoleWithWebIdentity is authenticated by its token alone. For
// every other action (and unknown ones) it is false.
func (s *Service) Unsigned(action string) bool {
	return operations[action].unsigned
}

// Handle runs one call. It returns the action's result, to be written
// with awsproto.WriteQueryResult(w, awsproto.STSNamespace, c.Action,
// requestID, result), or an *awsproto.Error in STS's shape: every failure,
// internal ones included (their causes are logged here, never sent).
func (s *Service) Handle(ctx context.Context, c *Call) (any, error) {
	if c == nil {
		return nil, errors.New("sts: nil call")
	}
	op, ok := operations[c.Action]
	inv := s.begin(c)
	var (
		resp any
		err  error
	)
	switch {
	case c.Action == "":
		err = awsproto.Errorf("MissingAction", http.StatusBadRequest, "The request must contain the parameter Action.")
	case !ok:
		err = awsproto.Errorf("InvalidAction", http.StatusBadRequest, "Could not find operation %s for version %s.", truncate(c.Action), APIVersion)
	case c.Form.Version() != "" && c.Form.Version() != APIVersion:
		err = awsproto.Errorf("InvalidAction", http.StatusBadRequest, "Could not find operation %s for version %s.", c.Action, truncate(c.Form.Version()))
	case !op.unsigned && c.Principal == nil:
		err = awsproto.Errorf("MissingAuthenticationToken", http.StatusForbidden, "Request is missing Authentication Token")
	default:
		resp, err = op.run(s, ctx, inv)
	}
	if err != nil {
		err = s.wireError(ctx, c, err)
		resp = nil
	}
	return inv.finish(ctx, resp, err)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// wireError turns any error into STS's wire shape, logging internal causes.
func (s *Service) wireError(ctx context.Context, c *Call, err error) error {
	var ae *awsproto.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed), errors.Is(err, store.ErrConflict):
		s.log.WarnContext(ctx, "sts: store unavailable", "action", c.Action, "request_id", c.RequestID, "err", err)
		return awsproto.Unavailable("the STS store is unavailable; retry the request")
	}
	s.log.ErrorContext(ctx, "sts: internal error", "action", c.Action, "request_id", c.RequestID, "err", err)
	return errInternal()
}

// invocation carries one call through decoding, decisions and audit.
type invocation struct {
	s     *Service
	c     *Call
	start time.Time
	now   time.Time

	// reached is set once the call got past input validation to a
	// decision; decision is the first denial, or the deciding allow.
	reached   bool
	decision  iam.Decision
	resources []string

	// identity replaces the derived userIdentity (web-identity callers);
	// session describes a session caller.
	identity *audit.UserIdentity
	session  *audit.SessionContext
	k8s      *audit.Kubernetes
	// imageDigest is the sealed image of an image exchange.
	imageDigest string
	params      any
	elements    any
	// issues marks a call whose success carries new credentials.
	issues bool
}

func (s *Service) begin(c *Call) *invocation {
	now := s.now()
	start := c.Start
	if start.IsZero() {
		start = now
	}
	inv := &invocation{s: s, c: c, start: start, now: now}
	if p := c.Principal; p != nil && p.Session != nil {
		inv.session = sessionContext(p)
	}
	return inv
}

// decide records a decision of the call: the first one, or the first
// denial, is what the audit event reports.
func (inv *invocation) decide(d iam.Decision) {
	if !inv.reached || (!d.Allowed && inv.decision.Allowed) {
		inv.decision = d
	}
	inv.reached = true
}

// finish records the audit event and applies the fail-closed rule: when
// the record fails, credentials are not handed out.
func (inv *invocation) finish(ctx context.Context, resp any, err error) (any, error) {
	ev := &audit.Event{
		Time:              inv.now,
		RequestID:         inv.c.RequestID,
		SourceIP:          inv.c.SourceIP,
		UserAgent:         inv.c.UserAgent,
		Principal:         inv.c.Principal,
		Source:            auditSource,
		Action:            inv.c.Action,
		Resources:         inv.resources,
		Allowed:           inv.decision.Allowed && err == nil,
		Reason:            inv.decision.Reason,
		Policy:            inv.decision.Policy,
		Statement:         inv.decision.Statement,
		ReadOnly:          true,
		ReturnsSecret:     inv.issues && err == nil,
		Latency:           inv.s.now().Sub(inv.start),
		AccountID:         inv.s.account,
		Region:            inv.s.region,
		Identity:          inv.identity,
		Session:           inv.session,
		RequestParameters: inv.params,
		Kubernetes:        inv.k8s,
		ImageDigest:       inv.imageDigest,
	}
	if err == nil {
		ev.ResponseElements = inv.elements
	}
	if !inv.reached {
		ev.Reason = "invalid request"
	}
	if err != nil {
		e, _ := awsproto.As(err)
		ev.ErrorCode, ev.ErrorMessage = e.Code, e.Message
	}
	recErr := inv.s.audit.Record(ctx, ev)
	if recErr == nil {
		return resp, err
	}
	inv.s.log.ErrorContext(ctx, "sts: recording audit event failed", "action", inv.c.Action, "request_id", inv.c.RequestID, "err", recErr)
	if err == nil && inv.issues {
		return nil, awsproto.Unavailable("the audit log could not record this request, so no credentials were issued; retry the request")
	}
	return resp, err
}

// baseContext holds the request's global condition keys. Principal keys
// (aws:PrincipalArn, aws:PrincipalTag/...) are derived by the evaluator
// from the principal itself.
func (inv *invocation) baseContext() map[string][]string {
	c := inv.c
	m := map[string][]string{
		"aws:CurrentTime":     {inv.now.UTC().Format(time.RFC3339)},
		"aws:EpochTime":       {strconv.FormatInt(inv.now.Unix(), 10)},
		"aws:SecureTransport": {strconv.FormatBool(c.SecureTransport)},
		"aws:RequestedRegion": {inv.s.region},
	}
	if c.SourceIP != "" {
		m["aws:SourceIp"] = []string{c.SourceIP}
	}
	if c.UserAgent != "" {
		m["aws:UserAgent"] = []string{c.UserAgent}
	}
	if p := c.Principal; p != nil && p.Session != nil {
		m["aws:TokenIssueTime"] = []string{p.Session.Issued.UTC().Format(time.RFC3339)}
		if p.Session.SourceIdentity != "" {
			m["aws:SourceIdentity"] = []string{p.Session.SourceIdentity}
		}
	}
	return m
}

// sessionContext describes a session caller for the audit log.
func sessionContext(p *authn.Principal) *audit.SessionContext {
	s := p.Session
	sc := &audit.SessionContext{
		SessionIssuer: &audit.SessionIssuer{Type: "Role", PrincipalID: s.RoleID, ARN: s.RoleARN,
			AccountID: p.AccountID, UserName: roleNameOf(s.RoleARN)},
		Attributes: &audit.SessionAttributes{CreationDate: s.Issued.UTC().Format(time.RFC3339), MFAAuthenticated: "false"},
	}
	if s.FederatedProvider != "" {
		sc.WebIDFederationData = &audit.WebIDFederationData{FederatedProvider: s.FederatedProvider, Attributes: s.Claims}
	}
	return sc
}

// policyCache holds compiled trust policies by document text.
type policyCache struct {
	mu   sync.RWMutex
	docs map[string]*iam.Policy
}

const maxCachedPolicies = 4096

// trustPolicy returns the compiled trust policy of a role; one that no
// longer parses (a stricter parser than the one that stored it) is nil
// and trusts nobody.
func (s *Service) trustPolicy(doc string) *iam.Policy {
	c := &s.trust
	c.mu.RLock()
	p, ok := c.docs[doc]
	c.mu.RUnlock()
	if ok {
		return p
	}
	p, err := iam.ParsePolicy(doc, iam.TrustPolicy)
	if err != nil {
		s.log.Warn("sts: a stored trust policy does not parse; it trusts nobody", "err", err)
		p = nil
	}
	c.mu.Lock()
	if c.docs == nil || len(c.docs) >= maxCachedPolicies {
		c.docs = map[string]*iam.Policy{}
	}
	c.docs[doc] = p
	c.mu.Unlock()
	return p
}
