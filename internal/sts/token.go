package sts

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/chacha20poly1305"
)

// The session token
//
// A session token is the base64url encoding (no padding) of
//
//	header      3 bytes: format (1), key id (uint16, big endian)
//	nonce       24 random bytes
//	ciphertext  XChaCha20-Poly1305 of the claim set, with a 16-byte tag
//
// sealed with additional data "sigil sts token\x00" || header || the
// session's access key id, so a token opens only with the key that sealed
// it, only for its own access key id, and only if not one bit of it changed.
// The claim set (format 1) is a sequence of fields in a fixed order:
//
//	u8      claim format (1)
//	u16     key id, equal to the header's
//	[16]    session id
//	uvarint issued, Unix nanoseconds
//	uvarint expires, Unix seconds
//	string  role ARN (with path), role id (AROA...), session name,
//	        source identity, inline session policy
//	list    managed session policy ARNs
//	pairs   session tags (sorted by key), then
//	list    transitive tag keys (sorted)
//	pairs   the role's tags when the session was issued
//	string  federated provider (oidc-provider ARN; "" for AssumeRole)
//	pairs   web-identity claims for audit (condition key -> value)
//	string  sealed-image digest ("" until images issue sessions)
//
// where a string is a uvarint length and that many bytes of UTF-8, a list
// a uvarint count and that many strings, and pairs a uvarint count and that
// many key/value strings. Decoding is strict and canonical: every length
// is bounded, varints are minimal (a claim set has exactly one encoding)
// and nothing may follow the last field. Only the service ever seals a token,
// so the claim decoder sees attacker-controlled bytes only if the AEAD has
// been broken; it is strict all the same, and fuzzed.

// Limits of the token format.
const (
	tokenFormat      = 1
	claimFormat      = 1
	tokenHeaderSize  = 3
	tokenOverhead    = tokenHeaderSize + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
	maxTokenLength   = 64 << 10 // encoded characters
	maxClaimString   = 16 << 10
	maxClaimListSize = 64
	sessionIDSize    = 16
)

var tokenEncoding = base64.RawURLEncoding.Strict()

// tag is one key/value pair.
type tag struct{ key, value string }

// claims is the content of a session token.
type claims struct {
	keyID          uint16
	sessionID      [sessionIDSize]byte
	issued         time.Time // nanosecond precision
	expires        time.Time // second precision
	roleARN        string
	roleID         string
	sessionName    string
	sourceIdentity string
	policy         string
	policyARNs     []string
	tags           []tag
	transitive     []string
	roleTags       []tag
	provider       string
	fedClaims      []tag
	imageDigest    string
}

// errMalformedClaims is the decoder's only error: the details of a
// malformed claim set are nobody's business.
var errMalformedClaims = errors.New("malformed claim set")

// appendClaims encodes c in claim format 1.
func appendClaims(b []byte, c *claims) []byte {
	b = append(b, claimFormat)
	b = binary.BigEndian.AppendUint16(b, c.keyID)
	b = append(b, c.sessionID[:]...)
	b = binary.AppendUvarint(b, uint64(c.issued.UnixNano()))
	b = binary.AppendUvarint(b, uint64(c.expires.Unix()))
	for _, s := range [...]string{c.roleARN, c.roleID, c.sessionName, c.sourceIdentity, c.policy} {
		b = appendString(b, s)
	}
	b = appendList(b, c.policyARNs)
	b = appendPairs(b, c.tags)
	b = appendList(b, c.transitive)
	b = appendPairs(b, c.roleTags)
	b = appendString(b, c.provider)
	b = appendPairs(b, c.fedClaims)
	return appendString(b, c.imageDigest)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendList(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

func appendPairs(b []byte, ps []tag) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendString(b, p.key)
		b = appendString(b, p.value)
	}
	return b
}

// claimReader decodes a claim set; the first failure sticks.
type claimReader struct {
	b   []byte
	bad bool
}

func (r *claimReader) byte() byte {
	if r.bad || len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *claimReader) fixed(dst []byte) {
	if r.bad || len(r.b) < len(dst) {
		r.bad = true
		return
	}
	copy(dst, r.b)
	r.b = r.b[len(dst):]
}

func (r *claimReader) uvarint(limit uint64) uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > limit {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *claimReader) string() string {
	n := r.uvarint(maxClaimString)
	if r.bad || uint64(len(r.b)) < n {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	if !utf8.ValidString(s) {
		r.bad = true
		return ""
	}
	return s
}

func (r *claimReader) list() []string {
	n := r.uvarint(maxClaimListSize)
	if r.bad || n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := uint64(0); i < n && !r.bad; i++ {
		out = append(out, r.string())
	}
	return out
}

func (r *claimReader) pairs() []tag {
	n := r.uvarint(maxClaimListSize)
	if r.bad || n == 0 {
		return nil
	}
	out := make([]tag, 0, n)
	for i := uint64(0); i < n && !r.bad; i++ {
		k := r.string()
		out = append(out, tag{key: k, value: r.string()})
	}
	return out
}

// decodeClaims parses a claim set strictly.
func decodeClaims(b []byte) (*claims, error) {
	r := &claimReader{b: b}
	if r.byte() != claimFormat {
		return nil, errMalformedClaims
	}
	c := &claims{}
	var kid [2]byte
	r.fixed(kid[:])
	c.keyID = binary.BigEndian.Uint16(kid[:])
	r.fixed(c.sessionID[:])
	issued := r.uvarint(1<<63 - 1)
	expires := r.uvarint(1<<40 - 1)
	c.issued, c.expires = time.Unix(0, int64(issued)).UTC(), time.Unix(int64(expires), 0).UTC()
	c.roleARN, c.roleID, c.sessionName = r.string(), r.string(), r.string()
	c.sourceIdentity, c.policy = r.string(), r.string()
	c.policyARNs = r.list()
	c.tags = r.pairs()
	c.transitive = r.list()
	c.roleTags = r.pairs()
	c.provider = r.string()
	c.fedClaims = r.pairs()
	c.imageDigest = r.string()
	if r.bad || len(r.b) != 0 || c.roleARN == "" || c.roleID == "" || c.sessionName == "" {
		return nil, errMalformedClaims
	}
	// Exactly one encoding per claim set: no overlong varints.
	if !bytes.Equal(appendClaims(make([]byte, 0, len(b)), c), b) {
		return nil, errMalformedClaims
	}
	return c, nil
}

// additionalData is what a token is bound to besides its key.
func additionalData(header []byte, accessKeyID string) []byte {
	const label = "sigil sts token\x00"
	ad := make([]byte, 0, len(label)+len(header)+len(accessKeyID))
	ad = append(ad, label...)
	ad = append(ad, header...)
	return append(ad, accessKeyID...)
}

// sealToken seals c under k for accessKeyID with a fresh random nonce.
func sealToken(k *sessionKey, accessKeyID string, c *claims, nonce []byte) (string, error) {
	if len(nonce) != chacha20poly1305.NonceSizeX {
		return "", errors.New("sts: internal error: wrong nonce size")
	}
	c.keyID = k.id
	plain := appendClaims(make([]byte, 0, 512), c)
	header := []byte{tokenFormat, byte(k.id >> 8), byte(k.id)}
	out := make([]byte, 0, len(header)+len(nonce)+len(plain)+chacha20poly1305.Overhead)
	out = append(out, header...)
	out = append(out, nonce...)
	out = k.token.Seal(out, nonce, plain, additionalData(header, accessKeyID))
	tok := tokenEncoding.EncodeToString(out)
	if len(tok) > maxTokenLength {
		return "", fmt.Errorf("sts: internal error: session token of %d characters", len(tok))
	}
	return tok, nil
}

// openToken verifies token for accessKeyID against the keyring and returns
// its claims. Every failure wraps ErrInvalidSessionToken with a detail for
// the server log.
func openToken(ring *keyring, accessKeyID, token string) (*claims, error) {
	keyID, ok := accessKeyKeyID(accessKeyID)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: not a session access key id", ErrInvalidSessionToken)
	case token == "":
		return nil, fmt.Errorf("%w: session access key used without its session token", ErrInvalidSessionToken)
	case len(token) > maxTokenLength:
		return nil, fmt.Errorf("%w: session token of %d characters", ErrInvalidSessionToken, len(token))
	case strings.ContainsAny(token, "\r\n"):
		// The base64 decoder skips line breaks; a token must have exactly
		// one spelling.
		return nil, fmt.Errorf("%w: session token contains a line break", ErrInvalidSessionToken)
	}
	raw, err := tokenEncoding.DecodeString(token)
	if err != nil {
		return nil, fmt.Errorf("%w: session token is not base64url", ErrInvalidSessionToken)
	}
	if len(raw) < tokenOverhead || raw[0] != tokenFormat {
		return nil, fmt.Errorf("%w: session token is truncated or of an unknown format", ErrInvalidSessionToken)
	}
	tokKey := binary.BigEndian.Uint16(raw[1:3])
	if tokKey != keyID {
		return nil, fmt.Errorf("%w: session token and access key id name different keys", ErrInvalidSessionToken)
	}
	k := ring.byID[tokKey]
	if k == nil {
		return nil, fmt.Errorf("%w: session token sealed by unknown key %d", ErrInvalidSessionToken, tokKey)
	}
	header, nonce, ct := raw[:tokenHeaderSize], raw[tokenHeaderSize:tokenHeaderSize+chacha20poly1305.NonceSizeX], raw[tokenHeaderSize+chacha20poly1305.NonceSizeX:]
	plain, err := k.token.Open(ct[:0], nonce, ct, additionalData(header, accessKeyID))
	if err != nil {
		return nil, fmt.Errorf("%w: session token does not authenticate for access key %s", ErrInvalidSessionToken, accessKeyID)
	}
	c, err := decodeClaims(plain)
	if err != nil || c.keyID != tokKey {
		return nil, fmt.Errorf("%w: authentic session token with a malformed claim set", ErrInvalidSessionToken)
	}
	return c, nil
}
