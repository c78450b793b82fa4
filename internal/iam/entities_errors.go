package iam

import (
	"errors"
	"fmt"
)

// Errors of the entity store ([Entities]). Each client-visible failure is an
// *EntityError that matches one of the first five with errors.Is; the API
// maps them to IAM's exceptions (NoSuchEntity, EntityAlreadyExists,
// DeleteConflict, LimitExceeded, InvalidInput). A policy document that does
// not parse matches ErrMalformedPolicy instead.
var (
	// ErrNoSuchEntity means the role, user, policy, version, inline
	// policy, access key or OIDC provider does not exist.
	ErrNoSuchEntity = errors.New("iam: no such entity")
	// ErrEntityExists means an entity with that name (compared without
	// regard to case, as IAM does) or URL already exists.
	ErrEntityExists = errors.New("iam: entity already exists")
	// ErrDeleteConflict means the entity is still in use: a role or user
	// with policies or keys, a policy that is attached, the default version
	// of a policy.
	ErrDeleteConflict = errors.New("iam: delete conflict")
	// ErrLimitExceeded means an IAM quota would be exceeded: five versions
	// per policy, two access keys per user, ten managed policies per role
	// or user, fifty tags, the aggregate size of inline policies.
	ErrLimitExceeded = errors.New("iam: limit exceeded")
	// ErrInvalidEntityInput means a request is well-formed but names
	// something unusable, e.g. an ARN of another account.
	ErrInvalidEntityInput = errors.New("iam: invalid input")

	// ErrInvalidEntitiesConfig means NewEntities or NewAPI was given an
	// unusable configuration.
	ErrInvalidEntitiesConfig = errors.New("iam: invalid config")
	// ErrCorruptRecord means a stored entity could not be decoded, has an
	// unknown format version, or holds a policy document that no longer
	// parses. It is an internal failure, never shown to clients; lookups
	// for authorization fail (and so deny) rather than skip the record.
	ErrCorruptRecord = errors.New("iam: corrupt record")
)

// EntityError is a client-visible failure of the entity store. Msg is the
// message IAM sends for it (capitalised and punctuated as AWS writes it),
// which names the entity but never a secret.
type EntityError struct {
	// Err is one of ErrNoSuchEntity, ErrEntityExists, ErrDeleteConflict,
	// ErrLimitExceeded and ErrInvalidEntityInput.
	Err error
	// Msg is the client-facing message.
	Msg string
}

// Error returns the message.
func (e *EntityError) Error() string { return e.Msg }

// Unwrap returns the sentinel, so errors.Is works.
func (e *EntityError) Unwrap() error { return e.Err }

func entityErr(sentinel error, format string, args ...any) *EntityError {
	return &EntityError{Err: sentinel, Msg: fmt.Sprintf(format, args...)}
}

func corrupt(key string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrCorruptRecord, key, err)
}
