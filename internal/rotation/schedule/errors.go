package schedule

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (with errors.Is) by every error [Parse],
// [ParseExpression] and [ParseDuration] return. The text of such an error is
// a complete sentence that names the offending member and what is allowed,
// written to be shown to a Secrets Manager client as the message of an
// InvalidParameterException.
var ErrInvalid = errors.New("schedule: invalid rotation rules")

// invalidError is the error type behind ErrInvalid. Its text is the
// client-facing message only, without a package prefix.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }

// Is makes errors.Is(err, ErrInvalid) hold.
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// invalid builds an invalidError from a format.
func invalid(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}
