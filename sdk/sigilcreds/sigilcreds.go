// Package sigilcreds gives Go applications running a sealed image their
// AWS credentials in-process, with no code change beyond the provider.
//
// A sealed image (see "sigil seal") carries /var/run/sigil/bootstrap.json.
// [NewProvider] reads it once; every Retrieve signs a fresh one-time
// assertion with the sealed key and exchanges it with sigil's STS
// (AssumeRoleWithWebIdentity) for short-lived session credentials. Wrap
// the provider in a cache so the exchange happens only when the
// credentials are about to expire:
//
//	p, err := sigilcreds.NewProvider("/var/run/sigil/bootstrap.json")
//	if err != nil { ... }
//	cfg, err := config.LoadDefaultConfig(ctx,
//		config.WithCredentialsProvider(p.Cache()),
//		config.WithBaseEndpoint(p.Endpoint()), config.WithRegion(p.Region()))
//
// [Provider.Cache] is aws.NewCredentialsCache with an expiry window
// (default one minute, [WithRefreshBefore]), so credentials are renewed
// before they expire rather than after a failed call.
//
// Security notes: the private key stays in memory, is never logged and is
// never sent; only signed assertions (valid five minutes, single use)
// leave the process. A Kubernetes service-account token is sent as a
// second proof only with [WithKubernetesTokenFile].
package sigilcreds

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"sigil.dev/sigil/internal/images"
)

// DefaultRefreshBefore is how long before expiry Cache renews
// credentials unless WithRefreshBefore says otherwise.
const DefaultRefreshBefore = time.Minute

// Provider is an aws.CredentialsProvider backed by a sealed bootstrap
// file. It does not cache: use Cache. It is safe for concurrent use.
type Provider struct {
	bootstrap *images.Bootstrap
	opts      options
}

type options struct {
	httpClient    *http.Client
	k8sTokenFile  string
	sessionName   string
	duration      time.Duration
	refreshBefore time.Duration
	now           func() time.Time
}

// Option configures NewProvider.
type Option func(*options)

// WithHTTPClient sets the client for the STS call (default
// http.DefaultClient).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithKubernetesTokenFile sends the projected service-account token read
// from path (on every exchange, since the kubelet rotates it) as a second
// proof. Without it no Kubernetes token is sent.
func WithKubernetesTokenFile(path string) Option { return func(o *options) { o.k8sTokenFile = path } }

// WithSessionName sets the RoleSessionName (default "image-<key id>").
func WithSessionName(name string) Option { return func(o *options) { o.sessionName = name } }

// WithDuration requests a session lifetime (default: the role's).
func WithDuration(d time.Duration) Option { return func(o *options) { o.duration = d } }

// WithRefreshBefore sets how long before expiry Cache renews
// (default DefaultRefreshBefore).
func WithRefreshBefore(d time.Duration) Option { return func(o *options) { o.refreshBefore = d } }

// WithClock sets the clock assertions are dated with (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// NewProvider reads and validates the bootstrap file at bootstrapPath.
// Errors never contain the private key.
func NewProvider(bootstrapPath string, opts ...Option) (*Provider, error) {
	o := options{refreshBefore: DefaultRefreshBefore}
	for _, f := range opts {
		f(&o)
	}
	data, err := os.ReadFile(bootstrapPath)
	if err != nil {
		return nil, fmt.Errorf("sigilcreds: reading the bootstrap file: %w", err)
	}
	b, err := images.ParseBootstrap(data)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("sigilcreds: bootstrap file %s: %w", bootstrapPath, err)
	}
	return &Provider{bootstrap: b, opts: o}, nil
}

// Endpoint is the sigil server URL from the bootstrap file, for
// config.WithBaseEndpoint.
func (p *Provider) Endpoint() string { return p.bootstrap.Endpoint }

// Region is the region from the bootstrap file.
func (p *Provider) Region() string { return p.bootstrap.Region }

// RoleARN is the role the sealed identity assumes.
func (p *Provider) RoleARN() string { return p.bootstrap.RoleARN }

// Retrieve exchanges a fresh assertion for session credentials. It
// implements aws.CredentialsProvider.
func (p *Provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	eo := images.ExchangeOptions{SessionName: p.opts.sessionName, Duration: p.opts.duration, HTTPClient: p.opts.httpClient}
	eo.Assertion.Now = p.opts.now
	if p.opts.k8sTokenFile != "" {
		tok, err := os.ReadFile(p.opts.k8sTokenFile)
		if err != nil {
			return aws.Credentials{}, fmt.Errorf("sigilcreds: reading the Kubernetes token: %w", err)
		}
		eo.Assertion.K8sToken = strings.TrimSpace(string(tok))
	}
	c, err := images.Exchange(ctx, p.bootstrap, eo)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("sigilcreds: %w", err)
	}
	return c, nil
}

// Cache wraps the provider in aws.NewCredentialsCache, renewing
// credentials the configured window before they expire.
func (p *Provider) Cache() *aws.CredentialsCache {
	return aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = p.opts.refreshBefore })
}

// String describes the provider without its key.
func (p *Provider) String() string { return "sigilcreds.Provider{" + p.bootstrap.String() + "}" }
