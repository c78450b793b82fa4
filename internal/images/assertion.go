package images

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The assertion
//
// A sealed workload proves it runs the image by signing a compact JWS with
// the image's Ed25519 key:
//
//	header  {"alg":"EdDSA","typ":"JWT","kid":"<keyId>"}
//	claims  {"iss":"sigil:image","sub":"<keyId>","aud":"<audience>",
//	         "iat":N,"exp":N,"jti":"<random 128-bit hex>","k8s":"<token>"}
//
// k8s is optional (the pod's projected service-account token, a second
// proof verified by STS). ParseAssertion checks the shape; VerifyAssertion
// the signature, the key, the times and the jti.

// Issuer is the iss of every image assertion and the name of the sealed-
// image identity provider in trust policies ({"Federated": "sigil:image"}).
const Issuer = ImageIssuer

// MaxAssertionLifetime is the longest exp - iat accepted.
const MaxAssertionLifetime = 300 * time.Second

// Skew is the clock difference tolerated on iat and exp.
const Skew = 60 * time.Second

// MaxAssertionSize is the longest assertion parsed, in bytes; it leaves
// room for an embedded Kubernetes token.
const MaxAssertionSize = 16 << 10

// Condition keys of the sealed-image identity in trust policies.
const (
	KeyImageDigest     = "sigil:ImageDigest"
	KeyImageRepository = "sigil:ImageRepository"
	KeyImageKeyID      = "sigil:ImageKeyId"
)

var (
	b64       = base64.RawURLEncoding.Strict()
	jtiFormat = regexp.MustCompile(`^[0-9a-fA-F]{32,64}$`)
)

// Assertion is a parsed, not yet verified, image assertion.
type Assertion struct {
	// KeyID is the header's kid, equal to sub.
	KeyID string
	// Audience is aud.
	Audience string
	// IssuedAt and Expires are iat and exp.
	IssuedAt, Expires time.Time
	// JTI is the assertion's unique id.
	JTI string
	// Kubernetes is the embedded service-account token, if any. It is a
	// bearer credential: never log it.
	Kubernetes string

	signingInput []byte
	signature    []byte
}

type assertionHeader struct {
	Alg  string          `json:"alg"`
	Typ  *string         `json:"typ"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

type assertionClaims struct {
	Iss string      `json:"iss"`
	Sub string      `json:"sub"`
	Iat json.Number `json:"iat"`
	Exp json.Number `json:"exp"`
	Jti string      `json:"jti"`
	K8s *string     `json:"k8s"`
}

// ParseAssertion checks that token has the shape of an image assertion
// and returns it; it verifies nothing cryptographic. Every error is an
// *AssertionError of kind ErrMalformedAssertion.
func ParseAssertion(token string) (*Assertion, error) {
	if len(token) > MaxAssertionSize {
		return nil, refuse(ErrMalformedAssertion, fmt.Sprintf("assertion of %d bytes, at most %d accepted", len(token), MaxAssertionSize))
	}
	h, rest, ok := strings.Cut(token, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(s, ".") {
		return nil, refuse(ErrMalformedAssertion, "not a compact JWS of three parts")
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, refuse(ErrMalformedAssertion, "header is not base64url")
	}
	var hdr assertionHeader
	if err := strictJSON(hb, &hdr); err != nil {
		return nil, refuse(ErrMalformedAssertion, "header: "+err.Error())
	}
	switch {
	case hdr.Alg != "EdDSA":
		return nil, refuse(ErrMalformedAssertion, fmt.Sprintf("alg %q, only EdDSA is accepted", truncate(hdr.Alg)))
	case hdr.Typ != nil && *hdr.Typ != "JWT":
		return nil, refuse(ErrMalformedAssertion, fmt.Sprintf("typ %q, want JWT", truncate(*hdr.Typ)))
	case hdr.Crit != nil:
		return nil, refuse(ErrMalformedAssertion, "crit header parameters are not supported")
	case !ValidKeyID(hdr.Kid):
		return nil, refuse(ErrMalformedAssertion, fmt.Sprintf("kid %q is not an image key id", truncate(hdr.Kid)))
	}
	pb, err := b64.DecodeString(p)
	if err != nil {
		return nil, refuse(ErrMalformedAssertion, "claims are not base64url")
	}
	var raw map[string]json.RawMessage
	if err := strictJSON(pb, &raw); err != nil {
		return nil, refuse(ErrMalformedAssertion, "claims: "+err.Error())
	}
	var c assertionClaims
	if err := strictJSON(pb, &c); err != nil {
		return nil, refuse(ErrMalformedAssertion, "claims: "+err.Error())
	}
	aud, err := audienceOf(raw["aud"])
	if err != nil {
		return nil, refuse(ErrMalformedAssertion, "aud: "+err.Error())
	}
	iat, err := numericDate(c.Iat)
	if err != nil {
		return nil, refuse(ErrMalformedAssertion, "iat: "+err.Error())
	}
	exp, err := numericDate(c.Exp)
	if err != nil {
		return nil, refuse(ErrMalformedAssertion, "exp: "+err.Error())
	}
	switch {
	case c.Iss != Issuer:
		return nil, refuse(ErrMalformedAssertion, fmt.Sprintf("iss %q, want %s", truncate(c.Iss), Issuer))
	case c.Sub != hdr.Kid:
		return nil, refuse(ErrMalformedAssertion, "sub differs from kid")
	case !jtiFormat.MatchString(c.Jti):
		return nil, refuse(ErrMalformedAssertion, "jti is not 32 to 64 hex digits")
	case c.K8s != nil && *c.K8s == "":
		return nil, refuse(ErrMalformedAssertion, "k8s is empty")
	}
	sig, err := b64.DecodeString(s)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, refuse(ErrMalformedAssertion, "signature is not 64 bytes of base64url")
	}
	a := &Assertion{KeyID: hdr.Kid, Audience: aud, IssuedAt: iat, Expires: exp, JTI: c.Jti,
		signingInput: []byte(token[:len(h)+1+len(p)]), signature: sig}
	if c.K8s != nil {
		a.Kubernetes = *c.K8s
	}
	return a, nil
}

// VerifySignature reports whether the assertion's signature verifies
// under pub.
func (a *Assertion) VerifySignature(pub ed25519.PublicKey) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, a.signingInput, a.signature)
}

// strictJSON decodes one JSON object into v, with numbers kept exact, and
// refuses trailing data.
func strictJSON(b []byte, v any) error {
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("not a JSON object")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("not valid JSON")
	}
	if d.More() {
		return fmt.Errorf("data after the JSON object")
	}
	return nil
}

// audienceOf accepts a string or an array of exactly one string.
func audienceOf(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && s != "" {
		return s, nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err == nil && len(l) == 1 && l[0] != "" {
		return l[0], nil
	}
	return "", fmt.Errorf("want one non-empty string")
}

// numericDate parses a JSON integer of seconds since the epoch.
func numericDate(n json.Number) (time.Time, error) {
	if n == "" {
		return time.Time{}, fmt.Errorf("missing")
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || v <= 0 || v > 253402300799 {
		return time.Time{}, fmt.Errorf("not a positive integer date")
	}
	return time.Unix(v, 0), nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
