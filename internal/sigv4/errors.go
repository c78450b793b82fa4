package sigv4

import "errors"

// Sentinel errors, one per way a request can fail authentication. Every
// failure [Verifier.Verify] reports is an [*Error] whose Kind is one of these,
// so callers branch with errors.Is and map each to a wire code at the
// protocol edge (the table is in the package comment).
//
// Parsing the Authorization header or the presigned query parameters:
var (
	// ErrMissingAuth means the request carries neither an Authorization
	// header nor presigned query parameters.
	ErrMissingAuth = errors.New("sigv4: missing authentication")
	// ErrIncompleteSignature means the Authorization header or the presigned
	// query parameters are malformed: an unknown algorithm, a missing or
	// duplicated component, a Credential without five parts, a non-hex
	// signature, an unparseable date, or an out-of-range X-Amz-Expires.
	ErrIncompleteSignature = errors.New("sigv4: incomplete signature")
)

// Checking the credential scope and the time:
var (
	// ErrScope means the credential scope names another region, a service
	// this server does not serve, a date other than the request's, or a
	// terminator other than aws4_request.
	ErrScope = errors.New("sigv4: credential scope mismatch")
	// ErrSkewed means the request's date is more than the allowed skew away
	// from the server's clock.
	ErrSkewed = errors.New("sigv4: request time too skewed")
	// ErrExpired means a presigned request is past its X-Amz-Expires.
	ErrExpired = errors.New("sigv4: presigned request expired")
)

// Checking the signature itself:
var (
	// ErrUnknownAccessKey means the access key id is not known. A
	// [Credentials] implementation returns an error wrapping it.
	ErrUnknownAccessKey = errors.New("sigv4: unknown access key")
	// ErrSignatureMismatch means the signature does not match the request,
	// or the request's own integrity checks failed (a body that does not
	// match X-Amz-Content-Sha256, an UNSIGNED-PAYLOAD the server refuses, a
	// header that must be signed but is not, a signed header that is absent).
	ErrSignatureMismatch = errors.New("sigv4: signature does not match")
)

// Error is the error [Verifier.Verify] returns for every authentication
// failure. It keeps what the client may see apart from what only the server
// log may see.
type Error struct {
	// Kind is one of the package's sentinel errors; errors.Is(err, Kind)
	// holds.
	Kind error
	// Message is safe to send to the client, worded as AWS words it. It
	// holds nothing secret: no key, no expected signature, no canonical
	// request. Client-supplied fragments in it are truncated and restricted
	// to printable ASCII.
	Message string
	// Debug is for the server log at debug level only: which check failed
	// and, for a signature mismatch, the canonical request and string to
	// sign the server computed, with any security token replaced by
	// REDACTED. It never holds a secret key, a derived key or the expected
	// signature.
	Debug string
}

// Error returns the kind and the client-safe message; it never includes
// Debug.
func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Message }

// Unwrap returns Kind, so errors.Is matches the sentinels.
func (e *Error) Unwrap() error { return e.Kind }

func newError(kind error, message, debug string) *Error {
	return &Error{Kind: kind, Message: message, Debug: debug}
}

// Client-facing messages, worded as AWS services word them.
const (
	msgMissingAuth   = "Request is missing Authentication Token"
	msgMismatch      = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgUnknownKey    = "The security token included in the request is invalid."
	msgExpired       = "Request has expired."
	msgNoDate        = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
	msgTwoMechanisms = "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified."
)

// quoteClient prepares a client-supplied fragment for a client-facing
// message: at most 64 bytes, printable ASCII only, in single quotes.
func quoteClient(s string) string {
	const max = 64
	trunc := false
	if len(s) > max {
		s, trunc = s[:max], true
	}
	b := make([]byte, 0, len(s)+5)
	b = append(b, '\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '\'' {
			c = '?'
		}
		b = append(b, c)
	}
	if trunc {
		b = append(b, "..."...)
	}
	return string(append(b, '\''))
}
