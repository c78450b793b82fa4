package rotation

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
)

// RandomRotator replaces a secret's value with a random password: the whole
// SecretString, or one member of a JSON object. The built-in sigil-random
// is a RandomRotator with no Field; a registered rotator of type "random"
// sets Field and Policy. It has no target to update, so setSecret and
// testSecret only check the AWSPENDING value.
type RandomRotator struct {
	// Field is the member of the JSON object in SecretString to replace;
	// "" replaces the whole SecretString.
	Field string
	// Policy shapes generated passwords.
	Policy PasswordPolicy
	// Rand is the source of passwords; nil means crypto/rand.
	Rand io.Reader
}

// Step implements Rotator.
func (r *RandomRotator) Step(ctx context.Context, step Step, job Job) error {
	switch step {
	case StepCreate:
		return r.create(ctx, job)
	case StepSet, StepTest:
		// Nothing to apply to: check that AWSPENDING is what createSecret
		// writes, so a value put there by hand is caught before it becomes
		// AWSCURRENT.
		s, err := stageString(ctx, job, job.Token, StagePending)
		if err != nil {
			return err
		}
		if r.Field == "" {
			return nil
		}
		obj, err := jsonObject(s)
		if err != nil {
			return fmt.Errorf("the AWSPENDING value: %w", err)
		}
		var str string
		if m, ok := obj[r.Field]; !ok || json.Unmarshal(m, &str) != nil || str == "" {
			return fmt.Errorf("%w: the AWSPENDING value has no string member %q", ErrInvalidSecretValue, r.Field)
		}
		return nil
	case StepFinish:
		return nil
	}
	return unknownStep(step)
}

func (r *RandomRotator) create(ctx context.Context, job Job) error {
	if ok, err := pendingExists(ctx, job); ok || err != nil {
		return err
	}
	src := r.Rand
	if src == nil {
		src = rand.Reader
	}
	pw, err := r.Policy.Generate(src)
	if err != nil {
		return err
	}
	val := pw
	if r.Field != "" {
		cur, err := stageString(ctx, job, "", StageCurrent)
		if err != nil {
			return err
		}
		obj, err := jsonObject(cur)
		if err != nil {
			return fmt.Errorf("the AWSCURRENT value: %w", err)
		}
		if obj[r.Field], err = json.Marshal(pw); err != nil {
			return fmt.Errorf("encoding the password: %w", err)
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encoding the new value: %w", err)
		}
		val = string(b)
	}
	if err := job.Secrets.PutPendingValue(ctx, job.Name, job.Token, &val, nil); err != nil {
		return fmt.Errorf("writing the AWSPENDING value: %w", err)
	}
	return nil
}

// jsonObject decodes s as one JSON object.
func jsonObject(s string) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	if err := d.Decode(&obj); err != nil || obj == nil || d.More() {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidSecretValue)
	}
	return obj, nil
}
