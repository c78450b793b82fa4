package rotation

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"sigil.dev/sigil/internal/secrets"
	"sigil.dev/sigil/internal/store"
)

// Names of the built-in rotators, the function names of their
// RotationLambdaARNs.
const (
	BuiltinPostgreSQL = "sigil-postgresql-single-user"
	BuiltinMySQL      = "sigil-mysql-single-user"
	BuiltinRandom     = "sigil-random"
)

// Types of registered rotators.
const (
	TypeRandom  = "random"
	TypeWebhook = "webhook"
)

// rotatorPrefix is the store prefix of registered rotators.
const rotatorPrefix = "rotation/rotators/"

// reservedPrefix starts the names of built-in rotators; registered
// rotators cannot use it.
const reservedPrefix = "sigil-"

// webhookKeySize is the size of a generated webhook HMAC key.
const webhookKeySize = 32

// Bounds of registered rotator definitions.
const (
	maxWebhookURL     = 2048
	maxWebhookTimeout = 5 * time.Minute
	minWebhookKey     = 16
	maxWebhookKey     = 1024
	maxFieldName      = 256
)

// rotatorName is a Lambda function name: letters, digits, hyphens and
// underscores, 1 to 64 characters.
var rotatorName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// lambdaARN is arn:<partition>:lambda:<region>:<account>:function:<name>.
var lambdaARN = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):lambda:([a-z0-9-]{1,32}):([0-9]{12}):function:([A-Za-z0-9_-]{1,64})$`)

// RotatorARN is a parsed RotationLambdaARN.
type RotatorARN struct {
	Partition string
	Region    string
	AccountID string
	// Name is the function name: a built-in rotator or a registered one.
	Name string
}

// ParseRotatorARN parses arn:aws:lambda:<region>:<account>:function:<name>
// (partitions aws, aws-cn and aws-us-gov). Qualified function ARNs (with a
// version or alias) are refused: sigil's rotators have no versions.
func ParseRotatorARN(arn string) (RotatorARN, error) {
	m := lambdaARN.FindStringSubmatch(arn)
	if m == nil {
		return RotatorARN{}, fmt.Errorf("%w: %q is not arn:aws:lambda:<region>:<account>:function:<name>", ErrInvalidARN, arn)
	}
	return RotatorARN{Partition: m[1], Region: m[2], AccountID: m[3], Name: m[4]}, nil
}

// RotatorARNFor returns the RotationLambdaARN naming rotator name in the
// given region and account.
func RotatorARNFor(region, accountID, name string) string {
	return "arn:aws:lambda:" + region + ":" + accountID + ":function:" + name
}

// RotatorSpec is a registered rotator as stored under
// rotation/rotators/<name>. Exactly one of Random and Webhook is set,
// matching Type.
type RotatorSpec struct {
	// Name is the function name RotationLambdaARNs use. It must not start
	// with "sigil-", which built-ins use.
	Name string `json:"name"`
	// Type is TypeRandom or TypeWebhook.
	Type string `json:"type"`
	// Random configures a TypeRandom rotator.
	Random *RandomSpec `json:"random,omitempty"`
	// Webhook configures a TypeWebhook rotator.
	Webhook *WebhookSpec `json:"webhook,omitempty"`
	// Created is when the definition was last written; Put sets it.
	Created time.Time `json:"created"`
}

// RandomSpec configures a registered random rotator.
type RandomSpec struct {
	// Field is the JSON member of SecretString to replace; "" replaces the
	// whole SecretString.
	Field string `json:"field,omitempty"`
	// PasswordPolicy shapes the generated value.
	PasswordPolicy
}

// WebhookSpec configures a registered webhook rotator.
type WebhookSpec struct {
	// URL is the endpoint: an absolute http or https URL.
	URL string `json:"url"`
	// Key is the HMAC-SHA256 key. Put generates a 32-byte key when it is
	// empty; List and Get leave it empty, so that the key is returned
	// only once, by Put. It never appears in JSON output of this type.
	Key []byte `json:"-"`
	// Timeout bounds each request; zero means DefaultWebhookTimeout.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// storedRotator is the stored form of a RotatorSpec, key included.
type storedRotator struct {
	RotatorSpec
	WebhookKey []byte `json:"webhookKey,omitempty"`
}

// RegistryConfig configures a [Registry]. Store is required.
type RegistryConfig struct {
	// Store holds registered rotators under rotation/rotators/; in
	// production it is the encryption barrier, which keeps webhook keys
	// encrypted at rest.
	Store store.Store
	// Region and AccountID, when set, are the only region and account a
	// RotationLambdaARN may name.
	Region    string
	AccountID string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of generated passwords and webhook keys; nil
	// means crypto/rand. It must be safe for concurrent use.
	Rand io.Reader
	// HTTPClient sends webhook requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Builtins adds in-process rotators by function name, next to the
	// standard built-ins, which an entry of the same name replaces. It
	// lets a program embedding sigil provide its own rotator; names here
	// need not start with "sigil-" and shadow registered rotators.
	Builtins map[string]Rotator
}

// Registry resolves RotationLambdaARNs to rotators: the built-ins
// (sigil-postgresql-single-user, sigil-mysql-single-user, sigil-random)
// and rotators registered in the store. It is safe for concurrent use.
type Registry struct {
	st       store.Store
	region   string
	account  string
	now      func() time.Time
	rand     io.Reader
	client   *http.Client
	builtins map[string]Rotator
}

// NewRegistry checks cfg and returns a Registry. It does no I/O.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: a registry needs a Store", ErrInvalidConfig)
	}
	r := &Registry{st: cfg.Store, region: cfg.Region, account: cfg.AccountID, now: cfg.Now, rand: cfg.Rand, client: cfg.HTTPClient}
	if r.now == nil {
		r.now = time.Now
	}
	if r.rand == nil {
		r.rand = rand.Reader
	}
	r.builtins = map[string]Rotator{
		BuiltinPostgreSQL: &PostgreSQLRotator{Rand: r.rand},
		BuiltinMySQL:      &MySQLRotator{Rand: r.rand},
		BuiltinRandom:     &RandomRotator{Rand: r.rand},
	}
	for name, rot := range cfg.Builtins {
		if !rotatorName.MatchString(name) || rot == nil {
			return nil, fmt.Errorf("%w: builtin %q needs a function name and a rotator", ErrInvalidConfig, name)
		}
		r.builtins[name] = rot
	}
	return r, nil
}

// Resolve returns the rotator a RotationLambdaARN names. It fails with
// [ErrInvalidARN] for a malformed ARN or one of another region or account,
// and with [ErrUnknownRotator] when no rotator has its function name.
func (r *Registry) Resolve(ctx context.Context, arn string) (Rotator, error) {
	a, err := ParseRotatorARN(arn)
	if err != nil {
		return nil, err
	}
	if (r.region != "" && a.Region != r.region) || (r.account != "" && a.AccountID != r.account) {
		return nil, fmt.Errorf("%w: %q names region %s account %s, not this server's", ErrInvalidARN, arn, a.Region, a.AccountID)
	}
	if rot, ok := r.builtins[a.Name]; ok {
		return rot, nil
	}
	sr, err := r.get(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	return r.build(sr), nil
}

// Check reports whether arn resolves to a rotator; it is the secrets
// service's Config.Rotators, so RotateSecret refuses an ARN no rotator
// answers to. An unknown name, or an ARN of another region or account,
// is an error wrapping secrets.ErrUnknownRotator as well as this package's
// error; any other error (reading the store) means it cannot tell.
func (r *Registry) Check(ctx context.Context, arn string) error {
	_, err := r.Resolve(ctx, arn)
	if errors.Is(err, ErrUnknownRotator) || errors.Is(err, ErrInvalidARN) {
		return fmt.Errorf("%w: %w", secrets.ErrUnknownRotator, err)
	}
	return err
}

// build turns a stored definition into a rotator.
func (r *Registry) build(sr storedRotator) Rotator {
	switch sr.Type {
	case TypeRandom:
		return &RandomRotator{Field: sr.Random.Field, Policy: sr.Random.PasswordPolicy, Rand: r.rand}
	case TypeWebhook:
		return &WebhookRotator{URL: sr.Webhook.URL, Key: sr.WebhookKey, Timeout: sr.Webhook.Timeout, Client: r.client, Now: r.now}
	}
	panic("rotation: internal error: stored rotator of unchecked type " + sr.Type)
}

// Put validates spec and stores it, replacing a rotator of the same name.
// For a webhook without a key it generates one. It returns the webhook's
// key (nil for other types): the only time the key is handed out, so the
// caller passes it to the endpoint's operator.
func (r *Registry) Put(ctx context.Context, spec RotatorSpec) (key []byte, err error) {
	if err := validateSpec(&spec); err != nil {
		return nil, err
	}
	sr := storedRotator{RotatorSpec: spec}
	sr.Created = r.now().UTC()
	if spec.Webhook != nil {
		w := *spec.Webhook
		key = append([]byte(nil), w.Key...)
		if len(key) == 0 {
			key = make([]byte, webhookKeySize)
			if _, err := io.ReadFull(r.rand, key); err != nil {
				return nil, fmt.Errorf("generating a webhook key: %w", err)
			}
		}
		w.Key = nil
		sr.Webhook = &w
		sr.WebhookKey = key
	}
	b, err := json.Marshal(sr)
	if err != nil {
		return nil, fmt.Errorf("encoding rotator %q: %w", spec.Name, err)
	}
	if _, err := r.st.Put(ctx, rotatorPrefix+spec.Name, b); err != nil {
		return nil, fmt.Errorf("storing rotator %q: %w", spec.Name, err)
	}
	return key, nil
}

// Get returns the registered rotator name, without its webhook key. It
// fails with [ErrUnknownRotator] if there is none.
func (r *Registry) Get(ctx context.Context, name string) (RotatorSpec, error) {
	sr, err := r.get(ctx, name)
	if err != nil {
		return RotatorSpec{}, err
	}
	return sr.RotatorSpec, nil
}

// List returns every registered rotator in name order, without webhook
// keys. Built-ins are not listed.
func (r *Registry) List(ctx context.Context) ([]RotatorSpec, error) {
	var out []RotatorSpec
	after := ""
	for {
		es, next, err := r.st.List(ctx, rotatorPrefix, after, 500)
		if err != nil {
			return nil, fmt.Errorf("listing rotators: %w", err)
		}
		for _, e := range es {
			sr, err := decodeRotator(e)
			if err != nil {
				return nil, err
			}
			out = append(out, sr.RotatorSpec)
		}
		if next == "" {
			return out, nil
		}
		after = next
	}
}

// Delete removes the registered rotator name. Secrets that still name it
// fail their next rotation with ErrUnknownRotator. Deleting a rotator that
// does not exist fails with ErrUnknownRotator.
func (r *Registry) Delete(ctx context.Context, name string) error {
	if _, err := r.get(ctx, name); err != nil {
		return err
	}
	if err := r.st.Delete(ctx, rotatorPrefix+name); err != nil {
		return fmt.Errorf("deleting rotator %q: %w", name, err)
	}
	return nil
}

func (r *Registry) get(ctx context.Context, name string) (storedRotator, error) {
	if !rotatorName.MatchString(name) {
		return storedRotator{}, fmt.Errorf("%w: %q is not a function name", ErrUnknownRotator, name)
	}
	e, err := r.st.Get(ctx, rotatorPrefix+name)
	if errors.Is(err, store.ErrNotFound) {
		return storedRotator{}, fmt.Errorf("%w: no built-in or registered rotator is named %q", ErrUnknownRotator, name)
	}
	if err != nil {
		return storedRotator{}, fmt.Errorf("reading rotator %q: %w", name, err)
	}
	return decodeRotator(e)
}

func decodeRotator(e store.Entry) (storedRotator, error) {
	var sr storedRotator
	if err := json.Unmarshal(e.Value, &sr); err != nil {
		return storedRotator{}, fmt.Errorf("%w: %s: %w", ErrCorruptRotator, e.Key, err)
	}
	if err := validateStored(&sr); err != nil {
		return storedRotator{}, fmt.Errorf("%w: %s: %w", ErrCorruptRotator, e.Key, err)
	}
	return sr, nil
}

// validateSpec checks a definition given to Put.
func validateSpec(s *RotatorSpec) error {
	switch {
	case !rotatorName.MatchString(s.Name):
		return fmt.Errorf("%w: name %q must be 1 to 64 letters, digits, hyphens or underscores", ErrInvalidRotator, s.Name)
	case strings.HasPrefix(s.Name, reservedPrefix):
		return fmt.Errorf("%w: names starting with %q are reserved for built-in rotators", ErrInvalidRotator, reservedPrefix)
	}
	switch s.Type {
	case TypeRandom:
		if s.Random == nil || s.Webhook != nil {
			return fmt.Errorf("%w: a random rotator needs random options and no webhook", ErrInvalidRotator)
		}
		if len(s.Random.Field) > maxFieldName {
			return fmt.Errorf("%w: the field name is longer than %d bytes", ErrInvalidRotator, maxFieldName)
		}
		return s.Random.PasswordPolicy.Validate()
	case TypeWebhook:
		if s.Webhook == nil || s.Random != nil {
			return fmt.Errorf("%w: a webhook rotator needs webhook options and no random", ErrInvalidRotator)
		}
		w := s.Webhook
		if err := validateWebhookURL(w.URL); err != nil {
			return err
		}
		if w.Timeout < 0 || w.Timeout > maxWebhookTimeout {
			return fmt.Errorf("%w: the webhook timeout must be between 0 and %s", ErrInvalidRotator, maxWebhookTimeout)
		}
		if len(w.Key) != 0 && (len(w.Key) < minWebhookKey || len(w.Key) > maxWebhookKey) {
			return fmt.Errorf("%w: a webhook key must be %d to %d bytes", ErrInvalidRotator, minWebhookKey, maxWebhookKey)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown type %q (want %q or %q)", ErrInvalidRotator, s.Type, TypeRandom, TypeWebhook)
}

// validateStored checks a definition read back from the store.
func validateStored(sr *storedRotator) error {
	spec := sr.RotatorSpec
	if spec.Webhook != nil {
		w := *spec.Webhook
		w.Key = sr.WebhookKey
		spec.Webhook = &w
		if len(w.Key) == 0 {
			return errors.New("webhook without a key")
		}
	}
	return validateSpec(&spec)
}

func validateWebhookURL(s string) error {
	if len(s) > maxWebhookURL {
		return fmt.Errorf("%w: the webhook URL is longer than %d bytes", ErrInvalidRotator, maxWebhookURL)
	}
	// No user info and no query: the URL is stored, shown by get and list
	// and audited as given, so it must not carry credentials; the HMAC
	// signature is what authenticates sigil to the webhook.
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" || u.ForceQuery {
		return fmt.Errorf("%w: the webhook URL must be an absolute http or https URL without user info, query or fragment (credentials do not belong in it: the request is signed)", ErrInvalidRotator)
	}
	return nil
}

// String describes the webhook without its key.
func (w WebhookSpec) String() string {
	return fmt.Sprintf("webhook %s timeout %s (key REDACTED)", redactURL(w.URL), w.Timeout)
}

// GoString keeps the key out of %#v.
func (w WebhookSpec) GoString() string { return w.String() }

// LogValue describes the webhook to log/slog without its key.
func (w WebhookSpec) LogValue() slog.Value { return slog.StringValue(w.String()) }
