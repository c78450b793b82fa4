package rotation

import "errors"

// Errors returned by this package. Callers branch with errors.Is.
var (
	// ErrInvalidConfig means New or NewRegistry was given an unusable
	// configuration.
	ErrInvalidConfig = errors.New("rotation: invalid config")
	// ErrNotLeader means another runner holds the runner lock, so the pass
	// did nothing. Pass's error then wraps store.ErrLockHeld too.
	ErrNotLeader = errors.New("rotation: another runner is the leader")

	// ErrInvalidARN means a RotationLambdaARN is not of the form
	// arn:aws:lambda:<region>:<account>:function:<name>, or names another
	// region or account than this server's.
	ErrInvalidARN = errors.New("rotation: invalid rotator ARN")
	// ErrUnknownRotator means no built-in or registered rotator has the
	// function name of a RotationLambdaARN.
	ErrUnknownRotator = errors.New("rotation: unknown rotator")
	// ErrInvalidRotator means a rotator definition given to the Registry
	// is malformed (bad name, unknown type, bad URL, bad options).
	ErrInvalidRotator = errors.New("rotation: invalid rotator definition")
	// ErrCorruptRotator means a stored rotator definition could not be
	// decoded.
	ErrCorruptRotator = errors.New("rotation: corrupt rotator record")

	// ErrInvalidSecretValue means a secret's value is not what its rotator
	// expects: not a JSON object, a database secret without host or
	// username, a binary secret where a string is needed.
	ErrInvalidSecretValue = errors.New("rotation: secret value unusable by the rotator")
	// ErrUnsafeValue means a username or password cannot be written safely
	// into a statement (a NUL byte, invalid UTF-8, a backslash for MySQL).
	ErrUnsafeValue = errors.New("rotation: value cannot be quoted safely")
	// ErrLogin means neither AWSPENDING, AWSCURRENT nor AWSPREVIOUS could
	// log in to the database, or testSecret could not log in with
	// AWSPENDING.
	ErrLogin = errors.New("rotation: database login failed")
	// ErrWebhook means a webhook rotator's endpoint failed a step: a
	// transport error or a status other than 2xx.
	ErrWebhook = errors.New("rotation: webhook step failed")
	// ErrUnknownStep means a rotator was asked for a step it does not know.
	ErrUnknownStep = errors.New("rotation: unknown step")

	// ErrSignatureMalformed means an X-Sigil-Signature header could not be
	// parsed.
	ErrSignatureMalformed = errors.New("rotation: malformed signature header")
	// ErrSignatureExpired means a signature's timestamp is further from
	// the receiver's clock than the allowed skew.
	ErrSignatureExpired = errors.New("rotation: signature timestamp outside the allowed window")
	// ErrSignatureMismatch means no signature in the header matches the
	// body and timestamp under the key.
	ErrSignatureMismatch = errors.New("rotation: signature does not match")
)
