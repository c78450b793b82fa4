package rotation

import (
	"context"
	"errors"
	"fmt"

	"sigil.dev/sigil/internal/secrets"
)

// Step is one of the four steps of a rotation, named as AWS names them in
// the event it sends a rotation Lambda.
type Step string

// The four steps, in the order the runner runs them.
const (
	// StepCreate writes the new value as version Token, labelled
	// AWSPENDING, unless that version already exists.
	StepCreate Step = "createSecret"
	// StepSet applies the AWSPENDING value to the target (changes the
	// database password). It must succeed when run again after a partial
	// or complete earlier run.
	StepSet Step = "setSecret"
	// StepTest checks that the AWSPENDING value works against the target.
	StepTest Step = "testSecret"
	// StepFinish completes the rotation. For built-in rotators it does
	// nothing: the runner moves AWSCURRENT afterwards (FinishRotation). A
	// webhook may move AWSCURRENT itself, as a Lambda does; the runner then
	// only does the bookkeeping.
	StepFinish Step = "finishSecret"
)

// steps lists the four steps in the order the runner runs them.
var steps = [...]Step{StepCreate, StepSet, StepTest, StepFinish}

// Staging labels the rotators read and write.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// Job is one rotation as a rotator sees it.
type Job struct {
	// Name is the secret's name.
	Name string
	// ARN is the secret's ARN; webhooks receive it as SecretId.
	ARN string
	// Token is the ClientRequestToken of the rotation: the version id of
	// the AWSPENDING value. A retry of a failed or interrupted rotation has
	// the same token.
	Token string
	// Secrets reads and writes the secret's versions.
	Secrets Secrets
}

// Rotator runs the steps of a rotation. Each step must be idempotent: the
// runner repeats a rotation from createSecret, with the same Job.Token,
// after any failure or crash. A step returns nil on success; its error
// becomes the failure cause shown in DescribeSecret and the audit log, so
// it must never contain a secret value.
type Rotator interface {
	Step(ctx context.Context, step Step, job Job) error
}

// Reverter is implemented by rotators that can undo setSecret. When
// setSecret, testSecret or the final FinishRotation fails, the runner calls
// Revert so that the target accepts the AWSCURRENT value again (AWSCURRENT
// is never moved by a failed rotation, so applications reading it keep
// working); the retry applies AWSPENDING afresh. Revert must succeed, doing
// nothing, when AWSCURRENT already works or setSecret never changed
// anything.
type Reverter interface {
	Revert(ctx context.Context, job Job) error
}

// RotatorFunc adapts a function to [Rotator].
type RotatorFunc func(ctx context.Context, step Step, job Job) error

// Step calls f.
func (f RotatorFunc) Step(ctx context.Context, step Step, job Job) error { return f(ctx, step, job) }

func unknownStep(step Step) error {
	return fmt.Errorf("%w %q", ErrUnknownStep, string(step))
}

// pendingExists reports whether version job.Token already carries
// AWSPENDING, so createSecret must not write it again.
func pendingExists(ctx context.Context, job Job) (bool, error) {
	_, err := job.Secrets.RotationValue(ctx, job.Name, job.Token, StagePending)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, secrets.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("reading the AWSPENDING value: %w", err)
}

// stageString returns the SecretString of the version of the job's secret
// with versionID (any when "") carrying stage.
func stageString(ctx context.Context, job Job, versionID, stage string) (string, error) {
	v, err := job.Secrets.RotationValue(ctx, job.Name, versionID, stage)
	if err != nil {
		return "", fmt.Errorf("reading the %s value: %w", stage, err)
	}
	if v.String == nil {
		return "", fmt.Errorf("%w: the %s version holds no SecretString", ErrInvalidSecretValue, stage)
	}
	return *v.String, nil
}
