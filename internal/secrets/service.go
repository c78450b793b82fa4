package secrets

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/store"
)

// Config configures a Service. Store, Authorizer, Audit, Region and
// AccountID are required; the other fields have the defaults documented on
// them.
type Config struct {
	// Store holds the secrets. In production it is the encryption barrier,
	// so everything written is encrypted; this package never encrypts.
	Store store.Store
	// Authorizer decides every request; iam.RootOnly{} until IAM policies
	// exist.
	Authorizer Authorizer
	// Audit receives one event for every call that reaches authorization.
	// audit.Discard{} drops them.
	Audit audit.Sink
	// Region is the AWS region the service answers for, e.g. "us-east-1".
	// It appears in every ARN.
	Region string
	// AccountID is the 12-digit account that owns every secret.
	AccountID string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness for ARN suffixes, secret and version ids,
	// passwords and token nonces; nil means crypto/rand.Reader. It must be
	// cryptographically secure in production.
	Rand io.Reader
	// Logger receives operational messages (never secret values); nil
	// discards them.
	Logger *slog.Logger
	// CacheBytes bounds the memory of the in-process caches of decoded
	// secret records and version values that spare GetSecretValue most of
	// its decoding (see the package documentation for why they never
	// change what a read returns). 0 means DefaultCacheBytes; a negative
	// value disables both caches.
	CacheBytes int64
	// CacheEntries bounds the number of entries of each cache. 0 means
	// DefaultCacheEntries; a negative value disables both caches.
	CacheEntries int
	// Dynamic issues the values of dynamic secrets; nil means reading one
	// is an internal error (no dynamic secrets can be created without the
	// server's native API, which sets it).
	Dynamic DynamicIssuer
	// Rotators, when not nil, checks the RotationLambdaARN of every
	// RotateSecret that sets one: it returns an error wrapping
	// ErrUnknownRotator when no rotator answers to that ARN (the client
	// gets InvalidParameterException) and any other error when it cannot
	// tell (an internal failure). nil accepts every well-formed ARN.
	Rotators func(ctx context.Context, arn string) error
	// OnRotate, when not nil, is called after a RotateSecret that made a
	// rotation due now has committed, so the rotation runner can start at
	// once instead of at its next pass. It must not block.
	OnRotate func()
}

// Authorizer decides whether a request is allowed. It is the consumer-side
// view of iam.Authorizer, which every iam authorizer satisfies.
type Authorizer interface {
	Authorize(ctx context.Context, req iam.Request) iam.Decision
}

// Call is one authenticated Secrets Manager request, as the HTTP server
// hands it over.
type Call struct {
	// Operation is the operation name from X-Amz-Target, e.g.
	// "GetSecretValue".
	Operation string
	// Body is the JSON 1.1 request body.
	Body []byte
	// Principal is the authenticated caller.
	Principal *authn.Principal
	// RequestID, SourceIP and UserAgent describe the request for audit and
	// the condition context.
	RequestID, SourceIP, UserAgent string
	// SecureTransport is true when the request arrived over TLS
	// (aws:SecureTransport).
	SecureTransport bool
	// Start is when the server received the request; audit latency is
	// measured from it. The zero value means the time Handle was called.
	Start time.Time
}

// Service implements the Secrets Manager operations over a store. It is safe
// for concurrent use.
type Service struct {
	store   store.Store
	authz   Authorizer
	audit   audit.Sink
	region  string
	account string
	now     func() time.Time
	rand    *lockedReader
	log     *slog.Logger
	dynamic DynamicIssuer
	// rotators and onRotate are Config.Rotators and Config.OnRotate.
	rotators func(ctx context.Context, arn string) error
	onRotate func()
	// secretARNPrefix is the ARN of every secret up to the name.
	secretARNPrefix string
	// actions maps each operation to its IAM action, "secretsmanager:<op>".
	actions map[string]string
	// caches hold decoded records for the read path; see cache.go.
	caches readCaches
	// clock holds the time condition values of the latest second seen.
	clock atomic.Pointer[clockStrings]

	// tokenMu guards tokenAEAD, the sealer of pagination tokens, which is
	// loaded from (or created in) the store on first use.
	tokenMu   sync.Mutex
	tokenAEAD cipher.AEAD
}

var (
	regionPattern  = regexp.MustCompile(`^[a-z0-9]{1,16}(-[a-z0-9]{1,16}){0,4}$`)
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
)

// New checks cfg and returns a Service. It does no I/O.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, fmt.Errorf("%w: Store is required", ErrInvalidConfig)
	case cfg.Authorizer == nil:
		return nil, fmt.Errorf("%w: Authorizer is required", ErrInvalidConfig)
	case cfg.Audit == nil:
		return nil, fmt.Errorf("%w: Audit is required", ErrInvalidConfig)
	case !regionPattern.MatchString(cfg.Region):
		return nil, fmt.Errorf("%w: Region %q is not a region name", ErrInvalidConfig, cfg.Region)
	case !accountPattern.MatchString(cfg.AccountID):
		return nil, fmt.Errorf("%w: AccountID %q is not 12 digits", ErrInvalidConfig, cfg.AccountID)
	}
	s := &Service{
		store:   cfg.Store,
		authz:   cfg.Authorizer,
		audit:   cfg.Audit,
		region:  cfg.Region,
		account: cfg.AccountID,
		now:     cfg.Now,
		log:     cfg.Logger,
		dynamic: cfg.Dynamic,

		rotators: cfg.Rotators,
		onRotate: cfg.OnRotate,
	}
	s.secretARNPrefix = "arn:aws:secretsmanager:" + s.region + ":" + s.account + ":secret:"
	s.actions = make(map[string]string, len(operations))
	for op := range operations {
		s.actions[op] = "secretsmanager:" + op
	}
	if s.now == nil {
		s.now = time.Now
	}
	r := cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	s.rand = &lockedReader{r: r}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	cacheBytes, cacheEntries := cfg.CacheBytes, cfg.CacheEntries
	if cacheBytes == 0 {
		cacheBytes = DefaultCacheBytes
	}
	if cacheEntries == 0 {
		cacheEntries = DefaultCacheEntries
	}
	s.caches = newReadCaches(cacheBytes, cacheEntries)
	return s, nil
}

// Handle runs one call: it decodes the JSON 1.1 body for c.Operation,
// validates it, authorizes it, runs it and audits it. It returns the response
// to encode with awsproto.WriteJSON, or an error: an *awsproto.Error for
// failures the client may see, anything else for internal failures (the edge
// turns those into InternalServiceError; their text names keys and secrets,
// never values).
func (s *Service) Handle(ctx context.Context, c *Call) (any, error) {
	if c == nil {
		return nil, errors.New("secrets: nil call")
	}
	op, ok := operations[c.Operation]
	if !ok {
		return nil, errUnknownOperation(c.Operation)
	}
	resp, err := op(s, ctx, c)
	if err != nil {
		err = s.clientError(err)
		if _, ok := err.(*awsproto.Error); !ok {
			s.log.ErrorContext(ctx, "secrets: internal error", "op", c.Operation, "request_id", c.RequestID, "err", err)
		}
		return nil, err
	}
	return resp, nil
}

// operations maps each Secrets Manager operation sigil serves to its
// method.
var operations = map[string]func(*Service, context.Context, *Call) (any, error){
	"CreateSecret":             (*Service).createSecret,
	"GetSecretValue":           (*Service).getSecretValue,
	"BatchGetSecretValue":      (*Service).batchGetSecretValue,
	"PutSecretValue":           (*Service).putSecretValue,
	"UpdateSecret":             (*Service).updateSecret,
	"DescribeSecret":           (*Service).describeSecret,
	"ListSecrets":              (*Service).listSecrets,
	"ListSecretVersionIds":     (*Service).listSecretVersionIds,
	"UpdateSecretVersionStage": (*Service).updateSecretVersionStage,
	"DeleteSecret":             (*Service).deleteSecret,
	"RestoreSecret":            (*Service).restoreSecret,
	"TagResource":              (*Service).tagResource,
	"UntagResource":            (*Service).untagResource,
	"GetRandomPassword":        (*Service).getRandomPassword,
	"PutResourcePolicy":        (*Service).putResourcePolicy,
	"GetResourcePolicy":        (*Service).getResourcePolicy,
	"DeleteResourcePolicy":     (*Service).deleteResourcePolicy,
	"ValidateResourcePolicy":   (*Service).validateResourcePolicy,
	"ListResourcePolicies":     (*Service).listResourcePolicies,
	"RotateSecret":             (*Service).rotateSecret,
	"CancelRotateSecret":       (*Service).cancelRotateSecret,
}

// KnownOperation reports whether op is a Secrets Manager operation sigil
// serves; the server uses it to keep metric labels bounded.
func KnownOperation(op string) bool {
	_, ok := operations[op]
	return ok
}

// Operations returns the names of the Secrets Manager operations sigil
// serves, sorted; the server derives its metric labels from them.
func Operations() []string {
	return slices.Sorted(maps.Keys(operations))
}

// clientError maps store conditions the client should retry to
// ServiceUnavailable and leaves every other error alone.
func (s *Service) clientError(err error) error {
	var ae *awsproto.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed):
		return awsproto.Unavailable("the secret store is unavailable; retry the request")
	case errors.Is(err, store.ErrConflict):
		return awsproto.Unavailable("the secret is being changed concurrently; retry the request")
	}
	return err
}

// lockedReader serializes reads from Config.Rand, which need not be safe for
// concurrent use.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

// fill reads exactly len(b) random bytes.
func (l *lockedReader) fill(b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := io.ReadFull(l.r, b); err != nil {
		return fmt.Errorf("reading randomness: %w", err)
	}
	return nil
}
