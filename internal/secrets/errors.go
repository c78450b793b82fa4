package secrets

import (
	"errors"
	"fmt"
	"net/http"

	"sigil.dev/sigil/internal/awsproto"
)

// Errors returned by this package outside the wire protocol. Callers branch
// with errors.Is.
var (
	// ErrInvalidConfig means New was given an unusable Config.
	ErrInvalidConfig = errors.New("secrets: invalid config")
	// ErrCorruptRecord means a stored record could not be decoded or has an
	// unknown format version. It is an internal failure, never shown to
	// clients.
	ErrCorruptRecord = errors.New("secrets: corrupt record")

	// Errors of the rotation API (DueRotations, ClaimRotation and the
	// rest), which the rotation runner branches on.

	// ErrRotationClaimed means a rotation step must not run: another
	// runner holds the rotation, or it is no longer the pending rotation
	// (finished, cancelled, rescheduled, or the secret deleted or dynamic).
	ErrRotationClaimed = errors.New("secrets: rotation claimed or no longer due")
	// ErrNotFound means the secret, or the version a rotation step asked
	// for, does not exist.
	ErrNotFound = errors.New("secrets: secret or version not found")
	// ErrUnknownRotator is what Config.Rotators wraps when no rotator
	// answers to a RotationLambdaARN.
	ErrUnknownRotator = errors.New("secrets: unknown rotator")
)

// AWS exception names used by this package. The helpers below build the
// client-visible errors; every one is an HTTP 400 except where noted, as the
// Secrets Manager API returns them.
const (
	codeUnknownOperation    = "UnknownOperationException"
	codeInvalidParameter    = "InvalidParameterException"
	codeInvalidRequest      = "InvalidRequestException"
	codeResourceNotFound    = "ResourceNotFoundException"
	codeResourceExists      = "ResourceExistsException"
	codeLimitExceeded       = "LimitExceededException"
	codeMalformedPolicy     = "MalformedPolicyDocumentException"
	codePublicPolicy        = "PublicPolicyException"
	codeInvalidNextToken    = "InvalidNextTokenException"
	codeAccessDenied        = "AccessDeniedException"
	codeInternalServiceFail = "InternalServiceError"
)

// msgMarkedForDeletion is AWS's message for an operation refused because the
// secret is scheduled for deletion.
const msgMarkedForDeletion = "You can't perform this operation on the secret because it was marked for deletion."

func errUnknownOperation(op string) *awsproto.Error {
	return awsproto.Errorf(codeUnknownOperation, http.StatusBadRequest, "the operation %q is not supported by Secrets Manager", op)
}

func errInvalidParameter(format string, args ...any) *awsproto.Error {
	return awsproto.InvalidParameter(format, args...)
}

func errInvalidRequest(format string, args ...any) *awsproto.Error {
	return awsproto.InvalidRequest(format, args...)
}

func errSecretNotFound() *awsproto.Error {
	return awsproto.ResourceNotFound("Secrets Manager can't find the specified secret.")
}

func errMarkedForDeletion() *awsproto.Error {
	return awsproto.InvalidRequest(msgMarkedForDeletion)
}

func errResourceExists(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(codeResourceExists, http.StatusBadRequest, format, args...)
}

func errLimitExceeded(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(codeLimitExceeded, http.StatusBadRequest, format, args...)
}

func errMalformedPolicy(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(codeMalformedPolicy, http.StatusBadRequest, format, args...)
}

func errPublicPolicy() *awsproto.Error {
	return awsproto.Errorf(codePublicPolicy, http.StatusBadRequest,
		"The BlockPublicPolicy parameter is set and the resource policy grants broad access: a statement allows Principal \"*\" without conditions.")
}

func errInvalidNextToken() *awsproto.Error {
	return awsproto.Errorf(codeInvalidNextToken, http.StatusBadRequest, "The NextToken value is invalid or does not belong to this request.")
}

func errVersionNotFound(versionID string) *awsproto.Error {
	return awsproto.ResourceNotFound("Secrets Manager can't find the specified secret value for VersionId: %s", versionID)
}

func errStageNotFound(stage string) *awsproto.Error {
	return awsproto.ResourceNotFound("Secrets Manager can't find the specified secret value for staging label: %s", stage)
}

// errCorrupt wraps ErrCorruptRecord with the key that failed to decode. Keys
// hold names and ids, never values; the decoder's message is left out
// because a JSON syntax error quotes bytes of the input, and only its type is
// kept.
func errCorrupt(key string, err error) error {
	if err == nil {
		return fmt.Errorf("%w: %q", ErrCorruptRecord, key)
	}
	return fmt.Errorf("%w: %q (%T)", ErrCorruptRecord, key, err)
}
