package images

import "errors"

// Errors of the registry's management API (Register, Deregister, Revoke,
// Key). Callers branch with errors.Is; the server maps them to the wire.
// The sentinels live here rather than in errors.go because the package is
// shared with the sealing code, which owns its own error file.
var (
	// ErrInvalidDigest means a digest is not "sha256:" followed by 64
	// lower-case hex digits. Wire: InvalidParameterException.
	ErrInvalidDigest = errors.New("images: invalid image digest")
	// ErrInvalidKey means a public key is not the base64 of 32 bytes, or a
	// key id is malformed. Wire: InvalidParameterException.
	ErrInvalidKey = errors.New("images: invalid image key")
	// ErrInvalidRequest means another field of a request is unusable (an
	// empty or overlong repository, a negative TTL, an unknown role, a
	// revoked digest). Wire: InvalidParameterException.
	ErrInvalidRequest = errors.New("images: invalid request")
	// ErrDigestExists means the digest already has an active key and the
	// request did not ask to reseal. Wire: ResourceExistsException.
	ErrDigestExists = errors.New("images: the image digest already has an active key")
	// ErrNotFound means no key with that id, or no key for that digest,
	// is registered. Wire: ResourceNotFoundException.
	ErrNotFound = errors.New("images: no such image key")
)

// Errors of assertion verification ([ParseAssertion],
// [Registry.VerifyAssertion]). Every one of them is returned wrapped in an
// *AssertionError whose Detail is for the server log; STS sends the client
// InvalidIdentityToken for all but ErrAssertionExpired
// (ExpiredTokenException).
var (
	// ErrMalformedAssertion means the token is not a compact JWS with the
	// header and claims the contract requires, or its alg is not EdDSA.
	ErrMalformedAssertion = errors.New("images: malformed image assertion")
	// ErrBadSignature means the signature does not verify under the
	// registered key named by kid.
	ErrBadSignature = errors.New("images: image assertion signature does not verify")
	// ErrUnknownKey means kid names no registered key.
	ErrUnknownKey = errors.New("images: unknown image key")
	// ErrKeyExpired means the image key's TTL has passed.
	ErrKeyExpired = errors.New("images: image key expired")
	// ErrKeyRevoked means the key was replaced by a reseal, or its digest
	// was revoked.
	ErrKeyRevoked = errors.New("images: image key or digest revoked")
	// ErrWrongAudience means aud is not this server's STS audience.
	ErrWrongAudience = errors.New("images: image assertion for another audience")
	// ErrAssertionLifetime means exp - iat exceeds MaxAssertionLifetime or
	// iat lies in the future beyond the allowed skew.
	ErrAssertionLifetime = errors.New("images: image assertion lifetime invalid")
	// ErrAssertionExpired means exp has passed (beyond the skew).
	ErrAssertionExpired = errors.New("images: image assertion expired")
	// ErrReplayed means the jti was already used.
	ErrReplayed = errors.New("images: image assertion replayed")
)

// AssertionError is a refused assertion: Kind is one of the sentinels
// above, Detail the precise reason for the server log (never a key or the
// token).
type AssertionError struct {
	Kind   error
	Detail string
}

// Error implements error.
func (e *AssertionError) Error() string { return e.Kind.Error() + ": " + e.Detail }

// Unwrap returns Kind, so that errors.Is matches it.
func (e *AssertionError) Unwrap() error { return e.Kind }

func refuse(kind error, detail string) *AssertionError {
	return &AssertionError{Kind: kind, Detail: detail}
}
