package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/store"
)

// Storage layout, all under "images/" in the (encrypted) store:
//
//	images/keys/<keyId>        Key (JSON)
//	images/digest/<digest>     the digest's active key id
//	images/revoked/<digest>    revocation (JSON)
//	images/revocations-gen     generation counter, bumped with every revocation change
//	images/jti/<jti>           replay-cache entry, {"exp": unix seconds}
//
// Register keeps "one active key per digest" by reading and writing the
// digest index in one compare-and-swap transaction.
const (
	keysPrefix       = "images/keys/"
	digestPrefix     = "images/digest/"
	revokedPrefix    = "images/revoked/"
	revocationGenKey = "images/revocations-gen"
	jtiPrefix        = "images/jti/"
)

// DefaultPollInterval is how often Run reads revocations made by other
// replicas when Config.PollInterval is zero.
const DefaultPollInterval = 250 * time.Millisecond

// MaxPollInterval is the longest Config.PollInterval accepted, so that
// every replica enforces a revocation within a second.
const MaxPollInterval = 500 * time.Millisecond

// MaxTTL is the longest key lifetime Register accepts (ten years).
const MaxTTL = 10 * 365 * 24 * time.Hour

// usageFlushInterval is how often Run writes the usage counters.
const usageFlushInterval = time.Second

// sweepInterval is how often Run drops expired replay-cache entries.
const sweepInterval = time.Minute

var repositoryFormat = regexp.MustCompile(`^[a-z0-9]+([._:-][a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$`)

// Roles looks roles up by ARN; *iam.Entities implements it. Its error for
// a role that does not exist wraps iam.ErrNoSuchEntity.
type Roles interface {
	RoleByARN(ctx context.Context, arn string) (iam.Role, error)
}

// Config configures New. Store, Roles and AccountID are required.
type Config struct {
	// Store holds the keys, revocations, usage counters and the replay
	// cache; in production the encryption barrier.
	Store store.Store
	// Roles checks that a registered role exists.
	Roles Roles
	// AccountID is the account the server serves; the STS audience of
	// assertions is "sigil:image:" + AccountID.
	AccountID string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives operational messages (never a key or an assertion);
	// nil discards.
	Logger *slog.Logger
	// PollInterval is how often Run syncs revocations; zero means
	// DefaultPollInterval, at most MaxPollInterval.
	PollInterval time.Duration
}

// Registry is the server side of sealed images: the key registry,
// revocations and the assertion verifier. It is safe for concurrent use.
type Registry struct {
	store    store.Store
	roles    Roles
	audience string
	now      func() time.Time
	log      *slog.Logger
	poll     time.Duration

	revoked atomic.Pointer[revocationSet]
	syncMu  sync.Mutex

	replay replayCache
	usage  sync.Map // key id -> *usageCounter
}

// New checks cfg, loads the revocations and returns a Registry. Call Run
// in the background to keep revocations from other replicas current.
func New(ctx context.Context, cfg Config) (*Registry, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("images: Config.Store is required")
	case cfg.Roles == nil:
		return nil, errors.New("images: Config.Roles is required")
	case cfg.AccountID == "":
		return nil, errors.New("images: Config.AccountID is required")
	case cfg.PollInterval < 0 || cfg.PollInterval > MaxPollInterval:
		return nil, fmt.Errorf("images: PollInterval %s is not between 0 and %s", cfg.PollInterval, MaxPollInterval)
	}
	r := &Registry{store: cfg.Store, roles: cfg.Roles, audience: Issuer + ":" + cfg.AccountID,
		now: cfg.Now, log: cfg.Logger, poll: cfg.PollInterval}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.poll == 0 {
		r.poll = DefaultPollInterval
	}
	r.replay.store = cfg.Store
	r.replay.inflight = map[string]bool{}
	r.revoked.Store(&revocationSet{rev: -1})
	if err := r.syncRevocations(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Audience returns the aud every assertion must carry.
func (r *Registry) Audience() string { return r.audience }

// Register validates req and registers its public key for the digest, on
// behalf of createdBy (the caller's ARN). With req.Reseal false it fails
// with ErrDigestExists when the digest has an active key; with Reseal true
// that key is marked replaced and stops working. A revoked digest cannot
// get a new key (ErrInvalidRequest).
func (r *Registry) Register(ctx context.Context, createdBy string, req *RegisterRequest) (*RegisterResponse, error) {
	switch {
	case !ValidDigest(req.Digest):
		return nil, fmt.Errorf("%w: %q must be sha256: followed by 64 lower-case hex digits", ErrInvalidDigest, truncate(req.Digest))
	case len(req.Repository) > 255 || !utf8.ValidString(req.Repository) || !repositoryFormat.MatchString(req.Repository):
		return nil, fmt.Errorf("%w: repository %q is not an image repository such as registry.example.com/team/app", ErrInvalidRequest, truncate(req.Repository))
	case req.TTLSeconds < 0 || time.Duration(req.TTLSeconds) > MaxTTL/time.Second:
		return nil, fmt.Errorf("%w: ttlSeconds must be between 0 (no expiry) and %d", ErrInvalidRequest, int64(MaxTTL/time.Second))
	}
	pub, err := ParsePublicKey(req.PublicKey)
	if err != nil {
		return nil, err
	}
	role, err := r.roles.RoleByARN(ctx, req.RoleARN)
	if err != nil {
		if errors.Is(err, iam.ErrNoSuchEntity) || errors.Is(err, iam.ErrInvalidEntityInput) {
			return nil, fmt.Errorf("%w: role %q does not exist", ErrInvalidRequest, truncate(req.RoleARN))
		}
		return nil, fmt.Errorf("looking up role %q: %w", req.RoleARN, err)
	}
	id := KeyIDOf(pub)
	now := r.now().UTC()
	k := &Key{ID: id, Digest: req.Digest, Repository: req.Repository, RoleARN: role.ARN, PublicKey: pub,
		Created: now, CreatedBy: createdBy}
	if req.TTLSeconds > 0 {
		k.Expires = now.Add(time.Duration(req.TTLSeconds) * time.Second).Truncate(time.Second)
	}
	var replaced string
	_, err = store.Update(ctx, r.store, func(v *store.View) error {
		replaced = ""
		if _, err := v.Get(revokedPrefix + req.Digest); err == nil {
			return fmt.Errorf("%w: digest %s was revoked; seal the image again for a new digest", ErrInvalidRequest, req.Digest)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		e, err := v.Get(digestPrefix + req.Digest)
		switch {
		case err == nil:
			old, err := getKey(v, string(e.Value))
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if old != nil && old.active(now) {
				if !req.Reseal {
					return fmt.Errorf("%w: %s (key %s); pass reseal to replace it", ErrDigestExists, req.Digest, old.ID)
				}
				old.Replaced = now
				if err := putKey(v, old); err != nil {
					return err
				}
				replaced = old.ID
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if _, err := v.Get(keysPrefix + k.ID); err == nil {
			return fmt.Errorf("%w: key %s is already registered; seal with a fresh key", ErrDigestExists, k.ID)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := putKey(v, k); err != nil {
			return err
		}
		v.Put(digestPrefix+req.Digest, []byte(k.ID))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registering a key for %s: %w", req.Digest, err)
	}
	r.log.Info("images: key registered", "key_id", k.ID, "digest", k.Digest, "repository", k.Repository,
		"role", k.RoleARN, "created_by", createdBy, "replaced", replaced)
	resp := &RegisterResponse{KeyID: k.ID, Digest: k.Digest, Repository: k.Repository, RoleARN: k.RoleARN,
		Audience: r.audience, Issuer: Issuer}
	if !k.Expires.IsZero() {
		resp.Expires = &k.Expires
	}
	return resp, nil
}

// Deregister removes the key id and, when it is its digest's active key,
// the digest's index entry: for rolling back a registration whose image
// was never written. ErrNotFound when there is no such key.
func (r *Registry) Deregister(ctx context.Context, keyID string) error {
	if !ValidKeyID(keyID) {
		return fmt.Errorf("%w: %q is not an image key id", ErrInvalidKey, truncate(keyID))
	}
	_, err := store.Update(ctx, r.store, func(v *store.View) error {
		k, err := getKey(v, keyID)
		if err != nil {
			return err
		}
		v.Delete(keysPrefix + keyID)
		if e, err := v.Get(digestPrefix + k.Digest); err == nil && string(e.Value) == keyID {
			v.Delete(digestPrefix + k.Digest)
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deregistering %s: %w", keyID, err)
	}
	r.usage.Delete(keyID)
	r.log.Info("images: key deregistered", "key_id", keyID)
	return nil
}

// Key returns the registered key with that id, or an error wrapping
// ErrNotFound.
func (r *Registry) Key(ctx context.Context, keyID string) (*Key, error) {
	if !ValidKeyID(keyID) {
		return nil, fmt.Errorf("%w: %q is not an image key id", ErrNotFound, truncate(keyID))
	}
	e, err := r.store.Get(ctx, keysPrefix+keyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, keyID)
	}
	if err != nil {
		return nil, fmt.Errorf("reading image key %s: %w", keyID, err)
	}
	return decodeKey(keyID, e.Value)
}

// KeyForDigest returns the key the digest's index names (its active or
// last key), or an error wrapping ErrNotFound.
func (r *Registry) KeyForDigest(ctx context.Context, digest string) (*Key, error) {
	if !ValidDigest(digest) {
		return nil, fmt.Errorf("%w: %q must be sha256: followed by 64 lower-case hex digits", ErrInvalidDigest, truncate(digest))
	}
	e, err := r.store.Get(ctx, digestPrefix+digest)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no key for %s", ErrNotFound, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the key of %s: %w", digest, err)
	}
	return r.Key(ctx, string(e.Value))
}

// List returns every registered key with its revocation state and usage
// (including counts not yet flushed by this replica), newest first.
func (r *Registry) List(ctx context.Context) ([]ImageInfo, error) {
	revs := map[string]revocationRecord{}
	if err := r.eachRevocation(ctx, func(rec *revocationRecord) { revs[rec.Digest] = *rec }); err != nil {
		return nil, err
	}
	out := []ImageInfo{}
	after := ""
	for {
		ents, next, err := r.store.List(ctx, keysPrefix, after, 500)
		if err != nil {
			return nil, fmt.Errorf("listing image keys: %w", err)
		}
		for _, e := range ents {
			k, err := decodeKey(e.Key[len(keysPrefix):], e.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, r.info(k, revs))
		}
		if next == "" {
			break
		}
		after = next
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

func (r *Registry) info(k *Key, revs map[string]revocationRecord) ImageInfo {
	in := ImageInfo{Digest: k.Digest, Repository: k.Repository, RoleARN: k.RoleARN, KeyID: k.ID,
		Created: k.Created, CreatedBy: k.CreatedBy, Exchanges: k.Exchanges}
	if !k.Expires.IsZero() {
		t := k.Expires
		in.Expires = &t
	}
	last := k.LastUsed
	if u, ok := r.usage.Load(k.ID); ok {
		c := u.(*usageCounter)
		in.Exchanges += c.n.Load()
		if t := time.Unix(0, c.last.Load()).UTC(); c.last.Load() != 0 && t.After(last) {
			last = t
		}
	}
	if !last.IsZero() {
		in.LastUsed = &last
	}
	if rec, ok := revs[k.Digest]; ok {
		t := rec.At
		in.Revoked, in.RevokedAt, in.Reason = true, &t, rec.Reason
	} else if !k.Replaced.IsZero() {
		t := k.Replaced
		in.Revoked, in.RevokedAt, in.Reason = true, &t, "replaced by a reseal"
	}
	return in
}

func getKey(v *store.View, keyID string) (*Key, error) {
	e, err := v.Get(keysPrefix + keyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, keyID)
	}
	if err != nil {
		return nil, err
	}
	return decodeKey(keyID, e.Value)
}

func putKey(v *store.View, k *Key) error {
	b, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("encoding image key %s: %w", k.ID, err)
	}
	v.Put(keysPrefix+k.ID, b)
	return nil
}

func decodeKey(keyID string, b []byte) (*Key, error) {
	var k Key
	if err := json.Unmarshal(b, &k); err != nil || k.ID != keyID || len(k.PublicKey) != 32 {
		return nil, fmt.Errorf("decoding image key %s: corrupt record", keyID)
	}
	return &k, nil
}
