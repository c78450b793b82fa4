package authn

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"sigil.dev/sigil/internal/store"
)

// Errors of the access-key registry.
var (
	// ErrUnknownAccessKey means no active access key has that id. Callers
	// must not tell the client whether the key exists but is inactive.
	ErrUnknownAccessKey = errors.New("authn: unknown access key")
)

// keyPrefix is where access keys live in the (barrier-encrypted) store.
const keyPrefix = "iam/accesskeys/"

// accessKeyRecord is the stored form of one access key.
type accessKeyRecord struct {
	Format      int       `json:"v"`
	AccessKeyID string    `json:"id"`
	Secret      string    `json:"secret"`
	Status      string    `json:"status"` // "Active" or "Inactive"
	Kind        Kind      `json:"kind"`
	AccountID   string    `json:"account"`
	UserName    string    `json:"user,omitempty"`
	UserID      string    `json:"userId,omitempty"`
	Created     time.Time `json:"created"`
}

// AccessKey is a newly created key pair. It is returned once; only the
// store keeps the secret afterwards.
type AccessKey struct {
	AccessKeyID     string
	SecretAccessKey Secret
}

// Secret is a secret string that refuses to be printed.
type Secret string

// String implements fmt.Stringer and prints REDACTED.
func (Secret) String() string { return "REDACTED" }

// GoString implements fmt.GoStringer and prints REDACTED.
func (Secret) GoString() string { return "REDACTED" }

// MarshalJSON prints REDACTED, so a Secret never lands in JSON by accident.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// Reveal returns the secret itself, for the one place that must write it.
func (s Secret) Reveal() string { return string(s) }

// Keys resolves access key ids to principals and secrets. It caches each
// record for CacheTTL, so disabling or deleting a key takes effect on every
// replica within that time.
type Keys struct {
	store store.Store
	now   func() time.Time
	ttl   time.Duration
	cache sync.Map // access key id -> cachedKey
}

type cachedKey struct {
	rec     *accessKeyRecord
	fetched time.Time
}

// DefaultCacheTTL is how long Keys trusts a cached access key record.
const DefaultCacheTTL = time.Second

// NewKeys returns a registry over s (which must be the barrier, so secrets
// are encrypted at rest). now defaults to time.Now.
func NewKeys(s store.Store, now func() time.Time) *Keys {
	if now == nil {
		now = time.Now
	}
	return &Keys{store: s, now: now, ttl: DefaultCacheTTL}
}

func (k *Keys) lookup(ctx context.Context, id string) (*accessKeyRecord, error) {
	if v, ok := k.cache.Load(id); ok {
		c := v.(cachedKey)
		if k.now().Sub(c.fetched) < k.ttl {
			return c.rec, nil
		}
	}
	if !validAccessKeyID(id) {
		return nil, ErrUnknownAccessKey
	}
	e, err := k.store.Get(ctx, keyPrefix+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownAccessKey
	}
	if err != nil {
		return nil, fmt.Errorf("reading access key %s: %w", id, err)
	}
	var rec accessKeyRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return nil, fmt.Errorf("decoding access key %s: %w", id, err)
	}
	if rec.Status != "Active" {
		return nil, ErrUnknownAccessKey
	}
	k.cache.Store(id, cachedKey{rec: &rec, fetched: k.now()})
	return &rec, nil
}

// SecretKey returns the secret access key of an active access key id, or an
// error wrapping ErrUnknownAccessKey. It implements sigv4.Credentials.
func (k *Keys) SecretKey(ctx context.Context, accessKeyID string) (string, error) {
	rec, err := k.lookup(ctx, accessKeyID)
	if err != nil {
		return "", err
	}
	return rec.Secret, nil
}

// Principal returns the principal an active access key belongs to.
func (k *Keys) Principal(ctx context.Context, accessKeyID string) (*Principal, error) {
	rec, err := k.lookup(ctx, accessKeyID)
	if err != nil {
		return nil, err
	}
	p := &Principal{Kind: rec.Kind, AccountID: rec.AccountID, AccessKeyID: rec.AccessKeyID}
	switch rec.Kind {
	case KindRoot:
		p.ARN = "arn:aws:iam::" + rec.AccountID + ":root"
		p.ID = rec.AccountID
	case KindIAMUser:
		p.ARN = "arn:aws:iam::" + rec.AccountID + ":user/" + rec.UserName
		p.ID = rec.UserID
		p.Name = rec.UserName
	default:
		return nil, fmt.Errorf("access key %s: unsupported principal kind %q", accessKeyID, rec.Kind)
	}
	return p, nil
}

// CreateRootKey creates an access key for the account root, failing if one
// with the same id exists.
func (k *Keys) CreateRootKey(ctx context.Context, rnd io.Reader, accountID string) (AccessKey, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	id, secret, err := NewKeyPair(rnd, "AKIA")
	if err != nil {
		return AccessKey{}, err
	}
	rec := accessKeyRecord{Format: 1, AccessKeyID: id, Secret: secret, Status: "Active",
		Kind: KindRoot, AccountID: accountID, Created: k.now().UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return AccessKey{}, err
	}
	if _, err := k.store.Txn(ctx, []store.Compare{{Key: keyPrefix + id, Revision: store.MustNotExist}},
		[]store.Op{store.Put(keyPrefix+id, b)}); err != nil {
		return AccessKey{}, fmt.Errorf("storing root access key: %w", err)
	}
	return AccessKey{AccessKeyID: id, SecretAccessKey: Secret(secret)}, nil
}

const (
	idAlphabet     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

// NewKeyPair returns an access key id (prefix + 16 characters of A-Z2-7, as
// AWS formats them) and a 40-character secret, drawn uniformly from rnd.
func NewKeyPair(rnd io.Reader, prefix string) (id, secret string, err error) {
	idPart, err := randomString(rnd, idAlphabet, 16)
	if err != nil {
		return "", "", err
	}
	secret, err = randomString(rnd, secretAlphabet, 40)
	if err != nil {
		return "", "", err
	}
	return prefix + idPart, secret, nil
}

// randomString draws n characters uniformly from alphabet, whose length must
// be a power of two at most 256, so masking introduces no bias.
func randomString(rnd io.Reader, alphabet string, n int) (string, error) {
	if l := len(alphabet); l == 0 || l > 256 || l&(l-1) != 0 {
		panic("authn: internal error: alphabet length must be a power of two")
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(rnd, buf); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	mask := byte(len(alphabet) - 1)
	for i, b := range buf {
		buf[i] = alphabet[b&mask]
	}
	return string(buf), nil
}

func validAccessKeyID(id string) bool {
	if len(id) != 20 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Access key statuses, as IAM spells them.
const (
	StatusActive   = "Active"
	StatusInactive = "Inactive"
)

// KeyInfo describes a stored access key without its secret.
type KeyInfo struct {
	AccessKeyID string
	// Status is StatusActive or StatusInactive.
	Status    string
	Kind      Kind
	AccountID string
	// UserName and UserID name the IAM user owning the key; empty for root
	// keys.
	UserName string
	UserID   string
	Created  time.Time
}

func (r *accessKeyRecord) info() KeyInfo {
	return KeyInfo{AccessKeyID: r.AccessKeyID, Status: r.Status, Kind: r.Kind, AccountID: r.AccountID,
		UserName: r.UserName, UserID: r.UserID, Created: r.Created}
}

// The functions below change access keys inside the caller's store.Update
// transaction, so that the IAM user record (which lists its keys) and the
// key records change together or not at all. They leave the lookup cache to
// expire on its own (within CacheTTL) unless the caller calls Forget after
// the transaction committed.

// CreateUserKey creates an active access key for the IAM user userName
// (unique id userID) of accountID, drawing the id and secret from rnd
// (crypto/rand when nil). The key exists once v's transaction commits; the
// secret is returned once and kept only in the store afterwards.
func (k *Keys) CreateUserKey(v *store.View, rnd io.Reader, accountID, userName, userID string) (AccessKey, KeyInfo, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if userName == "" || userID == "" {
		return AccessKey{}, KeyInfo{}, errors.New("creating user access key: user name and id are required")
	}
	id, secret, err := NewKeyPair(rnd, "AKIA")
	if err != nil {
		return AccessKey{}, KeyInfo{}, err
	}
	if _, err := v.Get(keyPrefix + id); err == nil {
		return AccessKey{}, KeyInfo{}, fmt.Errorf("creating user access key: id %s already exists", id)
	} else if !errors.Is(err, store.ErrNotFound) {
		return AccessKey{}, KeyInfo{}, fmt.Errorf("creating user access key: %w", err)
	}
	rec := accessKeyRecord{Format: 1, AccessKeyID: id, Secret: secret, Status: StatusActive,
		Kind: KindIAMUser, AccountID: accountID, UserName: userName, UserID: userID,
		Created: k.now().UTC().Truncate(time.Second)}
	b, err := json.Marshal(rec)
	if err != nil {
		return AccessKey{}, KeyInfo{}, err
	}
	v.Put(keyPrefix+id, b)
	return AccessKey{AccessKeyID: id, SecretAccessKey: Secret(secret)}, rec.info(), nil
}

// ListUserKeys returns the metadata of the access keys with the given ids,
// in that order, active or not. An id without a record is an error
// wrapping ErrUnknownAccessKey.
func (k *Keys) ListUserKeys(v *store.View, ids []string) ([]KeyInfo, error) {
	out := make([]KeyInfo, 0, len(ids))
	for _, id := range ids {
		rec, err := readKeyRecord(v, id)
		if err != nil {
			return nil, err
		}
		out = append(out, rec.info())
	}
	return out, nil
}

// DeleteKey removes the access key id, failing with ErrUnknownAccessKey when
// it does not exist.
func (k *Keys) DeleteKey(v *store.View, id string) error {
	if _, err := readKeyRecord(v, id); err != nil {
		return err
	}
	v.Delete(keyPrefix + id)
	return nil
}

// UpdateKeyStatus sets the status of access key id to StatusActive or
// StatusInactive. An inactive key authenticates nothing.
func (k *Keys) UpdateKeyStatus(v *store.View, id, status string) error {
	if status != StatusActive && status != StatusInactive {
		return fmt.Errorf("updating access key %s: invalid status %q", id, status)
	}
	rec, err := readKeyRecord(v, id)
	if err != nil {
		return err
	}
	if rec.Status == status {
		return nil
	}
	rec.Status = status
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	v.Put(keyPrefix+id, b)
	return nil
}

// Forget drops id from the lookup cache, so that a deletion or status change
// committed by this process takes effect here at once (other replicas see
// it within CacheTTL).
func (k *Keys) Forget(id string) { k.cache.Delete(id) }

func readKeyRecord(v *store.View, id string) (*accessKeyRecord, error) {
	if !validAccessKeyID(id) {
		return nil, ErrUnknownAccessKey
	}
	e, err := v.Get(keyPrefix + id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("access key %s: %w", id, ErrUnknownAccessKey)
	}
	if err != nil {
		return nil, fmt.Errorf("reading access key %s: %w", id, err)
	}
	var rec accessKeyRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return nil, fmt.Errorf("decoding access key %s: %w", id, err)
	}
	return &rec, nil
}
