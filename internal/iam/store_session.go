package iam

import "context"

// Managed session policies
//
// An STS session may carry managed policy ARNs as session policies
// (AssumeRole's PolicyArns). Every request of such a session needs them
// compiled, so they are resolved like a principal's identity policies: the
// compiled document is cached per store revision, and the resolution of an
// ARN is trusted for CacheTTL without reading the store, discarded at once
// by a local write.

// sessionPolicyCacheKey keys an ARN's resolution in the resolution cache;
// the prefix is not a storage prefix, so it cannot collide with an entity.
func sessionPolicyCacheKey(arn string) string { return "session-policy " + arn }

// SessionPolicies returns the compiled default versions of the customer
// managed policies that arns name, in the same order, for use as session
// policies. An ARN that names no managed policy of this account (another
// account, an AWS managed policy, a deleted policy, a policy recreated on
// another path) gives an entry with the ARN as Name and a nil Policy,
// which the caller must treat as granting nothing. It implements
// SessionPolicySource. An error (store failure, corrupt record) must make
// the caller deny.
func (e *Entities) SessionPolicies(ctx context.Context, arns []string) ([]NamedPolicy, error) {
	out := make([]NamedPolicy, 0, len(arns))
	for _, arn := range arns {
		np, err := e.sessionPolicy(ctx, arn)
		if err != nil {
			return nil, err
		}
		out = append(out, np)
	}
	return out, nil
}

func (e *Entities) sessionPolicy(ctx context.Context, arn string) (NamedPolicy, error) {
	c := e.cache
	key := sessionPolicyCacheKey(arn)
	now := e.now()
	c.mu.Lock()
	gen := c.gen
	if r, ok := c.resolved[key]; ok && r.gen == gen && !now.Before(r.at) && now.Sub(r.at) < c.ttl {
		c.mu.Unlock()
		return sessionEntry(arn, r), nil
	}
	c.mu.Unlock()

	np, found, err := e.compiledManaged(ctx, arn)
	if err != nil {
		return NamedPolicy{}, err
	}
	r := &resolution{at: now, gen: gen, found: found}
	if found {
		r.identity = []NamedPolicy{np}
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(c.resolved) >= maxCacheEntries {
			c.resolved = map[string]*resolution{}
		}
		c.resolved[key] = r
	}
	c.mu.Unlock()
	return sessionEntry(arn, r), nil
}

func sessionEntry(arn string, r *resolution) NamedPolicy {
	if !r.found || len(r.identity) == 0 {
		return NamedPolicy{Name: arn}
	}
	return r.identity[0]
}
