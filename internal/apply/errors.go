package apply

import "errors"

// Sentinel errors, grouped by the phase that reports them. Callers branch
// with errors.Is; the wrapped message says what to fix.

// Parse.
var (
	// ErrInvalidFile is wrapped by every *FileError: the file is not valid
	// YAML, has an unknown key, or describes something impossible. Nothing
	// was sent to the server.
	ErrInvalidFile = errors.New("invalid apply file")
)

// Plan.
var (
	// ErrNoAccount means the account id could not be learned from the
	// server (the caller is neither root nor an IAM user); pass it in
	// Clients.AccountID.
	ErrNoAccount = errors.New("cannot determine the account id")

	// ErrConflict means the server holds an object the file cannot turn
	// into what it describes without deleting it first: a path or a
	// managed policy's description (immutable in IAM), or a secret that is
	// scheduled for deletion. The plan is refused as a whole, so nothing
	// is applied.
	ErrConflict = errors.New("the server's state conflicts with the file")
)

// Apply.
var (
	// ErrApply is wrapped by the error Apply returns when an object failed;
	// the *Result says which step failed and what was rolled back.
	ErrApply = errors.New("apply failed")
)
