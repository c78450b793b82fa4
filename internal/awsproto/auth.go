package awsproto

import (
	"errors"
	"net/http"

	"sigil.dev/sigil/internal/sigv4"
)

// Protocol is an AWS wire protocol; authentication failures are named
// differently in each.
type Protocol int

// Protocols sigil serves.
const (
	// ProtocolJSON is JSON 1.1 (Secrets Manager, and sigil's native API).
	ProtocolJSON Protocol = iota
	// ProtocolQuery is the query protocol with XML responses (STS, IAM).
	ProtocolQuery
)

// AuthError maps an authentication failure to the error AWS returns for it
// in protocol p:
//
//	failure                  JSON 1.1                              query (STS, IAM)
//	no signature             MissingAuthenticationTokenException   MissingAuthenticationToken
//	malformed header         IncompleteSignatureException          IncompleteSignature
//	bad signature, scope     InvalidSignatureException             SignatureDoesNotMatch
//	clock skew               InvalidSignatureException             SignatureDoesNotMatch ("Signature expired")
//	presign expired          InvalidSignatureException             AccessDenied
//	unknown access key       UnrecognizedClientException           InvalidClientTokenId
//
// (S3's RequestTimeTooSkewed belongs to a protocol sigil does not serve.)
// The message is the one sigv4 prepared for clients; it never contains
// secret material. Errors that are not authentication failures become
// Internal.
func AuthError(err error, p Protocol) *Error {
	msg := "The security token included in the request is invalid."
	var se *sigv4.Error
	if errors.As(err, &se) && se.Message != "" {
		msg = se.Message
	}
	// JSON 1.1 services answer client auth failures with 400 (403 only for
	// a missing signature); the query protocol uses 403.
	pick := func(json, query string, jsonStatus int) *Error {
		if p == ProtocolQuery {
			return &Error{Code: query, Message: msg, Status: http.StatusForbidden}
		}
		return &Error{Code: json, Message: msg, Status: jsonStatus}
	}
	switch {
	case errors.Is(err, sigv4.ErrMissingAuth):
		return pick("MissingAuthenticationTokenException", "MissingAuthenticationToken", http.StatusForbidden)
	case errors.Is(err, sigv4.ErrIncompleteSignature):
		e := pick("IncompleteSignatureException", "IncompleteSignature", http.StatusBadRequest)
		if p == ProtocolQuery {
			e.Status = http.StatusBadRequest
		}
		return e
	case errors.Is(err, sigv4.ErrSignatureMismatch), errors.Is(err, sigv4.ErrScope), errors.Is(err, sigv4.ErrSkewed):
		return pick("InvalidSignatureException", "SignatureDoesNotMatch", http.StatusBadRequest)
	case errors.Is(err, sigv4.ErrExpired):
		return pick("InvalidSignatureException", "AccessDenied", http.StatusBadRequest)
	case errors.Is(err, sigv4.ErrUnknownAccessKey):
		msg = "The security token included in the request is invalid."
		return pick("UnrecognizedClientException", "InvalidClientTokenId", http.StatusBadRequest)
	}
	return Internal()
}
