// Package awsproto speaks the AWS wire protocols sigil serves: JSON 1.1
// (Secrets Manager) and the query protocol with XML responses (IAM, STS). It knows
// wire formats and error shapes and nothing about the operations behind them.
//
// Operations return an [*Error] for every client-visible failure. Any other
// error becomes an InternalServiceError whose message says nothing about the
// cause; the cause goes to the server log, never to the client.
package awsproto

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an AWS-shaped error: an exception name (the "__type" of JSON 1.1,
// the <Code> of query/XML), a message, and the HTTP status the SDKs expect.
type Error struct {
	Code    string
	Message string
	Status  int
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given exception name, HTTP status and
// formatted message.
func Errorf(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// Client errors shared by every protocol.
func InvalidParameter(format string, args ...any) *Error {
	return Errorf("InvalidParameterException", http.StatusBadRequest, format, args...)
}

// InvalidRequest is Secrets Manager's error for a request that is valid in
// shape but not allowed in the resource's current state.
func InvalidRequest(format string, args ...any) *Error {
	return Errorf("InvalidRequestException", http.StatusBadRequest, format, args...)
}

// ResourceNotFound is the error for a missing resource.
func ResourceNotFound(format string, args ...any) *Error {
	return Errorf("ResourceNotFoundException", http.StatusBadRequest, format, args...)
}

// AccessDenied is the JSON-protocol authorization failure.
func AccessDenied(format string, args ...any) *Error {
	return Errorf("AccessDeniedException", http.StatusBadRequest, format, args...)
}

// Internal returns the generic server-side failure. Its message never
// describes the cause.
func Internal() *Error {
	return &Error{Code: "InternalServiceError", Status: http.StatusInternalServerError,
		Message: "an internal error occurred; see the server log for this request id"}
}

// Unavailable is the retryable server-side failure used when a dependency
// (store, audit log) cannot serve, or the server is sealed.
func Unavailable(format string, args ...any) *Error {
	return Errorf("ServiceUnavailable", http.StatusServiceUnavailable, format, args...)
}

// As returns err as an *Error, mapping anything that is not one to Internal.
// The second result is false when the mapping happened, so the caller knows
// to log the original cause.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return Internal(), false
}
