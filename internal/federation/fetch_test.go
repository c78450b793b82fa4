package federation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/testutil"
)

func sha1Hex(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw)
	return hex.EncodeToString(sum[:])
}

func TestOIDCThumbprintTrust(t *testing.T) {
	other := testutil.StartOIDCIssuer(t)
	tests := []struct {
		name        string
		opts        []testutil.OIDCOption
		thumbprints func(iss *testutil.OIDCIssuer) []string
		ok          bool
	}{
		{"self-signed, its thumbprint", nil,
			func(iss *testutil.OIDCIssuer) []string { return []string{iss.Thumbprint} }, true},
		{"thumbprint in upper case", nil,
			func(iss *testutil.OIDCIssuer) []string { return []string{strings.ToUpper(iss.Thumbprint)} }, true},
		{"among several thumbprints", nil,
			func(iss *testutil.OIDCIssuer) []string {
				return []string{other.Thumbprint, strings.Repeat("0", 40), iss.Thumbprint}
			}, true},
		{"wrong thumbprint", nil,
			func(*testutil.OIDCIssuer) []string { return []string{other.Thumbprint} }, false},
		{"no thumbprint", nil,
			func(*testutil.OIDCIssuer) []string { return nil }, false},
		{"intermediate CA, thumbprint of the last served certificate (IAM's)", []testutil.OIDCOption{testutil.WithOIDCIntermediateCA()},
			func(iss *testutil.OIDCIssuer) []string { return []string{iss.Thumbprint} }, true},
		{"intermediate CA, thumbprint of the server certificate", []testutil.OIDCOption{testutil.WithOIDCIntermediateCA()},
			func(iss *testutil.OIDCIssuer) []string { return []string{sha1Hex(iss.Chain[0])} }, true},
		{"intermediate CA, thumbprint of the root that is not served", []testutil.OIDCOption{testutil.WithOIDCIntermediateCA()},
			func(iss *testutil.OIDCIssuer) []string { return []string{rootThumbprint(t, iss.CAPEM)} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, tt.opts...)
			e.p.Thumbprints = tt.thumbprints(e.iss)
			if tt.ok {
				e.mustVerify(t, e.iss.MintToken())
				return
			}
			_, err := e.verify(t, e.iss.MintToken())
			assertKind(t, err, federation.ErrProviderUnreachable, "")
			if !strings.Contains(detail(err), "certificate") {
				t.Fatalf("detail %q does not name the certificate problem", detail(err))
			}
			if n := e.iss.DiscoveryFetches(); n != 0 {
				t.Fatalf("%d discovery documents served over an untrusted connection", n)
			}
		})
	}
}

func rootThumbprint(t *testing.T, pemCA string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(pemCA))
	if block == nil {
		t.Fatal("CAPEM holds no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parsing CAPEM: %v", err)
	}
	return sha1Hex(cert)
}

// TestOIDCThumbprintImpostor checks that a server sending someone else's
// pinned certificate after its own is not trusted: certificates are
// public, so the pin must vouch for the key the server proves it holds.
func TestOIDCThumbprintImpostor(t *testing.T) {
	for _, name := range []string{"self-signed", "intermediate CA"} {
		t.Run(name, func(t *testing.T) {
			var opts []testutil.OIDCOption
			if name == "intermediate CA" {
				opts = append(opts, testutil.WithOIDCIntermediateCA())
			}
			real := testutil.StartOIDCIssuer(t, opts...)
			imp := startImpostor(t, real.Chain)
			e := newEnv(t, nil)
			p := &federation.Provider{URL: imp.URL, ClientIDs: []string{testutil.DefaultOIDCAudience}, Thumbprints: []string{real.Thumbprint}}
			_, err := e.v.Verify(t.Context(), p, real.MintToken(testutil.TokenIssuer(imp.URL)))
			assertKind(t, err, federation.ErrProviderUnreachable, "")
			if !strings.Contains(detail(err), "does not chain") {
				t.Fatalf("detail %q", detail(err))
			}
			if n := imp.hits.Load(); n != 0 {
				t.Fatalf("the impostor served %d requests", n)
			}
		})
	}
}

type impostor struct {
	URL  string
	hits atomic.Int64
}

// startImpostor serves https on 127.0.0.1 with its own self-signed
// certificate followed by stolen, a chain of certificates it has no key
// for.
func startImpostor(t *testing.T, stolen []*x509.Certificate) *impostor {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "impostor"},
		NotBefore:    time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	chain := [][]byte{der}
	for _, c := range stolen {
		chain = append(chain, c.Raw)
	}
	imp := &impostor{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imp.hits.Add(1)
		http.NotFound(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: key}}}
	imp.URL = "https://" + srv.Listener.Addr().String()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return imp
}

func TestOIDCCABundleTrust(t *testing.T) {
	other := testutil.StartOIDCIssuer(t)
	tests := []struct {
		name   string
		opts   []testutil.OIDCOption
		bundle func(iss *testutil.OIDCIssuer) string
		roots  bool
		ok     bool
	}{
		{"self-signed certificate as bundle", nil, func(iss *testutil.OIDCIssuer) string { return iss.CAPEM }, false, true},
		{"root CA of an intermediate chain", []testutil.OIDCOption{testutil.WithOIDCIntermediateCA()},
			func(iss *testutil.OIDCIssuer) string { return iss.CAPEM }, false, true},
		{"bundle with another CA first", []testutil.OIDCOption{testutil.WithOIDCIntermediateCA()},
			func(iss *testutil.OIDCIssuer) string { return other.CAPEM + iss.CAPEM }, false, true},
		{"wrong CA", nil, func(*testutil.OIDCIssuer) string { return other.CAPEM }, false, false},
		{"verifier roots instead of a bundle", []testutil.OIDCOption{testutil.WithOIDCIntermediateCA()},
			func(*testutil.OIDCIssuer) string { return "" }, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			iss := testutil.StartOIDCIssuer(t, append(tt.opts, testutil.WithOIDCClock(clock.Now))...)
			capem := iss.CAPEM
			o := federation.Options{Now: clock.Now}
			if tt.roots {
				o.RootCAs = x509.NewCertPool()
				o.RootCAs.AppendCertsFromPEM([]byte(capem))
			}
			v := federation.NewVerifier(o)
			p := &federation.Provider{URL: iss.URL, ClientIDs: []string{testutil.DefaultOIDCAudience}, CABundle: tt.bundle(iss)}
			_, err := v.Verify(t.Context(), p, iss.MintToken())
			if tt.ok {
				if err != nil {
					t.Fatalf("rejected: %v (%s)", err, detail(err))
				}
				return
			}
			assertKind(t, err, federation.ErrProviderUnreachable, "")
		})
	}
}

func TestOIDCPlainHTTP(t *testing.T) {
	tests := []struct {
		name      string
		insecure  bool
		allowHTTP bool
		ok        bool
	}{
		{"refused without AllowInsecureHTTP", false, true, false},
		{"refused without the provider's AllowHTTP", true, false, false},
		{"refused without either", false, false, false},
		{"allowed with both", true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *federation.Options) { o.AllowInsecureHTTP = tt.insecure }, testutil.WithOIDCPlainHTTP())
			p := &federation.Provider{URL: e.iss.HTTPURL, ClientIDs: []string{testutil.DefaultOIDCAudience}, AllowHTTP: tt.allowHTTP}
			token := e.iss.MintToken(testutil.TokenIssuer(e.iss.HTTPURL))
			_, err := e.v.Verify(t.Context(), p, token)
			if tt.ok {
				if err != nil {
					t.Fatalf("rejected: %v (%s)", err, detail(err))
				}
				return
			}
			assertKind(t, err, federation.ErrProviderUnreachable, "")
			if !errors.Is(err, federation.ErrInvalidProvider) && !strings.Contains(detail(err), "AllowInsecureHTTP") {
				t.Fatalf("detail %q", detail(err))
			}
			if n := e.iss.DiscoveryFetches() + e.iss.JWKSFetches(); n != 0 {
				t.Fatalf("%d plain-http fetches", n)
			}
		})
	}
}

func TestOIDCDiscoveryChecks(t *testing.T) {
	plain := testutil.StartOIDCIssuer(t, testutil.WithOIDCPlainHTTP())
	tests := []struct {
		name     string
		mutate   func(doc map[string]any)
		insecure bool
		want     string
	}{
		{"issuer differs", func(d map[string]any) { d["issuer"] = "https://elsewhere.example" }, false, "names issuer"},
		{"issuer with trailing slash", func(d map[string]any) { d["issuer"] = d["issuer"].(string) + "/" }, false, "names issuer"},
		{"no jwks_uri", func(d map[string]any) { delete(d, "jwks_uri") }, false, "no jwks_uri"},
		{"jwks_uri over http", func(d map[string]any) { d["jwks_uri"] = plain.HTTPURL + "/openid/v1/jwks" }, true, "not https"},
		{"jwks_uri with user info", func(d map[string]any) {
			d["jwks_uri"] = strings.Replace(d["jwks_uri"].(string), "https://", "https://u:p@", 1)
		}, false, "user info"},
		{"jwks_uri not found", func(d map[string]any) { d["jwks_uri"] = d["issuer"].(string) + "/missing" }, false, "status 404"},
		{"discovery not JSON-shaped", func(d map[string]any) { d["issuer"] = 5 }, false, "parsing the discovery document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *federation.Options) { o.AllowInsecureHTTP = tt.insecure }, testutil.WithOIDCDiscovery(tt.mutate))
			_, err := e.verify(t, e.iss.MintToken())
			assertKind(t, err, federation.ErrProviderUnreachable, "")
			if !strings.Contains(detail(err), tt.want) {
				t.Fatalf("detail %q does not contain %q", detail(err), tt.want)
			}
			if n := plain.JWKSFetches(); n != 0 {
				t.Fatalf("%d JWKS fetches over http", n)
			}
		})
	}
}

// TestOIDCHostileServers checks the limits on what a provider's server
// can make the verifier do: no redirects, bounded bodies, errors reported.
func TestOIDCHostileServers(t *testing.T) {
	target := testutil.StartOIDCIssuer(t)
	tests := []struct {
		name    string
		handler func(base string) http.HandlerFunc
		want    string
	}{
		{"redirect to another issuer", func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+r.URL.Path, http.StatusFound)
			}
		}, "redirects are not followed"},
		{"oversized discovery document", func(base string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `{"issuer":"`+base+`","jwks_uri":"`+base+`/jwks","pad":"`)
				_, _ = w.Write([]byte(strings.Repeat("x", federation.MaxResponseSize)))
				_, _ = io.WriteString(w, `"}`)
			}
		}, "larger than"},
		{"server error", func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }
		}, "status 503"},
		{"JWKS without usable keys", func(base string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/jwks") {
					_, _ = io.WriteString(w, `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`)
					return
				}
				_, _ = io.WriteString(w, `{"issuer":"`+base+`","jwks_uri":"`+base+`/jwks"}`)
			}
		}, "no usable signing key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var base string
			var h http.HandlerFunc
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(w, r) }))
			base = "https://" + srv.Listener.Addr().String()
			h = tt.handler(base)
			srv.StartTLS()
			t.Cleanup(srv.Close)

			e := newEnv(t, nil)
			p := &federation.Provider{URL: base, ClientIDs: []string{testutil.DefaultOIDCAudience}, Thumbprints: []string{sha1Hex(srv.Certificate())}}
			_, err := e.v.Verify(t.Context(), p, target.MintToken(testutil.TokenIssuer(base)))
			assertKind(t, err, federation.ErrProviderUnreachable, "")
			if !strings.Contains(detail(err), tt.want) {
				t.Fatalf("detail %q does not contain %q", detail(err), tt.want)
			}
			if n := target.DiscoveryFetches(); n != 0 {
				t.Fatalf("the redirect was followed (%d fetches)", n)
			}
		})
	}
}

func TestOIDCProviderUnreachable(t *testing.T) {
	e := newEnv(t, nil)
	// A listener that is closed at once: nothing answers on its port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + l.Addr().String()
	l.Close()
	p := &federation.Provider{URL: url, ClientIDs: []string{testutil.DefaultOIDCAudience}, Thumbprints: []string{e.iss.Thumbprint}}
	token := e.iss.MintToken(testutil.TokenIssuer(url))
	_, err = e.v.Verify(t.Context(), p, token)
	assertKind(t, err, federation.ErrProviderUnreachable, token)
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Fatalf("the cause is not wrapped: %v (%s)", err, detail(err))
	}
	if !strings.Contains(e.logs.String(), "fetching OIDC provider keys failed") {
		t.Fatalf("failure not logged: %s", e.logs.String())
	}
	if strings.Contains(e.logs.String(), token) {
		t.Fatal("the token was logged")
	}

	// Failures are rate limited too: a second attempt within the interval
	// reports the cached failure.
	_, err = e.v.Verify(t.Context(), p, token)
	if !errors.As(err, &opErr) {
		t.Fatalf("second attempt: %v (%s)", err, detail(err))
	}
}

func TestOIDCStaticJWKS(t *testing.T) {
	e := newEnv(t, nil)
	const issuer = "https://cluster.invalid/id/PRIVATE"
	p := &federation.Provider{URL: issuer, ClientIDs: []string{testutil.DefaultOIDCAudience}, JWKS: e.iss.JWKS()}

	id, err := e.v.Verify(t.Context(), p, e.iss.MintToken(testutil.TokenIssuer(issuer), testutil.TokenNamespace("batch")))
	if err != nil {
		t.Fatalf("rejected: %v (%s)", err, detail(err))
	}
	if id.Kubernetes.Namespace != "batch" || id.ConditionContext()["cluster.invalid/id/PRIVATE:sub"][0] != "system:serviceaccount:batch:default" {
		t.Fatalf("identity %+v", id)
	}
	_, err = e.v.Verify(t.Context(), p, e.iss.MintToken(testutil.TokenIssuer(issuer), testutil.TokenKeyID("unknown")))
	assertKind(t, err, federation.ErrInvalidToken, "")

	e.iss.RotateKeys(t)
	_, err = e.v.Verify(t.Context(), p, e.iss.MintToken(testutil.TokenIssuer(issuer)))
	assertKind(t, err, federation.ErrInvalidToken, "")

	// Updating the provider's JWKS takes effect at once.
	p.JWKS = e.iss.JWKS()
	if _, err := e.v.Verify(t.Context(), p, e.iss.MintToken(testutil.TokenIssuer(issuer))); err != nil {
		t.Fatalf("after updating the JWKS: %v (%s)", err, detail(err))
	}
	if n := e.iss.DiscoveryFetches() + e.iss.JWKSFetches(); n != 0 {
		t.Fatalf("%d fetches for a static provider", n)
	}

	p.JWKS = `{"keys":[]}`
	_, err = e.v.Verify(t.Context(), p, e.iss.MintToken(testutil.TokenIssuer(issuer)))
	assertKind(t, err, federation.ErrProviderUnreachable, "")
	if !errors.Is(err, federation.ErrInvalidProvider) {
		t.Fatalf("an empty static JWKS is not reported as an invalid provider: %v", err)
	}
}

func TestOIDCConfigChangeTakesEffect(t *testing.T) {
	e := newEnv(t, nil)
	good := e.p.Thumbprints
	e.p.Thumbprints = []string{strings.Repeat("ab", 20)}
	_, err := e.verify(t, e.iss.MintToken())
	assertKind(t, err, federation.ErrProviderUnreachable, "")

	// Fixing the thumbprint works at once, without waiting out the rate
	// limit that the failure started.
	e.p.Thumbprints = good
	e.mustVerify(t, e.iss.MintToken())
}
