package store

import "errors"

// Errors returned by every Store. Callers branch with errors.Is.
var (
	// ErrNotFound means the key does not exist.
	ErrNotFound = errors.New("store: key not found")
	// ErrConflict means a transaction's compare-and-swap condition did not
	// hold; nothing was written.
	ErrConflict = errors.New("store: revision conflict")
	// ErrClosed means the Store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrInvalidKey means a key is empty, too long, or not valid UTF-8.
	ErrInvalidKey = errors.New("store: invalid key")
	// ErrTooLarge means a value exceeds MaxValueSize.
	ErrTooLarge = errors.New("store: value too large")
	// ErrInvalidOp means a transaction has a malformed operation or compare
	// (an unknown op kind, a negative revision).
	ErrInvalidOp = errors.New("store: invalid operation")
	// ErrUnavailable means the backend cannot serve requests right now (for
	// example a lost connection to etcd). It is retryable.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrLockHeld means a lock is held, unexpired, by another holder.
	ErrLockHeld = errors.New("store: lock held by another holder")
)
