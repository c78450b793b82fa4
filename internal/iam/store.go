package iam

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/store"
)

// EntitiesConfig configures [NewEntities]. Store, AccountID and Keys are
// required.
type EntitiesConfig struct {
	// Store holds the entities under "iam/". In production it is the
	// encryption barrier; this package never encrypts.
	Store store.Store
	// AccountID is the 12-digit account that owns every entity.
	AccountID string
	// Keys is the access-key registry; IAM users' keys are created in it.
	Keys *authn.Keys
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness for unique ids and access keys; nil means
	// crypto/rand.Reader. It must be cryptographically secure in
	// production.
	Rand io.Reader
	// CacheTTL bounds how long IdentityPolicies trusts what it resolved
	// for a principal without re-reading the store, and so how long a change
	// made by another replica can take to apply here. Changes made through
	// this Entities apply at once. Zero means DefaultPolicyCacheTTL.
	CacheTTL time.Duration
}

// DefaultPolicyCacheTTL is the default EntitiesConfig.CacheTTL: one second.
const DefaultPolicyCacheTTL = time.Second

// Entities stores IAM roles, users, managed policies and OIDC providers, and
// resolves the policies of a principal for the evaluator. It is safe for
// concurrent use, and several Entities (one per replica) may share one store:
// every read-modify-write runs in store.Update, and uniqueness is guarded by
// compare-and-swap on the name's key.
type Entities struct {
	store   store.Store
	account string
	keys    *authn.Keys
	now     func() time.Time
	rand    io.Reader
	cache   *policyCache
}

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// NewEntities checks cfg and returns an Entities. It does no I/O.
func NewEntities(cfg EntitiesConfig) (*Entities, error) {
	switch {
	case cfg.Store == nil:
		return nil, fmt.Errorf("%w: Store is required", ErrInvalidEntitiesConfig)
	case cfg.Keys == nil:
		return nil, fmt.Errorf("%w: Keys is required", ErrInvalidEntitiesConfig)
	case !accountIDPattern.MatchString(cfg.AccountID):
		return nil, fmt.Errorf("%w: AccountID %q is not 12 digits", ErrInvalidEntitiesConfig, cfg.AccountID)
	case cfg.CacheTTL < 0:
		return nil, fmt.Errorf("%w: negative CacheTTL", ErrInvalidEntitiesConfig)
	}
	e := &Entities{store: cfg.Store, account: cfg.AccountID, keys: cfg.Keys, now: cfg.Now}
	if e.now == nil {
		e.now = time.Now
	}
	r := cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	e.rand = &lockedRand{r: r}
	ttl := cfg.CacheTTL
	if ttl == 0 {
		ttl = DefaultPolicyCacheTTL
	}
	e.cache = newPolicyCache(ttl)
	return e, nil
}

// AccountID returns the account that owns the entities.
func (e *Entities) AccountID() string { return e.account }

// timestamp is the current time as IAM records it: UTC, whole seconds.
func (e *Entities) timestamp() time.Time { return e.now().UTC().Truncate(time.Second) }

// update runs fn in a store transaction and, once it committed, drops the
// cached resolutions so the change applies to this replica's next decision.
func (e *Entities) update(ctx context.Context, fn func(v *store.View) error) error {
	rev, err := store.Update(ctx, e.store, fn)
	if err != nil {
		return err
	}
	if rev != 0 {
		e.cache.invalidate()
	}
	return nil
}

// read runs fn over the store's current state; fn must not write. (Reads
// of one call are not a snapshot: each Get sees the latest commit.)
func (e *Entities) read(ctx context.Context, fn func(v *store.View) error) error {
	_, err := store.Update(ctx, e.store, fn)
	return err
}

// Record encoding.

func getJSON(v *store.View, key string, dst any) (bool, error) {
	ent, err := v.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := decodeRecord(key, ent.Value, dst); err != nil {
		return false, err
	}
	return true, nil
}

func decodeRecord(key string, b []byte, dst any) error {
	if err := json.Unmarshal(b, dst); err != nil {
		return corrupt(key, err)
	}
	var f struct {
		V int `json:"v"`
	}
	_ = json.Unmarshal(b, &f)
	if f.V != recordFormat {
		return corrupt(key, fmt.Errorf("unsupported record format %d", f.V))
	}
	return nil
}

func putJSON(v *store.View, key string, rec any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	if len(b) > store.MaxValueSize/2 {
		// The barrier's envelope must still fit; IAM's own limits keep
		// records far below this.
		return entityErr(ErrLimitExceeded, "The entity is too large to store.")
	}
	v.Put(key, b)
	return nil
}

// Pagination.

// Page selects a page of a listing: Marker is the opaque value a previous
// page returned ("" for the first page) and MaxItems the page size (1 to
// 1000; 0 means 100, IAM's default).
type Page struct {
	Marker   string
	MaxItems int
}

// DefaultMaxItems is the page size when Page.MaxItems is zero.
const DefaultMaxItems = 100

func (p Page) size() int {
	if p.MaxItems <= 0 {
		return DefaultMaxItems
	}
	return p.MaxItems
}

// after decodes the marker into the sort key listing continues after.
func (p Page) after() (string, error) {
	if p.Marker == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(p.Marker)
	if err != nil || len(b) == 0 {
		return "", entityErr(ErrInvalidEntityInput, "Invalid Marker.")
	}
	return string(b), nil
}

func encodeMarker(sortKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(sortKey))
}

// pageOf returns the items of a sorted in-record list that follow the page's
// marker, the next marker ("" on the last page) and an error for a bad
// marker.
func pageOf[T any](items []T, key func(T) string, p Page) ([]T, string, error) {
	after, err := p.after()
	if err != nil {
		return nil, "", err
	}
	start := 0
	if after != "" {
		for start < len(items) && key(items[start]) <= after {
			start++
		}
	}
	rest := items[start:]
	if len(rest) <= p.size() {
		return cloneSlice(rest), "", nil
	}
	page := cloneSlice(rest[:p.size()])
	return page, encodeMarker(key(page[len(page)-1])), nil
}

// listRecords pages through the records under prefix in key order, decoding
// each into a new T and keeping those keep accepts, until the page is full.
// It returns the page and the marker of the next one.
func listRecords[T any](ctx context.Context, s store.Store, prefix string, p Page, keep func(*T) bool) ([]*T, string, error) {
	after, err := p.after()
	if err != nil {
		return nil, "", err
	}
	cursor := ""
	if after != "" {
		cursor = prefix + after
	}
	want := p.size()
	var out []*T
	var lastKey string
	for {
		ents, next, err := s.List(ctx, prefix, cursor, 200)
		if err != nil {
			return nil, "", fmt.Errorf("listing %s: %w", prefix, err)
		}
		for _, ent := range ents {
			rec := new(T)
			if err := decodeRecord(ent.Key, ent.Value, rec); err != nil {
				return nil, "", err
			}
			if keep != nil && !keep(rec) {
				continue
			}
			if len(out) == want {
				// One more match exists: the page is truncated.
				return out, encodeMarker(strings.TrimPrefix(lastKey, prefix)), nil
			}
			out = append(out, rec)
			lastKey = ent.Key
		}
		if next == "" {
			return out, "", nil
		}
		cursor = next
	}
}
