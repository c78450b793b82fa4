package dynamic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"sigil.dev/sigil/internal/store"
)

// Storage layout. Lease ids start with the secret's name, so that every
// lease of a secret shares a prefix.
const (
	leasePrefix   = "dynamic/leases/"
	sessionPrefix = "dynamic/sessions/"
)

// State is where a lease is in its life.
type State string

// Lease states, in the order a lease passes through them.
const (
	// StateCreating means the record is written and the database user may
	// or may not exist yet.
	StateCreating State = "creating"
	// StateActive means the user exists and was handed out.
	StateActive State = "active"
	// StateRevoking means revocation started and has not yet succeeded.
	StateRevoking State = "revoking"
	// StateRevoked means the user has been removed from the database.
	StateRevoked State = "revoked"
)

// Lease is a database user sigil issued, as recorded in the store. It never
// holds the password.
type Lease struct {
	// ID names the lease: the secret's name, a slash and 32 hex digits.
	ID string `json:"id"`
	// Secret is the dynamic secret (role) the user was issued for.
	Secret string `json:"secret"`
	// Username is the database user.
	Username string `json:"username"`
	// Session is the caller session the lease was issued to; "" if none.
	Session string `json:"session,omitempty"`
	// Issued is when the lease was recorded.
	Issued time.Time `json:"issued"`
	// Expires is when the lease, and the database user, expire.
	Expires time.Time `json:"expires"`
	// MaxExpires bounds Expires across renewals.
	MaxExpires time.Time `json:"max_expires"`
	// State is the lease's state.
	State State `json:"state"`
	// Attempts counts failed revocation attempts.
	Attempts int `json:"attempts,omitempty"`
	// NextAttempt is the earliest time the reaper retries a failed
	// revocation.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// LastError is the last revocation or creation failure, if any.
	LastError string `json:"last_error,omitempty"`
	// Revoked is when the user was removed; zero until then.
	Revoked time.Time `json:"revoked,omitzero"`
	// Connection is where the user connects, as the role said at issue.
	Connection Connection `json:"connection,omitzero"`
	// Creator is the replica that issued the lease (Options.Replica).
	Creator string `json:"creator,omitempty"`
	// FromCreating marks a lease the reaper undid while it was creating;
	// the user is looked for once more before the record is purged.
	FromCreating bool `json:"fromCreating,omitempty"`
}

// record is a lease as stored: the lease plus its password, kept so that the
// same session can be handed the same credential again. The store's barrier
// encrypts it.
type record struct {
	Lease
	Password string `json:"password,omitempty"`
}

// Role is a dynamic secret's configuration: the engine that issues its
// users and their lifetimes.
type Role struct {
	// Engine creates and removes the users.
	Engine Engine
	// TTL is the lifetime of a new lease and the default renewal increment.
	TTL time.Duration
	// MaxTTL bounds a lease's lifetime from issue across renewals; zero
	// means TTL.
	MaxTTL time.Duration
	// Connection is where issued users connect; it is recorded in each
	// lease.
	Connection Connection
}

// Roles finds the role of a dynamic secret. It returns an error wrapping
// [ErrUnknownSecret] for a secret that is not configured.
type Roles interface {
	Role(ctx context.Context, secret string) (Role, error)
}

// RoleMap is a fixed set of roles keyed by secret name.
type RoleMap map[string]Role

// Role returns m[secret] or an error wrapping [ErrUnknownSecret].
func (m RoleMap) Role(_ context.Context, secret string) (Role, error) {
	r, ok := m[secret]
	if !ok {
		return Role{}, fmt.Errorf("%w: %q", ErrUnknownSecret, secret)
	}
	return r, nil
}

// Options configures [Leases]. Zero values are documented per field.
type Options struct {
	// Store holds the lease records. Required.
	Store store.Store
	// Roles resolves secret names to roles. Required.
	Roles Roles
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of lease ids; nil means crypto/rand.Reader.
	Rand io.Reader
	// Logger receives operational messages (lease ids, usernames and
	// errors, never passwords); nil discards them.
	Logger *slog.Logger
	// Replica names this process among the replicas sharing the store, as
	// the reaper's ID does. It is recorded in every lease issued, so that
	// after a restart this replica's reaper can undo the leases it left
	// creating at once instead of after the grace period.
	Replica string
}

// Leases issues, renews and revokes database users and records each one as
// a lease. It is safe for concurrent use.
type Leases struct {
	st    store.Store
	roles Roles
	now   func() time.Time
	rand  io.Reader
	log   *slog.Logger
	// replica is Options.Replica.
	replica string
	// sessions speeds up ForSession; see lease_cache.go for why it can
	// never serve a revoked lease.
	sessions sessionCache
}

// NewLeases checks opts and returns a Leases.
func NewLeases(opts Options) (*Leases, error) {
	if opts.Store == nil || opts.Roles == nil {
		return nil, fmt.Errorf("%w: leases need a store and roles", ErrInvalidConfig)
	}
	l := &Leases{st: opts.Store, roles: opts.Roles, now: opts.Now, rand: opts.Rand, log: opts.Logger, replica: opts.Replica}
	if l.now == nil {
		l.now = time.Now
	}
	if l.rand == nil {
		l.rand = rand.Reader
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l, nil
}

func leaseKey(id string) string { return leasePrefix + id }

func sessionKey(secret, session string) string {
	return sessionPrefix + url.PathEscape(secret) + "/" + url.PathEscape(session)
}

func getRecord(v *store.View, id string) (record, error) {
	e, err := v.Get(leaseKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return record{}, fmt.Errorf("%w: %q", ErrLeaseNotFound, id)
	}
	if err != nil {
		return record{}, fmt.Errorf("reading lease %q: %w", id, err)
	}
	var r record
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return record{}, fmt.Errorf("decoding lease %q: %w", id, err)
	}
	return r, nil
}

func putRecord(v *store.View, r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding lease %q: %w", r.ID, err)
	}
	v.Put(leaseKey(r.ID), b)
	return nil
}

// reusable reports whether a session may be handed r again at now: it is
// active and less than two thirds of its lifetime have passed.
func reusable(r record, now time.Time) bool {
	if r.State != StateActive {
		return false
	}
	life := r.Expires.Sub(r.Issued)
	return now.Before(r.Issued.Add(life * 2 / 3))
}

// ForSession returns the lease and credential issued to session for secret
// if one exists and may still be reused (it is active and less than two
// thirds of its TTL have passed); ok is false otherwise.
//
// The lease record is read from the store on every call, so a lease
// revoked by any replica is never returned; which lease the session holds
// and the record's decoding are cached (see sessionCache).
func (l *Leases) ForSession(ctx context.Context, secret, session string) (lease Lease, cred Credential, ok bool, err error) {
	now := l.now()
	if known, hit := l.sessions.get(secret, session); hit {
		cur, err := l.readLease(ctx, known.id, &known)
		if err != nil && !errors.Is(err, ErrLeaseNotFound) {
			return Lease{}, Credential{}, false, err
		}
		if err == nil && reusable(cur.rec, now) {
			if cur.rev != known.rev {
				l.sessions.put(secret, session, cur)
			}
			r := cur.rec
			return r.Lease, Credential{Username: r.Username, Password: r.Password, Expires: r.Expires}, true, nil
		}
		// Gone, revoked or past reuse: the session key says whether the
		// session holds another lease now.
		l.sessions.drop(secret, session)
	}
	e, err := l.st.Get(ctx, sessionKey(secret, session))
	if errors.Is(err, store.ErrNotFound) {
		return Lease{}, Credential{}, false, nil
	}
	if err != nil {
		return Lease{}, Credential{}, false, fmt.Errorf("reading session lease: %w", err)
	}
	cur, err := l.readLease(ctx, string(e.Value), nil)
	if errors.Is(err, ErrLeaseNotFound) {
		return Lease{}, Credential{}, false, nil
	}
	if err != nil {
		return Lease{}, Credential{}, false, err
	}
	if !reusable(cur.rec, now) {
		return Lease{}, Credential{}, false, nil
	}
	l.sessions.put(secret, session, cur)
	r := cur.rec
	return r.Lease, Credential{Username: r.Username, Password: r.Password, Expires: r.Expires}, true, nil
}

// Issue returns a credential for secret. If session is not empty and a
// reusable lease of that session exists (see ForSession), its credential is
// returned again; otherwise a new user is created: the lease is recorded in
// state creating, the user is created in the database, and the lease is
// marked active. If creation fails, the user is revoked (in case the
// failure came after the database committed) and the record deleted; if
// even that fails, the record stays creating for the reaper.
//
// Two concurrent calls for the same new session may both create a user;
// the later activation becomes the session's lease and the other stays a
// valid lease until it expires.
func (l *Leases) Issue(ctx context.Context, secret, session string) (Lease, Credential, error) {
	if session != "" {
		lease, cred, ok, err := l.ForSession(ctx, secret, session)
		if err != nil {
			return Lease{}, Credential{}, err
		}
		if ok {
			return lease, cred, nil
		}
	}
	role, err := l.roles.Role(ctx, secret)
	if err != nil {
		return Lease{}, Credential{}, err
	}
	if role.Engine == nil || role.TTL <= 0 || role.MaxTTL < 0 {
		return Lease{}, Credential{}, fmt.Errorf("%w: role %q needs an engine and a positive TTL", ErrInvalidConfig, secret)
	}
	maxTTL := role.MaxTTL
	if maxTTL < role.TTL {
		maxTTL = role.TTL
	}
	username, err := role.Engine.Username(secret)
	if err != nil {
		return Lease{}, Credential{}, fmt.Errorf("choosing username: %w", err)
	}
	idb := make([]byte, 16)
	if _, err := io.ReadFull(l.rand, idb); err != nil {
		return Lease{}, Credential{}, fmt.Errorf("generating lease id: %w", err)
	}
	now := l.now().UTC()
	r := record{Lease: Lease{
		ID:         secret + "/" + hex.EncodeToString(idb),
		Secret:     secret,
		Username:   username,
		Session:    session,
		Issued:     now,
		Expires:    now.Add(role.TTL),
		MaxExpires: now.Add(maxTTL),
		State:      StateCreating,
		Connection: role.Connection,
		Creator:    l.replica,
	}}
	if _, err := store.Update(ctx, l.st, func(v *store.View) error {
		if _, err := v.Get(leaseKey(r.ID)); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("lease id %q already in use", r.ID)
		}
		return putRecord(v, r)
	}); err != nil {
		return Lease{}, Credential{}, fmt.Errorf("recording lease: %w", err)
	}

	cred, err := role.Engine.Create(ctx, Creation{Username: username, Expires: r.Expires})
	if err != nil {
		l.undo(ctx, role.Engine, r)
		return Lease{}, Credential{}, fmt.Errorf("issuing %q: %w", secret, err)
	}

	r.State = StateActive
	r.Password = cred.Password
	_, err = store.Update(ctx, l.st, func(v *store.View) error {
		cur, err := getRecord(v, r.ID)
		if err != nil {
			return err
		}
		if cur.State != StateCreating {
			// The reaper took the lease over while the user was being
			// created; it may have revoked before the user existed.
			return fmt.Errorf("%w: lease %q is %s", ErrLeaseNotActive, r.ID, cur.State)
		}
		if err := putRecord(v, r); err != nil {
			return err
		}
		if session != "" {
			v.Put(sessionKey(secret, session), []byte(r.ID))
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrLeaseNotActive) {
			l.undo(ctx, role.Engine, r)
		}
		// Otherwise the lease stays creating and the reaper removes the
		// user after the grace period.
		return Lease{}, Credential{}, fmt.Errorf("activating lease: %w", err)
	}
	return r.Lease, cred, nil
}

// undo removes the user of a lease whose creation failed and deletes the
// record; if the user cannot be removed, the record is left for the reaper.
func (l *Leases) undo(ctx context.Context, e Engine, r record) {
	ctx = context.WithoutCancel(ctx)
	if err := e.Revoke(ctx, r.Username); err != nil {
		l.log.Warn("undoing failed lease creation; left for the reaper", "lease", r.ID, "username", r.Username, "error", err)
		l.retryLater(ctx, r, err)
		return
	}
	if _, err := store.Update(ctx, l.st, func(v *store.View) error {
		cur, err := getRecord(v, r.ID)
		if errors.Is(err, ErrLeaseNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur.State == StateCreating {
			v.Delete(leaseKey(r.ID))
		}
		return nil
	}); err != nil {
		l.log.Warn("deleting failed lease; left for the reaper", "lease", r.ID, "error", err)
	}
}

// retryLater makes sure the reaper revokes r's user again: the record goes
// (back) to state revoking with the failure counted, even if a reaper had
// marked it revoked while the user did not exist yet (the user can have
// been created after that check). The changed attempt count also stops a
// revocation that is still running elsewhere from marking it revoked.
func (l *Leases) retryLater(ctx context.Context, r record, cause error) {
	now := l.now().UTC()
	_, err := store.Update(ctx, l.st, func(v *store.View) error {
		cur, err := getRecord(v, r.ID)
		if errors.Is(err, ErrLeaseNotFound) {
			cur = r
		} else if err != nil {
			return err
		}
		cur.State = StateRevoking
		cur.Attempts++
		cur.LastError = cause.Error()
		cur.NextAttempt = now.Add(backoff(0, 0, cur.Attempts))
		cur.Revoked = time.Time{}
		cur.Password = ""
		return putRecord(v, cur)
	})
	if err != nil {
		l.log.Error("recording a lease for the reaper to retry failed; its user may outlive it until the database-side expiry", "lease", r.ID, "username", r.Username, "error", err)
	}
}

// Get returns the lease with id.
func (l *Leases) Get(ctx context.Context, id string) (Lease, error) {
	var r record
	_, err := store.Update(ctx, l.st, func(v *store.View) error {
		var err error
		r, err = getRecord(v, id)
		return err
	})
	return r.Lease, err
}

// Renew extends an active lease by increment from now (the role's TTL when
// increment is zero), bounded by its MaxExpires, and moves the database
// user's expiry to match. It returns the updated lease.
func (l *Leases) Renew(ctx context.Context, id string, increment time.Duration) (Lease, error) {
	cur, err := l.Get(ctx, id)
	if err != nil {
		return Lease{}, err
	}
	if cur.State != StateActive {
		return Lease{}, fmt.Errorf("%w: lease %q is %s", ErrLeaseNotActive, id, cur.State)
	}
	role, err := l.roles.Role(ctx, cur.Secret)
	if err != nil {
		return Lease{}, err
	}
	if increment <= 0 {
		increment = role.TTL
	}
	now := l.now().UTC()
	if !now.Before(cur.Expires) {
		return Lease{}, fmt.Errorf("%w: lease %q has expired", ErrLeaseNotActive, id)
	}
	expires := now.Add(increment)
	if expires.After(cur.MaxExpires) {
		expires = cur.MaxExpires
	}
	// The database first: if the record update then fails, the reaper
	// revokes at the old, earlier expiry, which is the safe direction.
	if err := role.Engine.Renew(ctx, cur.Username, expires); err != nil {
		return Lease{}, fmt.Errorf("renewing lease %q: %w", id, err)
	}
	var out Lease
	_, err = store.Update(ctx, l.st, func(v *store.View) error {
		r, err := getRecord(v, id)
		if err != nil {
			return err
		}
		if r.State != StateActive {
			return fmt.Errorf("%w: lease %q is %s", ErrLeaseNotActive, id, r.State)
		}
		r.Expires = expires
		out = r.Lease
		return putRecord(v, r)
	})
	if err != nil {
		return Lease{}, fmt.Errorf("renewing lease %q: %w", id, err)
	}
	return out, nil
}

// Revoke removes the lease's database user and marks the lease revoked.
// Revoking a revoked lease does nothing. On failure the lease stays in
// state revoking with the error recorded, and the reaper retries it.
func (l *Leases) Revoke(ctx context.Context, id string) error {
	var r record
	_, err := store.Update(ctx, l.st, func(v *store.View) error {
		var err error
		r, err = getRecord(v, id)
		if err != nil {
			return err
		}
		if r.State == StateRevoked || r.State == StateRevoking {
			return nil
		}
		r.State = StateRevoking
		// The reaper leaves a revocation in flight alone until then; if
		// this process dies first, the reaper finishes it.
		r.NextAttempt = l.now().UTC().Add(revokeInFlight)
		return putRecord(v, r)
	})
	if err != nil {
		return fmt.Errorf("revoking lease %q: %w", id, err)
	}
	if r.State == StateRevoked {
		return nil
	}
	return l.revoke(ctx, id, 0, 0)
}

// revokeUser removes the database user of l, if it exists, without
// changing the record.
func (l *Leases) revokeUser(ctx context.Context, lease Lease) error {
	role, err := l.roles.Role(ctx, lease.Secret)
	if err != nil {
		return err
	}
	if role.Engine == nil {
		return fmt.Errorf("%w: role %q has no engine", ErrInvalidConfig, lease.Secret)
	}
	return role.Engine.Revoke(ctx, lease.Username)
}

// revokeInFlight is how long the reaper waits before retrying a revocation
// that Revoke started, so that the two do not revoke the same user at once.
const revokeInFlight = time.Minute

// revoke removes the user of a lease in state revoking or creating and
// marks it revoked. On failure it records the error and schedules the next
// attempt after a backoff of base doubled per attempt, at most ceiling.
func (l *Leases) revoke(ctx context.Context, id string, base, ceiling time.Duration) error {
	lease, err := l.Get(ctx, id)
	if err != nil {
		return err
	}
	role, err := l.roles.Role(ctx, lease.Secret)
	if err == nil && role.Engine == nil {
		err = fmt.Errorf("%w: role %q has no engine", ErrInvalidConfig, lease.Secret)
	}
	if err == nil {
		err = role.Engine.Revoke(ctx, lease.Username)
	}
	now := l.now().UTC()
	_, uerr := store.Update(ctx, l.st, func(v *store.View) error {
		r, gerr := getRecord(v, id)
		if gerr != nil {
			return gerr
		}
		if r.State == StateRevoked {
			return nil
		}
		if err != nil {
			r.State = StateRevoking
			r.Attempts++
			r.LastError = err.Error()
			r.NextAttempt = now.Add(backoff(base, ceiling, r.Attempts))
			return putRecord(v, r)
		}
		if r.Attempts != lease.Attempts {
			// A failure was recorded meanwhile (an undo that could not
			// remove a user created after this revocation looked): the
			// user may exist again, so the lease stays for a retry.
			return nil
		}
		r.State = StateRevoked
		r.Revoked = now
		r.Password = ""
		r.NextAttempt = time.Time{}
		if r.Session != "" {
			sk := sessionKey(r.Secret, r.Session)
			if e, gerr := v.Get(sk); gerr == nil && string(e.Value) == r.ID {
				v.Delete(sk)
			}
		}
		return putRecord(v, r)
	})
	if err != nil {
		return fmt.Errorf("revoking lease %q: %w", id, err)
	}
	if uerr != nil {
		return fmt.Errorf("marking lease %q revoked: %w", id, uerr)
	}
	return nil
}

// backoff returns base * 2^(attempts-1), at most ceiling; zero base means
// one second and zero ceiling means ten minutes.
func backoff(base, ceiling time.Duration, attempts int) time.Duration {
	if base <= 0 {
		base = time.Second
	}
	if ceiling <= 0 {
		ceiling = 10 * time.Minute
	}
	d := base
	for i := 1; i < attempts && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// RevokePrefix revokes every lease whose id starts with prefix (for example
// a secret's name followed by "/") that is not yet revoked, and returns how
// many it revoked. It stops at the first failure.
func (l *Leases) RevokePrefix(ctx context.Context, prefix string) (int, error) {
	leases, err := l.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	return l.RevokeAll(ctx, leases)
}

// RevokeAll revokes each of leases that is not yet revoked, in order, and
// returns how many it revoked. It stops at the first failure. Callers that
// authorize each lease first revoke exactly the ones they checked.
func (l *Leases) RevokeAll(ctx context.Context, leases []Lease) (int, error) {
	n := 0
	for _, lease := range leases {
		if lease.State == StateRevoked {
			continue
		}
		if err := l.Revoke(ctx, lease.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// List returns every lease whose id starts with prefix, in id order.
func (l *Leases) List(ctx context.Context, prefix string) ([]Lease, error) {
	var out []Lease
	after := ""
	for {
		es, next, err := l.st.List(ctx, leasePrefix+prefix, after, 256)
		if err != nil {
			return nil, fmt.Errorf("listing leases: %w", err)
		}
		for _, e := range es {
			var r record
			if err := json.Unmarshal(e.Value, &r); err != nil {
				return nil, fmt.Errorf("decoding lease %q: %w", strings.TrimPrefix(e.Key, leasePrefix), err)
			}
			out = append(out, r.Lease)
		}
		if next == "" {
			return out, nil
		}
		after = next
	}
}

// purge deletes the record of a revoked lease whose revocation happened
// before cutoff, and reports whether it did.
func (l *Leases) purge(ctx context.Context, id string, cutoff time.Time) (bool, error) {
	purged := false
	_, err := store.Update(ctx, l.st, func(v *store.View) error {
		purged = false
		r, err := getRecord(v, id)
		if err != nil {
			return err
		}
		if r.State != StateRevoked || !r.Revoked.Before(cutoff) {
			return nil
		}
		v.Delete(leaseKey(id))
		purged = true
		return nil
	})
	if errors.Is(err, ErrLeaseNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("purging lease %q: %w", id, err)
	}
	return purged, nil
}
