package iam

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/store"
)

// Resolving a principal's policies on the hot path
//
// Every authorization of an IAM user or role session needs the entity's
// inline policies, the default versions of its attached managed policies,
// and its permissions boundary, all compiled. Two caches make that cheap:
//
//   - compiled documents, keyed by storage key and store revision: a record
//     is parsed once per revision, on any replica, and never again while it
//     is unchanged. Entries cannot be stale, only unused.
//   - resolutions, keyed by entity: the assembled policy list, trusted for
//     EntitiesConfig.CacheTTL (one second by default) without reading the
//     store at all. A change made through this Entities discards every
//     resolution at once; a change made by another replica sharing the store
//     applies here within the TTL. That bound is the staleness the design
//     accepts, the same as authn's access-key cache.
//
// Both caches are bounded: past maxCacheEntries a map is dropped and refilled
// on demand.

const maxCacheEntries = 4096

type policyCache struct {
	ttl time.Duration

	mu       sync.Mutex
	gen      uint64 // incremented by every local write
	entities map[string]compiledEntity
	policies map[string]compiledPolicy
	resolved map[string]*resolution
}

func newPolicyCache(ttl time.Duration) *policyCache {
	return &policyCache{ttl: ttl, entities: map[string]compiledEntity{},
		policies: map[string]compiledPolicy{}, resolved: map[string]*resolution{}}
}

func (c *policyCache) invalidate() {
	c.mu.Lock()
	c.gen++
	c.resolved = map[string]*resolution{}
	c.mu.Unlock()
}

// compiledEntity is a role or user record with its inline policies compiled.
type compiledEntity struct {
	rev      int64
	id, path string
	inline   []NamedPolicy
	attached []string
	boundary string
}

type compiledPolicy struct {
	rev  int64
	path string
	np   NamedPolicy
}

// resolution is what a principal's authorization needs. found is false when
// the entity does not exist (which allows nothing).
type resolution struct {
	at       time.Time
	gen      uint64
	found    bool
	id, path string
	identity []NamedPolicy
	boundary *NamedPolicy
}

// IdentityPolicies returns the identity-based policies of p, compiled: for an
// IAM user its inline policies and the default versions of its attached
// managed policies; for an assumed-role session those of the role. It
// returns nil for the root (whom policies do not restrict), for principals
// of other accounts, and for an entity that no longer exists or was
// recreated under the same name (its unique id differs), so those requests
// are implicitly denied. Inline policies are named
// "user/NAME/inline/POLICY" (or "role/..."), managed ones by their ARN.
//
// The result is shared and must not be modified. An error (store failure,
// corrupt record) must make the caller deny.
func (e *Entities) IdentityPolicies(ctx context.Context, p *authn.Principal) ([]NamedPolicy, error) {
	r, err := e.resolvePrincipal(ctx, p)
	if err != nil || r == nil {
		return nil, err
	}
	return r.identity, nil
}

// PermissionsBoundary returns the compiled permissions boundary of p's user
// or role, nil when it has none. Like IdentityPolicies, it answers from the
// cache; a boundary policy that cannot be read is an error, never "no
// boundary".
func (e *Entities) PermissionsBoundary(ctx context.Context, p *authn.Principal) (*NamedPolicy, error) {
	r, err := e.resolvePrincipal(ctx, p)
	if err != nil || r == nil {
		return nil, err
	}
	return r.boundary, nil
}

// RolePolicies returns the compiled identity policies of the role an ARN
// (with its path) names, as IdentityPolicies does for a session of it; nil
// when no such role exists.
func (e *Entities) RolePolicies(ctx context.Context, roleARN string) ([]NamedPolicy, error) {
	r, err := e.resolveRoleARN(ctx, roleARN)
	if err != nil || r == nil {
		return nil, err
	}
	return r.identity, nil
}

// RoleBoundary returns the compiled permissions boundary of the role an ARN
// names, nil when it has none.
func (e *Entities) RoleBoundary(ctx context.Context, roleARN string) (*NamedPolicy, error) {
	r, err := e.resolveRoleARN(ctx, roleARN)
	if err != nil || r == nil {
		return nil, err
	}
	return r.boundary, nil
}

func (e *Entities) resolveRoleARN(ctx context.Context, roleARN string) (*resolution, error) {
	res, ok := parseIAMARN(e.account, roleARN)
	if !ok || res.Type != "role" {
		return nil, nil
	}
	r, err := e.resolve(ctx, RoleEntity, res.Name)
	if err != nil || !r.found || r.path != res.Path {
		return nil, err
	}
	return r, nil
}

// resolvePrincipal finds p's entity and checks that it is the one p was
// issued for.
func (e *Entities) resolvePrincipal(ctx context.Context, p *authn.Principal) (*resolution, error) {
	if p == nil || p.AccountID != e.account {
		return nil, nil
	}
	var (
		kind   EntityKind
		name   string
		wantID string
	)
	switch p.Kind {
	case authn.KindIAMUser:
		kind, name, wantID = UserEntity, p.Name, p.ID
	case authn.KindAssumedRole:
		// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, id ROLEID:SESSION.
		rest, ok := strings.CutPrefix(p.ARN, "arn:aws:sts::"+e.account+":assumed-role/")
		if !ok {
			return nil, nil
		}
		name, _, _ = strings.Cut(rest, "/")
		kind = RoleEntity
		wantID, _, _ = strings.Cut(p.ID, ":")
	default:
		return nil, nil
	}
	if name == "" || wantID == "" {
		return nil, nil
	}
	r, err := e.resolve(ctx, kind, name)
	if err != nil || !r.found || r.id != wantID {
		return nil, err
	}
	return r, nil
}

// resolve returns the cached resolution of an entity, rebuilding it when it
// is older than the TTL or a local write happened since.
func (e *Entities) resolve(ctx context.Context, kind EntityKind, name string) (*resolution, error) {
	c := e.cache
	key := entityKey(kind, name)
	now := e.now()
	c.mu.Lock()
	gen := c.gen
	if r, ok := c.resolved[key]; ok && r.gen == gen && !now.Before(r.at) && now.Sub(r.at) < c.ttl {
		c.mu.Unlock()
		return r, nil
	}
	c.mu.Unlock()

	r, err := e.build(ctx, kind, key)
	if err != nil {
		return nil, err
	}
	r.at, r.gen = now, gen
	c.mu.Lock()
	if c.gen == gen {
		if len(c.resolved) >= maxCacheEntries {
			c.resolved = map[string]*resolution{}
		}
		c.resolved[key] = r
	}
	c.mu.Unlock()
	return r, nil
}

func (e *Entities) build(ctx context.Context, kind EntityKind, key string) (*resolution, error) {
	ce, found, err := e.compiledEntity(ctx, kind, key)
	if err != nil || !found {
		return &resolution{}, err
	}
	r := &resolution{found: true, id: ce.id, path: ce.path}
	r.identity = make([]NamedPolicy, 0, len(ce.inline)+len(ce.attached))
	r.identity = append(r.identity, ce.inline...)
	for _, arn := range ce.attached {
		np, found, err := e.compiledManaged(ctx, arn)
		if err != nil {
			return nil, err
		}
		if found {
			// A policy deleted since it was attached (possible only by
			// a concurrent replica) neither allows nor denies anything.
			r.identity = append(r.identity, np)
		}
	}
	if ce.boundary != "" {
		np, found, err := e.compiledManaged(ctx, ce.boundary)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("%w: permissions boundary %s of %s does not exist", ErrCorruptRecord, ce.boundary, key)
		}
		r.boundary = &np
	}
	return r, nil
}

func (e *Entities) compiledEntity(ctx context.Context, kind EntityKind, key string) (compiledEntity, bool, error) {
	ent, err := e.store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return compiledEntity{}, false, nil
	}
	if err != nil {
		return compiledEntity{}, false, fmt.Errorf("reading %s: %w", key, err)
	}
	c := e.cache
	c.mu.Lock()
	ce, ok := c.entities[key]
	c.mu.Unlock()
	if ok && ce.rev == ent.Revision {
		return ce, true, nil
	}
	var rec entityRecord
	if err := decodeRecord(key, ent.Value, &rec); err != nil {
		return compiledEntity{}, false, err
	}
	ce = compiledEntity{rev: ent.Revision, id: rec.ID, path: rec.Path, attached: rec.Attached, boundary: rec.Boundary}
	limit := MaxRoleInlinePolicySize
	if kind == UserEntity {
		limit = MaxUserInlinePolicySize
	}
	for _, ip := range rec.Inline {
		pol, err := ParsePolicyLimit(ip.Document, IdentityPolicy, limit)
		if err != nil {
			return compiledEntity{}, false, corrupt(key, fmt.Errorf("inline policy %s: %w", ip.Name, err))
		}
		ce.inline = append(ce.inline, NamedPolicy{Name: kind.String() + "/" + rec.Name + "/inline/" + ip.Name, Policy: pol})
	}
	c.mu.Lock()
	if len(c.entities) >= maxCacheEntries {
		c.entities = map[string]compiledEntity{}
	}
	c.entities[key] = ce
	c.mu.Unlock()
	return ce, true, nil
}

// compiledManaged returns the compiled default version of a managed policy.
func (e *Entities) compiledManaged(ctx context.Context, arn string) (NamedPolicy, bool, error) {
	key, path, err := e.policyRef(arn)
	if err != nil {
		return NamedPolicy{}, false, nil
	}
	ent, err := e.store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return NamedPolicy{}, false, nil
	}
	if err != nil {
		return NamedPolicy{}, false, fmt.Errorf("reading %s: %w", key, err)
	}
	c := e.cache
	c.mu.Lock()
	cp, ok := c.policies[key]
	c.mu.Unlock()
	if ok && cp.rev == ent.Revision {
		// A policy recreated on another path is not the one attached.
		return cp.np, cp.path == path, nil
	}
	var rec policyRecord
	if err := decodeRecord(key, ent.Value, &rec); err != nil {
		return NamedPolicy{}, false, err
	}
	pv, ok := rec.version(rec.Default)
	if !ok {
		return NamedPolicy{}, false, corrupt(key, fmt.Errorf("default version %s missing", rec.Default))
	}
	pol, err := ParsePolicy(pv.Document, IdentityPolicy)
	if err != nil {
		return NamedPolicy{}, false, corrupt(key, fmt.Errorf("version %s: %w", pv.ID, err))
	}
	cp = compiledPolicy{rev: ent.Revision, path: rec.Path, np: NamedPolicy{Name: policyARN(e.account, rec.Path, rec.Name), Policy: pol}}
	c.mu.Lock()
	if len(c.policies) >= maxCacheEntries {
		c.policies = map[string]compiledPolicy{}
	}
	c.policies[key] = cp
	c.mu.Unlock()
	return cp.np, rec.Path == path, nil
}
