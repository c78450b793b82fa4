package dynamic

import "errors"

// Errors returned by this package. Callers branch with errors.Is.
var (
	// ErrTemplate means a statement template is malformed or uses an unknown
	// placeholder.
	ErrTemplate = errors.New("dynamic: invalid statement template")
	// ErrUnsafeValue means a value to be quoted into a statement cannot be
	// quoted safely (it contains a NUL byte or is not valid UTF-8).
	ErrUnsafeValue = errors.New("dynamic: value cannot be quoted safely")
	// ErrStatement means the database rejected a creation, renew or
	// revocation statement. The error names the statement's position and the
	// database's message with any password removed.
	ErrStatement = errors.New("dynamic: database rejected statement")
	// ErrInvalidConfig means an engine, role or reaper configuration is
	// incomplete or inconsistent.
	ErrInvalidConfig = errors.New("dynamic: invalid configuration")
	// ErrLeaseNotFound means no lease has the given id.
	ErrLeaseNotFound = errors.New("dynamic: lease not found")
	// ErrLeaseNotActive means the lease is not in state active (it is being
	// created, revoked, or is already revoked).
	ErrLeaseNotActive = errors.New("dynamic: lease not active")
	// ErrUnknownSecret means no dynamic role is configured for the secret.
	ErrUnknownSecret = errors.New("dynamic: unknown dynamic secret")
	// ErrDatabaseNotFound means no database is registered under the name.
	ErrDatabaseNotFound = errors.New("dynamic: database not found")
	// ErrInUse means a database cannot be removed while a dynamic secret
	// uses it.
	ErrInUse = errors.New("dynamic: database in use")
	// ErrNotLeader means another replica holds the reaper lock.
	ErrNotLeader = errors.New("dynamic: another reaper holds the lock")
)
