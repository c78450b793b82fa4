package sts

import (
	"errors"
	"net/http"

	"sigil.dev/sigil/internal/awsproto"
)

// Errors of session-credential verification ([Service.Principal],
// [Service.SecretKey]). Callers branch with errors.Is; [AuthError] maps
// them to the wire. None of them says more than "invalid" or "expired" to
// the client; the server log gets the wrapped detail, which never holds
// key material or the token.
var (
	// ErrInvalidSessionToken means the access key id is not a session key
	// this service issued, the session token is missing, malformed, forged,
	// sealed by an unknown key or bound to another access key, or the
	// session was revoked. Wire: InvalidClientTokenId.
	ErrInvalidSessionToken = errors.New("sts: invalid session credentials")
	// ErrExpiredSessionToken means the session token is authentic but its
	// session has expired. Wire: ExpiredToken.
	ErrExpiredSessionToken = errors.New("sts: session credentials expired")
	// ErrRevokedSession means the session was revoked (by session id or
	// because its role's sessions issued before some time were). It also
	// matches ErrInvalidSessionToken, so that clients see the same
	// InvalidClientTokenId as for a forged token.
	ErrRevokedSession = &revokedError{}
)

// ErrInvalidRevocation means RevokeRoleSessions or RevokeSession was given
// something that is not a role ARN of this account or a session id.
var ErrInvalidRevocation = errors.New("sts: invalid revocation")

// Errors of New.
var (
	// ErrInvalidConfig means New was given an unusable Config.
	ErrInvalidConfig = errors.New("sts: invalid config")
	// ErrCorruptKeyring means the stored session-token keyring could not be
	// decoded. Sessions cannot be issued or verified until it is repaired.
	ErrCorruptKeyring = errors.New("sts: corrupt session-token keyring")
)

// revokedError is ErrRevokedSession: a distinct value for errors.Is that
// also matches ErrInvalidSessionToken.
type revokedError struct{}

func (*revokedError) Error() string { return "sts: session revoked" }

func (*revokedError) Is(target error) bool { return target == ErrInvalidSessionToken }

// AuthError maps a failure of Principal or SecretKey to the error AWS
// sends for it in protocol p (query for STS and IAM, JSON 1.1 for Secrets
// Manager), or returns nil when err is neither a session-credential failure
// nor wraps sigv4's unknown-key sentinel, so the caller maps it itself:
//
//	failure          query                  JSON 1.1
//	invalid/revoked  InvalidClientTokenId   UnrecognizedClientException
//	expired          ExpiredToken           ExpiredTokenException
func AuthError(err error, p awsproto.Protocol) *awsproto.Error {
	switch {
	case errors.Is(err, ErrExpiredSessionToken):
		if p == awsproto.ProtocolQuery {
			return &awsproto.Error{Code: "ExpiredToken", Status: http.StatusForbidden, Message: msgExpiredSession}
		}
		return &awsproto.Error{Code: "ExpiredTokenException", Status: http.StatusBadRequest, Message: msgExpiredSession}
	case errors.Is(err, ErrInvalidSessionToken):
		if p == awsproto.ProtocolQuery {
			return &awsproto.Error{Code: "InvalidClientTokenId", Status: http.StatusForbidden, Message: msgInvalidSession}
		}
		return &awsproto.Error{Code: "UnrecognizedClientException", Status: http.StatusBadRequest, Message: msgInvalidSession}
	}
	return nil
}

// Client-facing messages of session-credential failures, as AWS words them.
const (
	msgInvalidSession = "The security token included in the request is invalid."
	msgExpiredSession = "The security token included in the request is expired"
)

// STS wire errors. Each constructor returns the code AWS's STS sends, with
// its HTTP status, so the SDKs raise the typed exception.

func errValidation(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("ValidationError", http.StatusBadRequest, format, args...)
}

func errInvalidParameter(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("InvalidParameterValue", http.StatusBadRequest, format, args...)
}

func errAccessDenied(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("AccessDenied", http.StatusForbidden, format, args...)
}

func errMalformedPolicy(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("MalformedPolicyDocument", http.StatusBadRequest, format, args...)
}

func errPackedPolicyTooLarge(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("PackedPolicyTooLarge", http.StatusBadRequest, format, args...)
}

func errInvalidIdentityToken(msg string) *awsproto.Error {
	return &awsproto.Error{Code: "InvalidIdentityToken", Status: http.StatusBadRequest, Message: msg}
}

func errExpiredIdentityToken(msg string) *awsproto.Error {
	return &awsproto.Error{Code: "ExpiredTokenException", Status: http.StatusBadRequest, Message: msg}
}

func errIDPCommunication(msg string) *awsproto.Error {
	return &awsproto.Error{Code: "IDPCommunicationError", Status: http.StatusBadRequest, Message: msg}
}

func errIDPRejectedClaim(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("IDPRejectedClaim", http.StatusForbidden, format, args...)
}

func errInternal() *awsproto.Error {
	return awsproto.Errorf("InternalFailure", http.StatusInternalServerError,
		"The request processing has failed because of an unknown error; see the server log for this request id.")
}
