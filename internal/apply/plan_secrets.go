package apply

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// Planning secrets. A secret's value is written only when the secret is
// created, unless Options.UpdateValues is set; the value is never part of
// a Change, a step description or an error. A secret's rotation block adds
// the steps of plan_rotation.go after the others.

// Notes about values.
const (
	noteValueLeft      = "value: left as is (pass --update-values to replace it)"
	noteValueSame      = "value: unchanged"
	noteValueUnmanaged = "value: not managed (no valueFile or valueEnv)"
	noteNoInitialValue = "no initial value (no valueFile or valueEnv)"
)

func smTags(t Tags) []smtypes.Tag {
	var out []smtypes.Tag
	for _, k := range t.sortedKeys() {
		out = append(out, smtypes.Tag{Key: aws.String(k), Value: aws.String(t[k])})
	}
	return out
}

func fromSMTags(ts []smtypes.Tag) Tags {
	out := make(Tags, len(ts))
	for _, t := range ts {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// valueBytes returns the bytes to write for s: its value with templates
// expanded against arns. ok is false while a referenced ARN is unknown.
func (v vars) valueBytes(s Secret, arns map[string]string) ([]byte, bool) {
	if !s.ValueTemplate {
		return s.Value.b, true
	}
	out, ok := v.expandValue(string(s.Value.b), arns)
	return []byte(out), ok
}

// setValue puts b in the SecretString or SecretBinary member.
func setValue(b []byte, binary bool, str **string, bin *[]byte) {
	if binary {
		*bin = b
		return
	}
	*str = aws.String(string(b))
}

func (pl *planner) secret(ctx context.Context, s Secret) error {
	desc := pl.vars.expand(s.Description)
	kms := pl.vars.expand(s.KmsKeyID)
	tags := pl.vars.expandTags(s.Tags)
	var policy *string
	if s.ResourcePolicy != nil {
		policy = aws.String(pl.vars.expand(string(*s.ResourcePolicy)))
	}
	ch := Change{Kind: KindSecret, Name: s.Name, Line: s.Line}
	got, err := pl.c.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.Name)})
	if isSecretNotFound(err) {
		if s.Value != nil {
			ch.Notes = append(ch.Notes, "initial value from "+s.ValueSource)
		} else {
			ch.Notes = append(ch.Notes, noteNoInitialValue)
		}
		steps := pl.createSecretSteps(s, desc, kms, tags, policy)
		rot, note := pl.rotationSteps(s.Rotation, nil, createdARN(s.Name))
		if note != "" {
			ch.Notes = append(ch.Notes, note)
		}
		pl.add(ch, true, append(steps, rot...))
		return nil
	}
	if err != nil {
		return readError(KindSecret, s.Name, "DescribeSecret", err)
	}
	arn := aws.ToString(got.ARN)
	ch.ARN = arn
	pl.secretARNs[s.Name] = arn
	if got.DeletedDate != nil {
		pl.conflict(KindSecret, s.Name, s.Line, "it is scheduled for deletion; restore it (RestoreSecret) or wait until it is purged")
		return nil
	}
	if pl.c.Native != nil {
		// A dynamic secret has no stored value to compare or set; reading
		// it would issue a database user.
		var d struct {
			Name string `json:"name"`
		}
		if err := pl.c.Native(ctx, "/v1/dynamic-secrets/get", map[string]string{"name": s.Name}, &d); err == nil && d.Name == s.Name {
			pl.conflict(KindSecret, s.Name, s.Line, "it is a dynamic secret on the server; list it under dynamicSecrets")
			return nil
		}
	}
	var steps []step
	if aws.ToString(got.Description) != desc || aws.ToString(got.KmsKeyId) != kms {
		var fields []string
		in := &secretsmanager.UpdateSecretInput{SecretId: aws.String(arn)}
		if aws.ToString(got.Description) != desc {
			fields, in.Description = append(fields, "description"), aws.String(desc)
		}
		if aws.ToString(got.KmsKeyId) != kms {
			fields, in.KmsKeyId = append(fields, "kms key id"), aws.String(kms)
		}
		steps = append(steps, step{desc: "update " + joinAnd(fields), run: func(ctx context.Context, rs *runState) (*undo, error) {
			_, err := rs.c.SecretsManager.UpdateSecret(ctx, in)
			return nil, err
		}})
	}
	steps = append(steps, tagSteps(fromSMTags(got.Tags), tags,
		func(ctx context.Context, rs *runState, t Tags) error {
			_, err := rs.c.SecretsManager.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(arn), Tags: smTags(t)})
			return err
		},
		func(ctx context.Context, rs *runState, keys []string) error {
			_, err := rs.c.SecretsManager.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(arn), TagKeys: keys})
			return err
		})...)
	rp, err := pl.c.SecretsManager.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(arn)})
	if err != nil {
		return readError(KindSecret, s.Name, "GetResourcePolicy", err)
	}
	havePolicy := aws.ToString(rp.ResourcePolicy)
	switch {
	case policy == nil && havePolicy != "":
		steps = append(steps, step{desc: "delete resource policy (not in the file)", run: func(ctx context.Context, rs *runState) (*undo, error) {
			_, err := rs.c.SecretsManager.DeleteResourcePolicy(ctx, &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String(arn)})
			return nil, err
		}})
	case policy != nil && (havePolicy == "" || !sameDocument(havePolicy, *policy)):
		steps = append(steps, putPolicyStep(knownARN(arn), *policy, havePolicy != ""))
	}
	switch {
	case s.Value == nil:
		ch.Notes = append(ch.Notes, noteValueUnmanaged)
	case !pl.opts.UpdateValues:
		ch.Notes = append(ch.Notes, noteValueLeft)
	default:
		same, err := pl.sameValue(ctx, s, arn, len(got.VersionIdsToStages) > 0)
		if err != nil {
			return err
		}
		if same {
			ch.Notes = append(ch.Notes, noteValueSame)
		} else {
			steps = append(steps, step{desc: "put a new value from " + s.ValueSource, run: func(ctx context.Context, rs *runState) (*undo, error) {
				b, ok := rs.vars.valueBytes(s, rs.secretARNs)
				if !ok {
					return nil, errors.New("the value template refers to a secret whose ARN is not known")
				}
				in := &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn)}
				setValue(b, s.Value.binary, &in.SecretString, &in.SecretBinary)
				_, err := rs.c.SecretsManager.PutSecretValue(ctx, in)
				return nil, err
			}})
		}
	}
	rot, note := pl.rotationSteps(s.Rotation, got, knownARN(arn))
	if note != "" {
		ch.Notes = append(ch.Notes, note)
	}
	steps = append(steps, rot...)
	pl.add(ch, false, steps)
	return nil
}

// createSecretSteps creates the secret with its initial value and tags in
// one call, then sets its resource policy. The undo deletes the secret
// without a recovery window, so that the name is free again at once.
func (pl *planner) createSecretSteps(s Secret, desc, kms string, tags Tags, policy *string) []step {
	create := step{desc: "create secret", run: func(ctx context.Context, rs *runState) (*undo, error) {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(s.Name), Tags: smTags(tags)}
		if desc != "" {
			in.Description = aws.String(desc)
		}
		if kms != "" {
			in.KmsKeyId = aws.String(kms)
		}
		if s.Value != nil {
			b, ok := rs.vars.valueBytes(s, rs.secretARNs)
			if !ok {
				return nil, errors.New("the value template refers to a secret whose ARN is not known")
			}
			setValue(b, s.Value.binary, &in.SecretString, &in.SecretBinary)
		}
		out, err := rs.c.SecretsManager.CreateSecret(ctx, in)
		if err != nil {
			return nil, err
		}
		arn := aws.ToString(out.ARN)
		rs.secretARNs[s.Name] = arn
		return &undo{desc: "delete secret (without recovery window)", run: func(ctx context.Context, rs *runState) error {
			_, err := rs.c.SecretsManager.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), ForceDeleteWithoutRecovery: aws.Bool(true)})
			if err == nil {
				delete(rs.secretARNs, s.Name)
			}
			return err
		}}, nil
	}}
	steps := []step{create}
	if policy != nil {
		steps = append(steps, putPolicyStep(createdARN(s.Name), *policy, false))
	}
	return steps
}

// putPolicyStep sets a secret's resource policy, refusing public ones
// (BlockPublicPolicy). secretID says which secret when the step runs.
func putPolicyStep(secretID func(*runState) (string, error), policy string, replacing bool) step {
	desc := "put resource policy"
	if replacing {
		desc += " (changed)"
	}
	return step{desc: desc, run: func(ctx context.Context, rs *runState) (*undo, error) {
		id, err := secretID(rs)
		if err != nil {
			return nil, err
		}
		_, err = rs.c.SecretsManager.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{
			SecretId: aws.String(id), ResourcePolicy: aws.String(policy), BlockPublicPolicy: aws.Bool(true)})
		return nil, err
	}}
}

// knownARN names an existing secret.
func knownARN(arn string) func(*runState) (string, error) {
	return func(*runState) (string, error) { return arn, nil }
}

// createdARN names a secret created earlier in the run, whose ARN is known
// only then.
func createdARN(name string) func(*runState) (string, error) {
	return func(rs *runState) (string, error) {
		arn, ok := rs.secretARNs[name]
		if !ok {
			return "", fmt.Errorf("the ARN of secret %q is not known", name)
		}
		return arn, nil
	}
}

// sameValue fetches the current value of an existing secret and compares
// it with the file's in constant time. Neither value leaves this function.
func (pl *planner) sameValue(ctx context.Context, s Secret, arn string, hasVersions bool) (bool, error) {
	if !hasVersions {
		return false, nil
	}
	want, ok := pl.vars.valueBytes(s, pl.secretARNs)
	if !ok {
		return false, nil // refers to a secret still to be created: its ARN is new
	}
	got, err := pl.c.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if isSecretNotFound(err) {
		return false, nil // no current version
	}
	if err != nil {
		return false, readError(KindSecret, s.Name, "GetSecretValue", err)
	}
	var have []byte
	haveBinary := got.SecretString == nil
	if haveBinary {
		have = got.SecretBinary
	} else {
		have = []byte(aws.ToString(got.SecretString))
	}
	hw, hh := sha256.Sum256(want), sha256.Sum256(have)
	same := subtle.ConstantTimeCompare(hw[:], hh[:]) == 1 && haveBinary == s.Value.binary
	clear(have)
	if s.ValueTemplate {
		clear(want)
	}
	return same, nil
}

// joinAnd joins words: "a", "a and b", "a, b and c".
func joinAnd(w []string) string {
	switch len(w) {
	case 0:
		return ""
	case 1:
		return w[0]
	}
	out := w[0]
	for _, s := range w[1 : len(w)-1] {
		out += ", " + s
	}
	return out + " and " + w[len(w)-1]
}
