package rotation

import (
	"context"
	"time"

	"sigil.dev/sigil/internal/secrets"
)

// Secrets is the part of the Secrets Manager service the runner and the
// built-in rotators use; *secrets.Service satisfies it. Every method is one
// store transaction and makes no authorization decision: the runner acts
// as the service itself, as AWS's rotation does.
type Secrets interface {
	// DueRotations returns up to limit secrets whose rotation is due at
	// now and not claimed by a runner.
	DueRotations(ctx context.Context, now time.Time, limit int) ([]DueRotation, error)
	// ClaimRotation marks the rotation of name as running until until, so
	// that other runners skip it, and returns it with Token set (a retry
	// keeps the token of the pending rotation). It fails with an error
	// wrapping secrets.ErrRotationClaimed when another runner holds an
	// unexpired claim or the rotation is no longer due.
	ClaimRotation(ctx context.Context, name, holder string, now, until time.Time) (DueRotation, error)
	// RotationValue returns the version of name with versionID that
	// carries stage; either may be "" (both: AWSCURRENT). A missing
	// version is an error wrapping secrets.ErrNotFound.
	RotationValue(ctx context.Context, name, versionID, stage string) (Value, error)
	// PutPendingValue writes version token labelled AWSPENDING. Writing
	// the same token with the same value again is a no-op; with another
	// value it is an error.
	PutPendingValue(ctx context.Context, name, token string, str *string, bin []byte) error
	// FinishRotation moves AWSCURRENT to token, clears the claim and
	// schedules the next rotation.
	FinishRotation(ctx context.Context, name, token string, now time.Time) error
	// FailRotation records the failed step and its cause, keeps AWSCURRENT
	// and AWSPENDING, clears the claim and schedules a retry at retryAt.
	FailRotation(ctx context.Context, name, token, step, cause string, retryAt time.Time) error
}

// DueRotation is a secret whose rotation should run now; it is
// secrets.DueRotation, named here for the users of this package.
type DueRotation = secrets.DueRotation

// Value is one version of a secret as the rotation runner sees it; it is
// secrets.Value, which prints without the value.
type Value = secrets.Value
