package federation

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Limits on talking to a provider.
const (
	// MaxResponseSize is the largest discovery document or JWKS read.
	MaxResponseSize = 1 << 20
	// fetchTimeout bounds each HTTP request (connect, TLS, headers, body).
	fetchTimeout = 5 * time.Second
	// fetchBudget bounds one refresh: discovery plus JWKS.
	fetchBudget = 2*fetchTimeout + time.Second
	// maxHeaderBytes bounds response headers.
	maxHeaderBytes = 64 << 10
)

// discoveryPath is appended to the issuer to find its discovery document
// (OpenID Connect Discovery 1.0, section 4).
const discoveryPath = "/.well-known/openid-configuration"

// trust decides whether a provider's TLS server is who it claims to be.
type trust struct {
	// roots are the system roots (nil means the platform's).
	roots *x509.CertPool
	// bundle is the provider's CA bundle, nil if none.
	bundle *x509.CertPool
	// thumbprints are the provider's pinned certificate digests.
	thumbprints []thumbprint
	now         func() time.Time
}

// verify checks the chain a server for host presented. It is trusted if the
// server's certificate verifies, for host, against the roots or the CA
// bundle; failing that, if some certificate in the presented chain has a
// pinned thumbprint and the server's certificate, for host, chains to it
// (the pinned certificate then serves as the only root). Matching a
// thumbprint alone is never enough: certificates are public, so the server
// must also hold the key of a certificate that the pinned one vouches for,
// which the TLS handshake has proven for the first certificate.
func (t *trust) verify(host string, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("the server presented no certificate")
	}
	leaf := certs[0]
	opts := x509.VerifyOptions{
		DNSName:     host,
		CurrentTime: t.now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	opts.Roots = t.roots
	_, err := leaf.Verify(opts)
	if err == nil {
		return nil
	}
	if t.bundle != nil {
		opts.Roots = t.bundle
		if _, berr := leaf.Verify(opts); berr == nil {
			return nil
		}
	}
	var pinErr error
	for _, c := range certs {
		if !slices.Contains(t.thumbprints, thumbprint(sha1.Sum(c.Raw))) {
			continue
		}
		pinned := x509.NewCertPool()
		pinned.AddCert(c)
		opts.Roots = pinned
		_, perr := leaf.Verify(opts)
		if perr == nil {
			return nil
		}
		pinErr = perr
	}
	if pinErr != nil {
		return fmt.Errorf("certificate for %q does not chain, for that host, to the certificate with a configured thumbprint: %w", host, pinErr)
	}
	return fmt.Errorf("certificate for %q is not trusted (%w) and no certificate the server sent matches a configured thumbprint", host, err)
}

// dialTLS connects to addr and runs a TLS handshake whose verification is
// trust.verify for the host in addr. The standard verification is turned
// off only because verify replaces it: both the chain check and the
// thumbprint fallback run in VerifyConnection, and a connection neither
// accepts fails the handshake.
func (t *trust) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dialing %q: %w", addr, err)
	}
	cfg := &tls.Config{
		ServerName:         host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verification is done by VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return t.verify(host, cs.PeerCertificates)
		},
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: fetchTimeout}, Config: cfg}
	return d.DialContext(ctx, network, addr)
}

// newHTTPClient returns the client that fetches one provider's documents:
// TLS verified by t, no proxy, no redirects, no connection reuse (fetches
// are rare, and every fetch then runs the trust check afresh), and every
// request bounded by fetchTimeout.
func newHTTPClient(t *trust) *http.Client {
	tr := &http.Transport{
		DialContext:            (&net.Dialer{Timeout: fetchTimeout}).DialContext,
		DialTLSContext:         t.dialTLS,
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  fetchTimeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   fetchTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// fetchKeys performs discovery and fetches the provider's JWKS.
func (v *Verifier) fetchKeys(ctx context.Context, st *providerState) (*keySet, []string, error) {
	issuer := st.cfg.URL
	discoveryURL := strings.TrimSuffix(issuer, "/") + discoveryPath
	body, err := v.get(ctx, st, discoveryURL)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching the discovery document: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("parsing the discovery document from %q: %w", discoveryURL, err)
	}
	if doc.Issuer != issuer {
		return nil, nil, fmt.Errorf("the discovery document from %q names issuer %q, want exactly %q", discoveryURL, doc.Issuer, issuer)
	}
	if doc.JWKSURI == "" {
		return nil, nil, fmt.Errorf("the discovery document from %q has no jwks_uri", discoveryURL)
	}
	body, err = v.get(ctx, st, doc.JWKSURI)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching the JWKS: %w", err)
	}
	ks, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, skipped, fmt.Errorf("JWKS from %q: %w", doc.JWKSURI, err)
	}
	return ks, skipped, nil
}

// get fetches rawURL, which must be https (or http where the provider and
// the verifier allow it), and returns the body of a 200 response of at most
// MaxResponseSize bytes.
func (v *Verifier) get(ctx context.Context, st *providerState, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parsing URL %q: %w", rawURL, err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && st.allowHTTP:
	default:
		return nil, fmt.Errorf("URL %q is not https", rawURL)
	}
	if u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("URL %q must have a host and no user info", rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("GET %q: %w", rawURL, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sigil-federation")
	resp, err := st.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %q: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return nil, fmt.Errorf("GET %q: status %d (redirects are not followed)", rawURL, resp.StatusCode)
		}
		return nil, fmt.Errorf("GET %q: status %d", rawURL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %q: reading body: %w", rawURL, err)
	}
	if len(body) > MaxResponseSize {
		return nil, fmt.Errorf("GET %q: response larger than %d bytes", rawURL, MaxResponseSize)
	}
	return body, nil
}
