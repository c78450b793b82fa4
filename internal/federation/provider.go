package federation

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Limits IAM places on an OpenID Connect provider, enforced by
// [Provider.Validate].
const (
	// MaxURLLength is the longest provider URL IAM accepts.
	MaxURLLength = 255
	// MaxClientIDs is the most client IDs (audiences) one provider may list.
	MaxClientIDs = 100
	// MaxClientIDLength is the longest client ID IAM accepts.
	MaxClientIDLength = 255
	// MaxThumbprints is the most certificate thumbprints one provider may
	// list.
	MaxThumbprints = 5
)

// Provider is a registered OpenID Connect identity provider: what IAM's
// OpenIDConnectProvider holds (URL, client IDs, thumbprints) plus sigil's
// extras for private clusters (a CA bundle, a static JWKS, plain http for
// labs). Package iam stores it; Verify reads it and never modifies it.
//
// The zero value is not usable: URL is required.
type Provider struct {
	// URL is the issuer, "https://host[:port][/path]", exactly as it appears
	// in the tokens' iss claim and in the discovery document's issuer. No
	// query, fragment or user info. Required.
	URL string
	// ClientIDs are the accepted audiences: a token is accepted only if its
	// aud claim (a string or an array) contains one of them. An empty list
	// accepts no token.
	ClientIDs []string
	// Thumbprints are hex SHA-1 digests (40 hex digits, either case) of
	// certificates the provider's servers present, at most MaxThumbprints.
	// They are consulted only when a server's certificate chain does not
	// verify against the system roots or CABundle: the connection is then
	// trusted if some certificate in the chain the server sends has a listed
	// thumbprint and the server's own certificate, for the right host name,
	// chains to it. IAM asks for the thumbprint of the last certificate the
	// server sends (the top intermediate CA, what `openssl s_client
	// -showcerts` prints last); that works here, and so does the thumbprint
	// of the server certificate itself or of a self-signed certificate. The
	// discovery host and the JWKS host are checked independently, so when
	// they differ both need a thumbprint (as in IAM).
	Thumbprints []string
	// CABundle is optional PEM holding CA certificates trusted, in addition
	// to the system roots, for the provider's TLS servers (a cluster's
	// private CA). Empty means none.
	CABundle string
	// JWKS is an optional static JSON Web Key Set (the JSON document). When
	// set, the provider is never contacted: these keys verify its tokens,
	// for clusters whose issuer is not reachable from sigil. Tokens signed by
	// other keys fail until the provider is updated with the new set.
	JWKS string
	// AllowHTTP permits a plain http:// URL and jwks_uri. It is honoured only
	// when the verifier runs with [Options.AllowInsecureHTTP] (a server flag
	// for labs); otherwise such a provider is unusable.
	AllowHTTP bool
	// ARN is the provider's ARN (see [ProviderARN]), copied into
	// [Identity.ProviderARN]. Optional; Verify does not check it.
	ARN string
}

// Validate checks the provider against IAM's limits and sigil's rules: the
// URL form, the number and form of client IDs and thumbprints, that
// CABundle holds at least one certificate and that JWKS holds at least one
// usable signing key. Errors wrap [ErrInvalidProvider]. IAM calls it before
// storing a provider; Verify applies the same checks (but for client IDs).
func (p *Provider) Validate() error {
	if err := p.validateTransport(); err != nil {
		return err
	}
	if len(p.ClientIDs) > MaxClientIDs {
		return fmt.Errorf("%w: %d client IDs, at most %d allowed", ErrInvalidProvider, len(p.ClientIDs), MaxClientIDs)
	}
	for _, id := range p.ClientIDs {
		if id == "" || len(id) > MaxClientIDLength {
			return fmt.Errorf("%w: client ID of %d characters, want 1 to %d", ErrInvalidProvider, len(id), MaxClientIDLength)
		}
	}
	return nil
}

// validateTransport checks what decides how keys are obtained: the URL,
// thumbprints, CA bundle and static JWKS.
func (p *Provider) validateTransport() error {
	if _, err := parseIssuerURL(p.URL, p.AllowHTTP); err != nil {
		return err
	}
	if _, err := parseThumbprints(p.Thumbprints); err != nil {
		return err
	}
	if p.CABundle != "" {
		if _, err := parseCABundle(p.CABundle); err != nil {
			return err
		}
	}
	if p.JWKS != "" {
		if _, _, err := parseJWKS([]byte(p.JWKS)); err != nil {
			return fmt.Errorf("%w: static JWKS: %w", ErrInvalidProvider, err)
		}
	}
	return nil
}

// KeyPrefix returns the prefix of the provider's condition keys, as in
// [ConditionKeyPrefix].
func (p *Provider) KeyPrefix() string { return ConditionKeyPrefix(p.URL) }

// ConditionKeyPrefix returns the prefix IAM gives the condition keys of an
// OpenID Connect provider: the URL without its scheme and without trailing
// slashes, so "https://oidc.example.com/id/ABC" gives
// "oidc.example.com/id/ABC" and the keys "oidc.example.com/id/ABC:sub" and
// "oidc.example.com/id/ABC:aud". A port stays part of the prefix
// ("127.0.0.1:8443/x"); the policy engine must split a key at its last
// colon.
func ConditionKeyPrefix(providerURL string) string {
	s := providerURL
	if rest, ok := strings.CutPrefix(s, "https://"); ok {
		s = rest
	} else if rest, ok := strings.CutPrefix(s, "http://"); ok {
		s = rest
	}
	return strings.TrimRight(s, "/")
}

// ProviderARN returns the ARN IAM gives an OpenID Connect provider in an
// account: "arn:aws:iam::<account>:oidc-provider/<prefix>", with the prefix
// of [ConditionKeyPrefix].
func ProviderARN(accountID, providerURL string) string {
	return "arn:aws:iam::" + accountID + ":oidc-provider/" + ConditionKeyPrefix(providerURL)
}

// parseIssuerURL checks an issuer URL's form and returns it parsed.
func parseIssuerURL(raw string, allowHTTP bool) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: the URL is empty", ErrInvalidProvider)
	}
	if len(raw) > MaxURLLength {
		return nil, fmt.Errorf("%w: URL of %d characters, at most %d allowed", ErrInvalidProvider, len(raw), MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: parsing URL: %w", ErrInvalidProvider, err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		return nil, fmt.Errorf("%w: URL %q is plain http but the provider does not allow http", ErrInvalidProvider, raw)
	default:
		return nil, fmt.Errorf("%w: URL %q must start with https://", ErrInvalidProvider, raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: URL %q has no host", ErrInvalidProvider, raw)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#") {
		return nil, fmt.Errorf("%w: URL %q must not have user info, a query or a fragment", ErrInvalidProvider, raw)
	}
	if u.Opaque != "" {
		return nil, fmt.Errorf("%w: URL %q is not hierarchical", ErrInvalidProvider, raw)
	}
	return u, nil
}

// thumbprint is the SHA-1 digest of a DER certificate.
type thumbprint [20]byte

// parseThumbprints decodes hex SHA-1 thumbprints.
func parseThumbprints(list []string) ([]thumbprint, error) {
	if len(list) > MaxThumbprints {
		return nil, fmt.Errorf("%w: %d thumbprints, at most %d allowed", ErrInvalidProvider, len(list), MaxThumbprints)
	}
	out := make([]thumbprint, 0, len(list))
	for _, s := range list {
		var tp thumbprint
		if len(s) != 2*len(tp) {
			return nil, fmt.Errorf("%w: thumbprint %q is not 40 hex digits", ErrInvalidProvider, s)
		}
		if _, err := hex.Decode(tp[:], []byte(s)); err != nil {
			return nil, fmt.Errorf("%w: thumbprint %q is not 40 hex digits", ErrInvalidProvider, s)
		}
		if !slices.Contains(out, tp) {
			out = append(out, tp)
		}
	}
	return out, nil
}

// parseCABundle parses PEM certificates into a pool.
func parseCABundle(pem string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pem)) {
		return nil, fmt.Errorf("%w: the CA bundle holds no PEM certificate", ErrInvalidProvider)
	}
	return pool, nil
}

// errHTTPDisabled is the cause reported for an http provider on a verifier
// without AllowInsecureHTTP.
var errHTTPDisabled = errors.New("plain http providers are disabled on this server (enable AllowInsecureHTTP for labs only)")
