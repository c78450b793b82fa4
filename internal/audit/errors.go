package audit

import "errors"

// Errors from writing the log (Open, Record, Close).
var (
	// ErrUnavailable means the log cannot be written right now (disk full,
	// I/O error, permissions): the record was not made durable and the
	// caller must fail closed. [Log.Healthy] reports false until a later
	// write succeeds.
	ErrUnavailable = errors.New("audit log unavailable")
	// ErrClosed is returned by Record after Close.
	ErrClosed = errors.New("audit log closed")
	// ErrLocked means another process has the log directory open.
	ErrLocked = errors.New("audit log directory is locked by another process")
	// ErrCorrupt means Open found a log it cannot continue: the last
	// complete record of the newest segment does not parse, or segment
	// names are inconsistent. Run `sigil audit verify` to see why.
	ErrCorrupt = errors.New("audit log is corrupt")
	// ErrInvalidEvent means the event cannot be recorded as given (no
	// Source or Action, parameters that are not a JSON object, or a record
	// larger than [MaxRecordBytes]).
	ErrInvalidEvent = errors.New("invalid audit event")
	// ErrNoKeys is returned by Open when Options.Keys is nil.
	ErrNoKeys = errors.New("audit keys missing")
)

// Errors from loading keys.
var (
	// ErrBadKey means a key file or key string is malformed.
	ErrBadKey = errors.New("malformed audit key")
	// ErrKeyPermissions means a private key file is readable by group or
	// others.
	ErrKeyPermissions = errors.New("audit key file permissions too open")
)

// Errors from reading the log (Verify, Query, Follow).
var (
	// ErrNoLog means the directory holds no audit segment.
	ErrNoLog = errors.New("no audit log segments found")
	// ErrBadFilter means a Filter or QueryRequest field has an invalid
	// value.
	ErrBadFilter = errors.New("invalid audit filter")
)
