// This file holds StartOIDCIssuer, a test OpenID Connect issuer shaped like
// a Kubernetes API server's service-account issuer:
//
//	iss := testutil.StartOIDCIssuer(t)
//	p := &federation.Provider{URL: iss.URL, ClientIDs: []string{testutil.DefaultOIDCAudience},
//		Thumbprints: []string{iss.Thumbprint}}
//	token := iss.MintToken(testutil.TokenNamespace("prod"), testutil.TokenServiceAccount("web"))
//
// It serves the discovery document and the JWKS over https on 127.0.0.1
// with its own certificate (not in any system root store: trust it by
// Thumbprint or by CAPEM), and optionally over plain http. It mints
// service-account tokens with RS256 (default), ES256 or EdDSA keys, rotates
// keys, counts fetches, and forges the tokens an attacker would try: alg
// "none", HS256 keyed with the public key, a signature by a key it does not
// publish, a tampered payload.
//
// Signing is written here with the standard library alone, independently
// of the go-jose code the verifier uses, so each checks the other.

package testutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DefaultOIDCAudience is the audience MintToken puts in tokens unless told
// otherwise; it is what EKS uses for STS.
const DefaultOIDCAudience = "sts.amazonaws.com"

// Signing algorithms an OIDCIssuer can use, the JWS "alg" names.
const (
	OIDCAlgRS256 = "RS256"
	OIDCAlgES256 = "ES256"
	OIDCAlgEdDSA = "EdDSA"
)

// Paths the issuer serves, under its URL.
const (
	oidcDiscoveryPath = "/.well-known/openid-configuration"
	oidcJWKSPath      = "/openid/v1/jwks"
)

// OIDCIssuer is a running test OpenID Connect issuer, started by
// StartOIDCIssuer and stopped by t.Cleanup.
type OIDCIssuer struct {
	// URL is the https issuer, "https://127.0.0.1:<port>[<path>]"; tokens
	// carry it as iss and the https discovery document names it.
	URL string
	// HTTPURL is the plain-http issuer, set only with WithOIDCPlainHTTP; the
	// http discovery document names it and points jwks_uri at http.
	HTTPURL string
	// Thumbprint is the lowercase hex SHA-1 of the last certificate the
	// https server sends, the one IAM asks for: the self-signed server
	// certificate by default, the intermediate CA with
	// WithOIDCIntermediateCA.
	Thumbprint string
	// CAPEM is the PEM of the certificate at the root of the server's
	// chain: the self-signed server certificate by default, a root CA that
	// the server does not send with WithOIDCIntermediateCA. Use it as a CA
	// bundle.
	CAPEM string
	// Chain is the chain the https server sends, server certificate first.
	Chain []*x509.Certificate

	alg      string
	now      func() time.Time
	path     string
	mutate   func(doc map[string]any)
	jwksHits atomic.Int64
	discHits atomic.Int64

	mu sync.Mutex
	// keys are the published keys; the last one signs.
	keys []*oidcKey
}

// oidcKey is one signing key and its JWK.
type oidcKey struct {
	kid  string
	alg  string
	priv crypto.Signer
	jwk  map[string]string
}

// OIDCOption configures StartOIDCIssuer.
type OIDCOption func(*oidcConfig)

type oidcConfig struct {
	alg          string
	plainHTTP    bool
	path         string
	intermediate bool
	now          func() time.Time
	mutate       func(doc map[string]any)
}

// WithOIDCAlgorithm makes the issuer sign with OIDCAlgRS256 (RSA-2048, the
// default), OIDCAlgES256 (P-256) or OIDCAlgEdDSA (Ed25519).
func WithOIDCAlgorithm(alg string) OIDCOption {
	return func(c *oidcConfig) { c.alg = alg }
}

// WithOIDCPlainHTTP also serves the issuer over plain http, at HTTPURL.
func WithOIDCPlainHTTP() OIDCOption {
	return func(c *oidcConfig) { c.plainHTTP = true }
}

// WithOIDCPath gives the issuer URL a path, as EKS does ("/id/ABCDEF").
func WithOIDCPath(path string) OIDCOption {
	return func(c *oidcConfig) { c.path = strings.TrimRight(path, "/") }
}

// WithOIDCIntermediateCA serves a server certificate issued by an
// intermediate CA issued by a root CA, sending the server and intermediate
// certificates (not the root), as public issuers do.
func WithOIDCIntermediateCA() OIDCOption {
	return func(c *oidcConfig) { c.intermediate = true }
}

// WithOIDCClock sets the clock MintToken takes iat, nbf and the default
// exp from. The default is time.Now.
func WithOIDCClock(now func() time.Time) OIDCOption {
	return func(c *oidcConfig) { c.now = now }
}

// WithOIDCDiscovery lets a test change the discovery document (a map with
// "issuer", "jwks_uri" and the other members) before it is served, for
// example to name another issuer.
func WithOIDCDiscovery(mutate func(doc map[string]any)) OIDCOption {
	return func(c *oidcConfig) { c.mutate = mutate }
}

// StartOIDCIssuer starts a test issuer on 127.0.0.1 with a random port and
// one signing key, and stops it when the test ends.
func StartOIDCIssuer(t testing.TB, opts ...OIDCOption) *OIDCIssuer {
	t.Helper()
	cfg := oidcConfig{alg: OIDCAlgRS256, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	iss := &OIDCIssuer{alg: cfg.alg, now: cfg.now, path: cfg.path, mutate: cfg.mutate}
	key, err := newOIDCKey(cfg.alg)
	if err != nil {
		t.Fatalf("starting OIDC issuer: %v", err)
	}
	iss.keys = []*oidcKey{key}

	cert, chain, rootPEM, err := oidcCertificate(cfg.intermediate)
	if err != nil {
		t.Fatalf("starting OIDC issuer: %v", err)
	}
	iss.Chain = chain
	last := sha1.Sum(chain[len(chain)-1].Raw)
	iss.Thumbprint = hex.EncodeToString(last[:])
	iss.CAPEM = rootPEM

	// The URLs are set from the listeners before the servers start, so the
	// handler only ever reads them.
	quiet := log.New(io.Discard, "", 0) // rejected handshakes are expected
	srv := httptest.NewUnstartedServer(http.HandlerFunc(iss.serve))
	srv.Config.ErrorLog = quiet
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	iss.URL = "https://" + srv.Listener.Addr().String() + cfg.path
	var plain *httptest.Server
	if cfg.plainHTTP {
		plain = httptest.NewUnstartedServer(http.HandlerFunc(iss.serve))
		plain.Config.ErrorLog = quiet
		iss.HTTPURL = "http://" + plain.Listener.Addr().String() + cfg.path
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	if plain != nil {
		plain.Start()
		t.Cleanup(plain.Close)
	}
	return iss
}

// serve answers discovery and JWKS requests.
func (iss *OIDCIssuer) serve(w http.ResponseWriter, r *http.Request) {
	base := iss.URL
	if r.TLS == nil {
		base = iss.HTTPURL
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case iss.path + oidcDiscoveryPath:
		iss.discHits.Add(1)
		doc := map[string]any{
			"issuer":                                base,
			"jwks_uri":                              base + oidcJWKSPath,
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{iss.alg},
		}
		if iss.mutate != nil {
			iss.mutate(doc)
		}
		writeJSON(w, doc)
	case iss.path + oidcJWKSPath:
		iss.jwksHits.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = io.WriteString(w, iss.JWKS())
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// JWKS returns the JSON Web Key Set the issuer currently publishes, for
// use as a static JWKS.
func (iss *OIDCIssuer) JWKS() string {
	iss.mu.Lock()
	keys := make([]map[string]string, len(iss.keys))
	for i, k := range iss.keys {
		keys[i] = k.jwk
	}
	iss.mu.Unlock()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic("testutil: internal error: " + err.Error())
	}
	return string(b)
}

// JWKSFetches returns how many times the JWKS has been fetched, over https
// and http together.
func (iss *OIDCIssuer) JWKSFetches() int { return int(iss.jwksHits.Load()) }

// DiscoveryFetches returns how many times the discovery document has been
// fetched.
func (iss *OIDCIssuer) DiscoveryFetches() int { return int(iss.discHits.Load()) }

// KeyID returns the kid of the current signing key.
func (iss *OIDCIssuer) KeyID() string {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.keys[len(iss.keys)-1].kid
}

// RotateKeys replaces the signing key with a new one (new kid) and stops
// publishing the old one: tokens signed before no longer verify once a
// verifier has fetched the new JWKS.
func (iss *OIDCIssuer) RotateKeys(t testing.TB) {
	t.Helper()
	iss.rotate(t, false)
}

// RotateKeysKeepingOld adds a new signing key (new kid) and keeps
// publishing the old ones, as issuers do during a rotation.
func (iss *OIDCIssuer) RotateKeysKeepingOld(t testing.TB) {
	t.Helper()
	iss.rotate(t, true)
}

func (iss *OIDCIssuer) rotate(t testing.TB, keep bool) {
	t.Helper()
	key, err := newOIDCKey(iss.alg)
	if err != nil {
		t.Fatalf("rotating OIDC keys: %v", err)
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	if keep {
		iss.keys = append(iss.keys, key)
	} else {
		iss.keys = []*oidcKey{key}
	}
}

// current returns the signing key.
func (iss *OIDCIssuer) current() *oidcKey {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.keys[len(iss.keys)-1]
}

// TokenOption changes a token MintToken (or a forging method) produces.
type TokenOption func(*tokenSpec)

type tokenSpec struct {
	issuer, subject    string
	audience           []string
	namespace, sa, pod string
	saUID, podUID      string
	exp, nbf, iat      time.Time
	kid                *string
	extra              map[string]any
	removed            map[string]bool
	subjectSet, podSet bool
}

// TokenIssuer sets iss (default: the issuer's https URL).
func TokenIssuer(iss string) TokenOption { return func(s *tokenSpec) { s.issuer = iss } }

// TokenSubject sets sub (default:
// "system:serviceaccount:<namespace>:<service account>").
func TokenSubject(sub string) TokenOption {
	return func(s *tokenSpec) { s.subject, s.subjectSet = sub, true }
}

// TokenAudience sets aud to an array of these audiences (default:
// [DefaultOIDCAudience]). For a plain-string aud use TokenClaim("aud", s).
func TokenAudience(aud ...string) TokenOption { return func(s *tokenSpec) { s.audience = aud } }

// TokenNamespace sets the Kubernetes namespace (default "default").
func TokenNamespace(ns string) TokenOption { return func(s *tokenSpec) { s.namespace = ns } }

// TokenServiceAccount sets the Kubernetes service account's name (default
// "default"); its UID is random.
func TokenServiceAccount(name string) TokenOption { return func(s *tokenSpec) { s.sa = name } }

// TokenPod sets the name of the pod the token is bound to (default
// "app-0"); its UID is random. An empty name makes a token not bound to a
// pod.
func TokenPod(name string) TokenOption {
	return func(s *tokenSpec) { s.pod, s.podSet = name, true }
}

// TokenExpiry sets exp (default: an hour after the issuer's clock).
func TokenExpiry(t time.Time) TokenOption { return func(s *tokenSpec) { s.exp = t } }

// TokenNotBefore sets nbf (default: the issuer's clock).
func TokenNotBefore(t time.Time) TokenOption { return func(s *tokenSpec) { s.nbf = t } }

// TokenIssuedAt sets iat (default: the issuer's clock).
func TokenIssuedAt(t time.Time) TokenOption { return func(s *tokenSpec) { s.iat = t } }

// TokenKeyID sets the header's kid while the current key still signs; an
// empty kid leaves the kid header out. Default: the signing key's kid.
func TokenKeyID(kid string) TokenOption { return func(s *tokenSpec) { s.kid = &kid } }

// TokenClaim sets any claim to value, after every other option; a nil
// value removes the claim (TokenClaim("exp", nil) mints a token without
// exp, TokenClaim("kubernetes.io", nil) one that is not a Kubernetes
// token).
func TokenClaim(name string, value any) TokenOption {
	return func(s *tokenSpec) {
		if value == nil {
			s.removed[name] = true
			delete(s.extra, name)
			return
		}
		delete(s.removed, name)
		s.extra[name] = value
	}
}

// claims builds the token's claims from the options.
func (iss *OIDCIssuer) claims(opts []TokenOption) (map[string]any, *string) {
	now := iss.now()
	s := &tokenSpec{
		issuer:    iss.URL,
		audience:  []string{DefaultOIDCAudience},
		namespace: "default",
		sa:        "default",
		pod:       "app-0",
		saUID:     randomUID(),
		podUID:    randomUID(),
		exp:       now.Add(time.Hour),
		nbf:       now,
		iat:       now,
		extra:     map[string]any{},
		removed:   map[string]bool{},
	}
	for _, o := range opts {
		o(s)
	}
	if !s.subjectSet {
		s.subject = "system:serviceaccount:" + s.namespace + ":" + s.sa
	}
	k8s := map[string]any{
		"namespace":      s.namespace,
		"serviceaccount": map[string]string{"name": s.sa, "uid": s.saUID},
	}
	if s.pod != "" {
		k8s["pod"] = map[string]string{"name": s.pod, "uid": s.podUID}
	}
	c := map[string]any{
		"iss":           s.issuer,
		"sub":           s.subject,
		"aud":           s.audience,
		"exp":           s.exp.Unix(),
		"nbf":           s.nbf.Unix(),
		"iat":           s.iat.Unix(),
		"jti":           randomUID(),
		"kubernetes.io": k8s,
	}
	for k, v := range s.extra {
		c[k] = v
	}
	for k := range s.removed {
		delete(c, k)
	}
	return c, s.kid
}

// MintToken returns a token signed by the current key: by default a
// Kubernetes service-account token for default/default in pod app-0, for
// DefaultOIDCAudience, valid for an hour from the issuer's clock.
func (iss *OIDCIssuer) MintToken(opts ...TokenOption) string {
	key := iss.current()
	claims, kid := iss.claims(opts)
	return key.signToken(claims, kid, key)
}

// MintTokenWithForeignKey returns a token like MintToken's, with the
// current key's kid, but signed by a fresh key of the same type that the
// issuer does not publish.
func (iss *OIDCIssuer) MintTokenWithForeignKey(t testing.TB, opts ...TokenOption) string {
	t.Helper()
	key := iss.current()
	foreign, err := newOIDCKey(iss.alg)
	if err != nil {
		t.Fatalf("minting a forged token: %v", err)
	}
	claims, kid := iss.claims(opts)
	return key.signToken(claims, kid, foreign)
}

// MintUnsignedToken returns a token like MintToken's with alg "none" and
// an empty signature.
func (iss *OIDCIssuer) MintUnsignedToken(opts ...TokenOption) string {
	key := iss.current()
	claims, kid := iss.claims(opts)
	header := map[string]string{"alg": "none", "typ": "JWT"}
	setKID(header, key.kid, kid)
	return encodeSegment(header) + "." + encodeSegment(claims) + "."
}

// MintHS256WithPublicKey returns a token like MintToken's with alg HS256,
// its HMAC keyed with the current public key in PEM (PKIX) form: the
// algorithm-confusion attack on verifiers that let the token pick the
// algorithm.
func (iss *OIDCIssuer) MintHS256WithPublicKey(opts ...TokenOption) string {
	key := iss.current()
	claims, kid := iss.claims(opts)
	header := map[string]string{"alg": "HS256", "typ": "JWT"}
	setKID(header, key.kid, kid)
	input := encodeSegment(header) + "." + encodeSegment(claims)
	mac := hmac.New(sha256.New, []byte(iss.PublicKeyPEM()))
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// PublicKeyPEM returns the current signing key's public key as PKIX PEM.
func (iss *OIDCIssuer) PublicKeyPEM() string {
	der, err := x509.MarshalPKIXPublicKey(iss.current().priv.Public())
	if err != nil {
		panic("testutil: internal error: " + err.Error())
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TamperToken decodes token's payload, lets mutate change the claims, and
// re-encodes it, keeping the original header and signature: the result
// must not verify.
func TamperToken(t testing.TB, token string, mutate func(claims map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("TamperToken: token of %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("TamperToken: decoding payload: %v", err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("TamperToken: parsing payload: %v", err)
	}
	mutate(claims)
	return parts[0] + "." + encodeSegment(claims) + "." + parts[2]
}

// signToken signs claims as a JWS with k's header (kid overridden by kid
// when non-nil) using signer's private key.
func (k *oidcKey) signToken(claims map[string]any, kid *string, signer *oidcKey) string {
	header := map[string]string{"alg": k.alg, "typ": "JWT"}
	setKID(header, k.kid, kid)
	input := encodeSegment(header) + "." + encodeSegment(claims)
	sig, err := signer.sign([]byte(input))
	if err != nil {
		panic("testutil: internal error: signing: " + err.Error())
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// setKID puts the kid into header: override when given ("" for none),
// def otherwise.
func setKID(header map[string]string, def string, override *string) {
	kid := def
	if override != nil {
		kid = *override
	}
	if kid != "" {
		header["kid"] = kid
	}
}

// sign produces the JWS signature of input for k's algorithm.
func (k *oidcKey) sign(input []byte) ([]byte, error) {
	switch priv := k.priv.(type) {
	case *rsa.PrivateKey:
		sum := sha256.Sum256(input)
		return rsa.SignPKCS1v15(nil, priv, crypto.SHA256, sum[:])
	case *ecdsa.PrivateKey:
		sum := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, priv, sum[:])
		if err != nil {
			return nil, err
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out, nil
	case ed25519.PrivateKey:
		return ed25519.Sign(priv, input), nil
	default:
		return nil, fmt.Errorf("key type %T", k.priv)
	}
}

// newOIDCKey generates a signing key for alg, its kid derived as
// Kubernetes does (base64url SHA-256 of the public key's PKIX DER).
func newOIDCKey(alg string) (*oidcKey, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	k := &oidcKey{alg: alg}
	jwk := map[string]string{"use": "sig", "alg": alg}
	switch alg {
	case OIDCAlgRS256:
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		k.priv = priv
		jwk["kty"] = "RSA"
		jwk["n"] = b64(priv.N.Bytes())
		jwk["e"] = b64(big.NewInt(int64(priv.E)).Bytes())
	case OIDCAlgES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		k.priv = priv
		point, err := priv.PublicKey.Bytes()
		if err != nil {
			return nil, err
		}
		jwk["kty"] = "EC"
		jwk["crv"] = "P-256"
		jwk["x"] = b64(point[1:33])
		jwk["y"] = b64(point[33:65])
	case OIDCAlgEdDSA:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		k.priv = priv
		jwk["kty"] = "OKP"
		jwk["crv"] = "Ed25519"
		jwk["x"] = b64(pub)
	default:
		return nil, fmt.Errorf("unknown signing algorithm %q", alg)
	}
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	k.kid = b64(sum[:])
	jwk["kid"] = k.kid
	k.jwk = jwk
	return k, nil
}

// oidcCertificate makes the https server's certificate for 127.0.0.1, ::1
// and localhost: self-signed, or issued through an intermediate CA by a
// root CA. It returns the TLS certificate (with the chain to send), the
// parsed chain, and the PEM of the root.
func oidcCertificate(intermediate bool) (tls.Certificate, []*x509.Certificate, string, error) {
	// Wide validity so that tests with a fake clock far from now still
	// accept the certificate.
	notBefore := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter := time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC)
	newKey := func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
	serial := func() *big.Int {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
		if err != nil {
			panic("testutil: internal error: " + err.Error())
		}
		return n
	}
	ca := func(name string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber:          serial(),
			Subject:               pkix.Name{CommonName: name, Organization: []string{"sigil tests"}},
			NotBefore:             notBefore,
			NotAfter:              notAfter,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
	}
	server := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "127.0.0.1", Organization: []string{"sigil tests"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	serverKey, err := newKey()
	if err != nil {
		return tls.Certificate{}, nil, "", err
	}
	if !intermediate {
		// One self-signed certificate that is its own CA.
		server.KeyUsage |= x509.KeyUsageCertSign
		server.BasicConstraintsValid, server.IsCA = true, true
		der, err := x509.CreateCertificate(rand.Reader, server, server, serverKey.Public(), serverKey)
		if err != nil {
			return tls.Certificate{}, nil, "", err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return tls.Certificate{}, nil, "", err
		}
		tc := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: serverKey, Leaf: cert}
		return tc, []*x509.Certificate{cert}, toPEM(der), nil
	}
	rootKey, err := newKey()
	if err != nil {
		return tls.Certificate{}, nil, "", err
	}
	interKey, err := newKey()
	if err != nil {
		return tls.Certificate{}, nil, "", err
	}
	rootTmpl, interTmpl := ca("sigil test root CA"), ca("sigil test intermediate CA")
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return tls.Certificate{}, nil, "", err
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return tls.Certificate{}, nil, "", err
	}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, interKey.Public(), rootKey)
	if err != nil {
		return tls.Certificate{}, nil, "", err
	}
	inter, err := x509.ParseCertificate(interDER)
	if err != nil {
		return tls.Certificate{}, nil, "", err
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, server, inter, serverKey.Public(), interKey)
	if err != nil {
		return tls.Certificate{}, nil, "", err
	}
	leaf, err := x509.ParseCertificate(serverDER)
	if err != nil {
		return tls.Certificate{}, nil, "", err
	}
	tc := tls.Certificate{Certificate: [][]byte{serverDER, interDER}, PrivateKey: serverKey, Leaf: leaf}
	return tc, []*x509.Certificate{leaf, inter}, toPEM(rootDER), nil
}

func toPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// encodeSegment is base64url(JSON(v)), one JWS segment.
func encodeSegment(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("testutil: internal error: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomUID returns a random UUID-shaped string, as Kubernetes UIDs are.
func randomUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("testutil: internal error: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
