package shamir

import "errors"

// Errors returned by this package. Callers branch with errors.Is; the wrapped
// message says which check failed.
var (
	// ErrInvalidParameters means Split was called with a threshold or share
	// count outside 2 <= threshold <= parts <= 255, or with an empty secret.
	ErrInvalidParameters = errors.New("shamir: invalid parameters")
	// ErrInvalidShares means Combine was given a set of shares that cannot be
	// combined: fewer than two, of unequal or too short length, with a
	// duplicate or zero x coordinate, or more than 255 of them.
	ErrInvalidShares = errors.New("shamir: invalid shares")
)
