package secrets

import (
	"context"
	"strconv"

	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/store"
)

// This file holds the resource policy operations: PutResourcePolicy,
// GetResourcePolicy, DeleteResourcePolicy, ValidateResourcePolicy and
// ListResourcePolicies. A secret has at most one policy, named "default".

const defaultPolicyName = "default"

// checkPolicyName validates a PolicyName member for operations that can only
// address the default policy.
func checkPolicyName(p *string) *awsproto.Error {
	if p != nil && *p != defaultPolicyName {
		return errInvalidParameter("The parameter PolicyName must be %q: a secret has only the default resource policy.", defaultPolicyName)
	}
	return nil
}

func (s *Service) putResourcePolicy(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "PutResourcePolicy", false)
	var in putResourcePolicyInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	var doc string
	if aerr == nil {
		doc, aerr = required("ResourcePolicy", in.ResourcePolicy)
	}
	if aerr == nil {
		aerr = checkPolicyName(in.PolicyName)
	}
	if aerr != nil {
		return nil, aerr
	}
	block := in.BlockPublicPolicy != nil && *in.BlockPublicPolicy
	rep := checkPolicy(doc)
	if msg := rep.syntaxError(); msg != "" {
		return nil, errMalformedPolicy("%s", msg)
	}
	if block && rep.public {
		return nil, errPublicPolicy()
	}
	now := inv.nowNanos()
	r, err := s.resolve(ctx, secretID, now)
	if err != nil {
		return nil, err
	}
	t := inv.secretTarget(r).with("secretsmanager:BlockPublicPolicy", strconv.FormatBool(block))
	if err := inv.authorize(ctx, t); err != nil {
		return inv.finish(ctx, nil, err)
	}
	rec, err := requireActive(r)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	err = s.setPolicy(ctx, rec, doc, now)
	return inv.finish(ctx, &policyOutput{ARN: rec.ARN, Name: rec.Name, PolicyName: defaultPolicyName}, err)
}

// setPolicy stores doc ("" removes the policy) as rec's resource policy.
func (s *Service) setPolicy(ctx context.Context, rec *secretRecord, doc string, now int64) error {
	_, err := store.Update(ctx, s.store, func(v *store.View) error {
		cur, err := viewRecord(v, rec, now)
		if err != nil {
			return err
		}
		if cur.scheduled() {
			return errMarkedForDeletion()
		}
		if cur.Policy == doc {
			return nil
		}
		next := cur.clone()
		next.Policy = doc
		next.Changed = now
		v.Put(nameKey(cur.Name), encode(next))
		moveIndexes(v, cur, next)
		return nil
	})
	return err
}

func (s *Service) getResourcePolicy(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "GetResourcePolicy", true)
	var in policyNameInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	r, err := s.resolve(ctx, secretID, inv.nowNanos())
	if err != nil {
		return nil, err
	}
	if err := inv.authorize(ctx, inv.secretTarget(r)); err != nil {
		return inv.finish(ctx, nil, err)
	}
	rec, err := requireSecret(r)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	if in.PolicyName != nil && *in.PolicyName != defaultPolicyName {
		return inv.finish(ctx, nil, awsproto.ResourceNotFound("The secret has no resource policy named %q.", *in.PolicyName))
	}
	out := &getResourcePolicyOutput{ARN: rec.ARN, Name: rec.Name, PolicyName: defaultPolicyName}
	if rec.Policy != "" {
		out.ResourcePolicy = &rec.Policy
	}
	return inv.finish(ctx, out, nil)
}

func (s *Service) deleteResourcePolicy(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "DeleteResourcePolicy", false)
	var in policyNameInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	if aerr == nil {
		aerr = checkPolicyName(in.PolicyName)
	}
	if aerr != nil {
		return nil, aerr
	}
	now := inv.nowNanos()
	r, err := s.resolve(ctx, secretID, now)
	if err != nil {
		return nil, err
	}
	if err := inv.authorize(ctx, inv.secretTarget(r)); err != nil {
		return inv.finish(ctx, nil, err)
	}
	rec, err := requireActive(r)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	err = s.setPolicy(ctx, rec, "", now)
	return inv.finish(ctx, &policyOutput{ARN: rec.ARN, Name: rec.Name, PolicyName: defaultPolicyName}, err)
}

func (s *Service) validateResourcePolicy(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "ValidateResourcePolicy", true)
	var in validateResourcePolicyInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	doc, aerr := required("ResourcePolicy", in.ResourcePolicy)
	if aerr != nil {
		return nil, aerr
	}
	var r *resolved
	t := inv.starTarget()
	if in.SecretId != nil {
		secretID, aerr := validateSecretID(in.SecretId)
		if aerr != nil {
			return nil, aerr
		}
		var err error
		if r, err = s.resolve(ctx, secretID, inv.nowNanos()); err != nil {
			return nil, err
		}
		t = inv.secretTarget(r)
	}
	if err := inv.authorize(ctx, t); err != nil {
		return inv.finish(ctx, nil, err)
	}
	if r != nil && r.rec == nil {
		return inv.finish(ctx, nil, errSecretNotFound())
	}
	rep := checkPolicy(doc)
	if rep.malformed != "" {
		return inv.finish(ctx, nil, errMalformedPolicy("%s", rep.malformed))
	}
	out := &validateResourcePolicyOutput{PolicyValidationPassed: len(rep.findings) == 0, ValidationErrors: []validationErrorsEntry{}}
	for _, f := range rep.findings {
		out.ValidationErrors = append(out.ValidationErrors, validationErrorsEntry{CheckName: f.check, ErrorMessage: f.msg})
	}
	return inv.finish(ctx, out, nil)
}

func (s *Service) listResourcePolicies(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "ListResourcePolicies", true)
	var in listResourcePoliciesInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	if _, aerr := validateMaxResults(in.MaxResults, maxListResults, maxListResults); aerr != nil {
		return nil, aerr
	}
	r, err := s.resolve(ctx, secretID, inv.nowNanos())
	if err != nil {
		return nil, err
	}
	if err := inv.authorize(ctx, inv.secretTarget(r)); err != nil {
		return inv.finish(ctx, nil, err)
	}
	rec, err := requireSecret(r)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	if in.NextToken != nil {
		// A secret has at most one policy, so no listing has a second page.
		return inv.finish(ctx, nil, errInvalidNextToken())
	}
	out := &listResourcePoliciesOutput{ResourcePolicies: []resourcePolicySummary{}}
	if rec.Policy != "" {
		out.ResourcePolicies = append(out.ResourcePolicies, resourcePolicySummary{PolicyName: defaultPolicyName})
	}
	return inv.finish(ctx, out, nil)
}
