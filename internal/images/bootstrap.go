package images

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// BootstrapPath is where the sealed layer puts the bootstrap file inside
// the image.
const BootstrapPath = "/var/run/sigil/bootstrap.json"

// Image config labels and environment set by sealing.
const (
	// LabelBootstrap names the bootstrap file's path.
	LabelBootstrap = "dev.sigil.bootstrap"
	// LabelKeyID holds the image key id; its presence marks an image as
	// already sealed.
	LabelKeyID = "dev.sigil.key-id"
	// EnvBootstrap is the environment variable naming the bootstrap file.
	EnvBootstrap = "SIGIL_BOOTSTRAP"
	// ImageIssuer is the iss of every sealed-image assertion and the
	// Federated principal of trust policies that accept them.
	ImageIssuer = "sigil:image"
)

// AssertionLifetime is how long an assertion signed by
// [Bootstrap.Assertion] is valid; the server accepts at most 300 s.
const AssertionLifetime = 5 * time.Minute

// maxBootstrapSize bounds what ParseBootstrap accepts.
const maxBootstrapSize = 16 << 10

// Bootstrap is the content of the bootstrap file sealed into an image.
// PrivateKey is the 32-byte Ed25519 seed; String, LogValue and GoString
// print REDACTED in its place, and MarshalJSON is the only way to see it
// (used exactly once, to write the sealed layer).
type Bootstrap struct {
	// Version is 1.
	Version int
	// Endpoint is the sigil server URL the workload exchanges against.
	Endpoint string
	// Region is the region to address STS in.
	Region string
	// RoleARN is the role the workload assumes.
	RoleARN string
	// KeyID is the image key id, "img-" plus 26 base32 characters.
	KeyID string
	// PrivateKey is the Ed25519 seed (ed25519.SeedSize bytes).
	PrivateKey []byte
	// Issuer is ImageIssuer.
	Issuer string
	// Audience is the aud the server expects in assertions.
	Audience string
	// Repository is the image repository the key is bound to.
	Repository string
}

// bootstrapJSON is the wire form of Bootstrap.
type bootstrapJSON struct {
	Version    int    `json:"version"`
	Endpoint   string `json:"endpoint"`
	Region     string `json:"region"`
	RoleARN    string `json:"roleArn"`
	KeyID      string `json:"keyId"`
	PrivateKey string `json:"privateKey"`
	Issuer     string `json:"issuer"`
	Audience   string `json:"audience"`
	Repository string `json:"repository"`
}

// String implements fmt.Stringer without the private key.
func (b *Bootstrap) String() string {
	return fmt.Sprintf("bootstrap{keyId=%s role=%s endpoint=%s privateKey=REDACTED}", b.KeyID, b.RoleARN, b.Endpoint)
}

// GoString implements fmt.GoStringer without the private key.
func (b *Bootstrap) GoString() string { return b.String() }

// LogValue implements slog.LogValuer without the private key.
func (b *Bootstrap) LogValue() slog.Value {
	return slog.GroupValue(slog.String("keyId", b.KeyID), slog.String("roleArn", b.RoleARN),
		slog.String("endpoint", b.Endpoint), slog.String("privateKey", "REDACTED"))
}

// MarshalJSON encodes the bootstrap file, private key included. It is the
// file format; never pass a Bootstrap to a logger or error as JSON.
func (b *Bootstrap) MarshalJSON() ([]byte, error) {
	return json.Marshal(bootstrapJSON{
		Version: b.Version, Endpoint: b.Endpoint, Region: b.Region, RoleARN: b.RoleARN,
		KeyID: b.KeyID, PrivateKey: base64.StdEncoding.EncodeToString(b.PrivateKey),
		Issuer: b.Issuer, Audience: b.Audience, Repository: b.Repository,
	})
}

// ParseBootstrap decodes and validates a bootstrap file. Unknown fields,
// trailing data, a version other than 1, a seed that is not 32 bytes, a
// malformed key id or endpoint, or a missing field are ErrBadBootstrap.
// Errors never contain the private key.
func ParseBootstrap(data []byte) (*Bootstrap, error) {
	if len(data) > maxBootstrapSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadBootstrap, maxBootstrapSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w bootstrapJSON
	if err := dec.Decode(&w); err != nil {
		// json errors quote at most a type or field name, never values,
		// except syntax errors which give an offset only.
		return nil, fmt.Errorf("%w: %s", ErrBadBootstrap, jsonErrorKind(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrBadBootstrap)
	}
	if w.Version != 1 {
		return nil, fmt.Errorf("%w: version %d, want 1", ErrBadBootstrap, w.Version)
	}
	seed, err := base64.StdEncoding.Strict().DecodeString(w.PrivateKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: privateKey is not the base64 of a %d-byte Ed25519 seed", ErrBadBootstrap, ed25519.SeedSize)
	}
	b := &Bootstrap{Version: w.Version, Endpoint: w.Endpoint, Region: w.Region, RoleARN: w.RoleARN,
		KeyID: w.KeyID, PrivateKey: seed, Issuer: w.Issuer, Audience: w.Audience, Repository: w.Repository}
	if err := b.validate(); err != nil {
		return nil, err
	}
	return b, nil
}

// jsonErrorKind describes a decoding error without echoing input bytes.
func jsonErrorKind(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("not JSON (offset %d)", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q has the wrong type", e.Field)
	}
	if err == io.EOF {
		return "empty file"
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f
	}
	return "not a JSON object"
}

// validate checks every field but the key bytes' encoding.
func (b *Bootstrap) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadBootstrap}, a...)...)
	}
	if len(b.PrivateKey) != ed25519.SeedSize {
		return bad("privateKey must be a %d-byte seed", ed25519.SeedSize)
	}
	u, err := url.Parse(b.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("endpoint must be an http(s) URL")
	}
	switch {
	case b.Region == "":
		return bad("region is empty")
	case !strings.HasPrefix(b.RoleARN, "arn:") || !strings.Contains(b.RoleARN, ":role/"):
		return bad("roleArn is not a role ARN")
	case !ValidKeyID(b.KeyID):
		return bad("keyId is not img- followed by 26 base32 characters")
	case b.Issuer != ImageIssuer:
		return bad("issuer must be %q", ImageIssuer)
	case b.Audience == "":
		return bad("audience is empty")
	case b.Repository == "":
		return bad("repository is empty")
	}
	return nil
}

// SealKeyID is the key id of an image public key, [KeyIDOf]: the client
// must know it before registering, because it is sealed into the layer
// whose digest the registration names (see the contract).
func SealKeyID(pub ed25519.PublicKey) string { return KeyIDOf(pub) }

// SealAudience is the STS audience of a sigil server whose account id is
// account: "sigil:image:<account>".
func SealAudience(account string) string { return ImageIssuer + ":" + account }

// AssertionOptions adjust [Bootstrap.Assertion]. The zero value signs with
// no Kubernetes token, the current time and crypto/rand.
type AssertionOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand supplies the jti; nil means crypto/rand.Reader.
	Rand io.Reader
	// K8sToken, when not empty, is the pod's projected service-account
	// token, carried as the "k8s" claim for a second proof.
	K8sToken string
}

// bootstrapClaims are the claims of a sealed-image assertion.
type bootstrapClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
	K8s string `json:"k8s,omitempty"`
}

// Assertion signs a sealed-image assertion: a compact JWS with header
// {"alg":"EdDSA","typ":"JWT","kid":keyId} and claims iss, sub (the key
// id), aud, iat, exp (iat + AssertionLifetime), a random 128-bit hex jti
// and, optionally, k8s. The result is a bearer token for one exchange.
func (b *Bootstrap) Assertion(opts AssertionOptions) (string, error) {
	if err := b.validate(); err != nil {
		return "", err
	}
	now, rnd := time.Now, io.Reader(rand.Reader)
	if opts.Now != nil {
		now = opts.Now
	}
	if opts.Rand != nil {
		rnd = opts.Rand
	}
	var jti [16]byte
	if _, err := io.ReadFull(rnd, jti[:]); err != nil {
		return "", fmt.Errorf("generating jti: %w", err)
	}
	iat := now().Unix()
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		Kid string `json:"kid"`
	}{"EdDSA", "JWT", b.KeyID})
	if err != nil {
		return "", fmt.Errorf("encoding assertion header: %w", err)
	}
	claims, err := json.Marshal(bootstrapClaims{
		Iss: ImageIssuer, Sub: b.KeyID, Aud: b.Audience, Iat: iat,
		Exp: iat + int64(AssertionLifetime/time.Second), Jti: hex.EncodeToString(jti[:]), K8s: opts.K8sToken,
	})
	if err != nil {
		return "", fmt.Errorf("encoding assertion claims: %w", err)
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sig := ed25519.Sign(ed25519.NewKeyFromSeed(b.PrivateKey), []byte(signing))
	return signing + "." + enc.EncodeToString(sig), nil
}
