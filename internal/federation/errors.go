package federation

import (
	"errors"
	"log/slog"
)

// Sentinel errors. Every failure [Verifier.Verify] and [IssuerOf] report is
// an [*Error] whose Kind is one of these, so callers branch with errors.Is
// and map each to an STS error code at the protocol edge:
//
//	ErrInvalidToken        -> InvalidIdentityToken (400)
//	ErrExpiredToken        -> ExpiredTokenException (400)
//	ErrUnknownProvider     -> InvalidIdentityToken (400)
//	ErrProviderUnreachable -> IDPCommunicationError (400)
var (
	// ErrInvalidToken means the token is not one sigil accepts: malformed,
	// too large, signed with a refused algorithm or by a key the provider
	// does not publish, a signature that does not verify, or claims that do
	// not fit (issuer, audience, subject, not-before, issued-at, session
	// tags, Kubernetes claims).
	ErrInvalidToken = errors.New("federation: invalid web identity token")
	// ErrExpiredToken means the token is authentic but its exp claim has
	// passed.
	ErrExpiredToken = errors.New("federation: web identity token expired")
	// ErrUnknownProvider means no OpenID Connect provider is registered for
	// the token's issuer. Verify returns it for a nil provider; the caller
	// returns it when the lookup by [IssuerOf] finds nothing.
	ErrUnknownProvider = errors.New("federation: unknown identity provider")
	// ErrProviderUnreachable means the provider's signing keys could not be
	// obtained: discovery or JWKS fetch failed, the issuer's TLS certificate
	// is not trusted, the documents are malformed, or the provider's own
	// configuration is unusable (then the error also matches
	// [ErrInvalidProvider]). The underlying cause is wrapped for the server
	// log.
	ErrProviderUnreachable = errors.New("federation: identity provider unreachable")
)

// ErrInvalidProvider means a [Provider] configuration is unusable: a URL
// that is not https (or http where allowed), too many or malformed
// thumbprints or client IDs, a CA bundle without certificates, a static JWKS
// without a usable key. [Provider.Validate] returns errors wrapping it;
// Verify reports it wrapped in an ErrProviderUnreachable [*Error].
var ErrInvalidProvider = errors.New("federation: invalid identity provider configuration")

// Error is the error Verify and IssuerOf return for every failure. It keeps
// what the client may see apart from what only the server log may see.
type Error struct {
	// Kind is one of the package's sentinel errors; errors.Is(err, Kind)
	// holds.
	Kind error
	// Message is safe to send to the client: deliberately vague, worded as
	// STS words it, and the same for every failure of one Kind, so that a
	// caller probing with forged tokens learns nothing about which check
	// failed.
	Message string
	// Detail says precisely which check failed, for the server log only. It
	// never contains the token, a signature or key material; it may contain
	// claim values such as the issuer, audience or subject.
	Detail string
	// Err is the underlying cause, if any (a network or TLS error, a JSON
	// error); errors.Is and errors.As see it. Like Detail, it is for the
	// server log.
	Err error
}

// Error returns the kind and the client-safe message; it never includes
// Detail or Err.
func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Message }

// Unwrap returns Kind and, when set, Err, so errors.Is matches the sentinel
// and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// LogValue gives log/slog everything the server log should hold: the kind,
// the detail and the cause.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("kind", e.Kind.Error()),
		slog.String("detail", e.Detail),
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// Client-facing messages, one per kind.
const (
	msgInvalid         = "The web identity token is invalid."
	msgExpired         = "Token expired: the web identity token is past its expiration time."
	msgUnknownProvider = "No OpenIDConnect provider found for the token's issuer."
	msgUnreachable     = "The identity provider that was asked to verify the web identity token could not be reached or did not provide usable signing keys."
)

// invalid returns an ErrInvalidToken error with detail for the log.
func invalid(detail string, cause error) *Error {
	return &Error{Kind: ErrInvalidToken, Message: msgInvalid, Detail: detail, Err: cause}
}

// expired returns an ErrExpiredToken error with detail for the log.
func expired(detail string) *Error {
	return &Error{Kind: ErrExpiredToken, Message: msgExpired, Detail: detail}
}

// unreachable returns an ErrProviderUnreachable error wrapping cause.
func unreachable(detail string, cause error) *Error {
	return &Error{Kind: ErrProviderUnreachable, Message: msgUnreachable, Detail: detail, Err: cause}
}
