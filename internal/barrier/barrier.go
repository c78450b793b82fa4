package barrier

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"sigil.dev/sigil/internal/store"
)

// ReservedPrefix is the key prefix the barrier keeps for itself in the inner
// store. Callers get store.ErrInvalidKey for keys under it, and List never
// returns them.
const ReservedPrefix = "barrier/"

// maxRotateAttempts bounds Rotate's compare-and-swap retries when other
// replicas rotate at the same moment.
const maxRotateAttempts = 8

// Options configures a Barrier. The zero value is ready for production use.
type Options struct {
	// Rand is the source of data keys, nonces and generated key-encryption
	// keys. nil means crypto/rand.Reader; anything else must be a
	// cryptographically secure source outside tests.
	Rand io.Reader
	// Now returns the current time, recorded as each data key's install
	// time. nil means time.Now.
	Now func() time.Time
	// Logger receives lifecycle events (initialise, unseal, seal, rotate)
	// and authentication failures with the storage key involved. It never
	// receives key material or values. nil discards everything.
	Logger *slog.Logger
}

// Barrier is a store.Store that encrypts every value it writes to an inner
// store and decrypts every value it reads (see the package comment for the
// formats). Keys are stored as given.
//
// A new Barrier is sealed. Initialize (once per inner store) or Unseal loads
// the keyring; Seal forgets it again. All methods are safe for concurrent
// use. A Barrier prints as REDACTED.
type Barrier struct {
	redacted

	inner store.Store
	rand  io.Reader
	now   func() time.Time
	log   *slog.Logger
	aad   aadPool

	// mu serialises every change of state: Initialize, Unseal, Seal,
	// Rotate and keyring reloads. The read and write paths never take it.
	mu     sync.Mutex
	state  atomic.Pointer[state] // nil while sealed
	closed atomic.Bool
}

// state is everything an unsealed barrier holds. It is immutable once
// published, except that wipe zeroes the key material of a state that has
// been replaced (under Barrier.mu; the read path uses only the AEADs).
type state struct {
	redacted
	kek  secretKey
	cfg  shareConfig
	ring *keyring
	rev  int64 // revision of the keyring entry this state was built from

	aeads      map[uint32]cipher.AEAD
	activeTerm uint32
	active     cipher.AEAD

	// Status figures, copied so Status never reads ring concurrently with
	// wipe.
	nkeys     int
	installed time.Time
}

func (s *state) wipe() {
	s.kek.wipe()
	s.ring.wipe()
}

// newState builds the published state for ring. It copies kek; ring becomes
// owned by the state.
func newState(kek *secretKey, cfg shareConfig, ring *keyring, rev int64) (*state, error) {
	aeads, err := ring.aeads()
	if err != nil {
		return nil, err
	}
	return &state{
		kek:        *kek,
		cfg:        cfg,
		ring:       ring,
		rev:        rev,
		aeads:      aeads,
		activeTerm: ring.active,
		active:     aeads[ring.active],
		nkeys:      len(ring.keys),
		installed:  ring.find(ring.active).installed,
	}, nil
}

// New returns a sealed Barrier over inner. The Barrier owns inner from now
// on: Close closes it.
func New(inner store.Store, opts Options) *Barrier {
	b := &Barrier{inner: inner, rand: opts.Rand, now: opts.Now, log: opts.Logger}
	if b.rand == nil {
		b.rand = rand.Reader
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b
}

// install publishes st and wipes the state it replaces. b.mu must be held.
func (b *Barrier) install(st *state) {
	if old := b.state.Swap(st); old != nil {
		old.wipe()
	}
}

// kekFrom copies a caller's key-encryption key into a secretKey.
func kekFrom(kek []byte) (secretKey, error) {
	var k secretKey
	if len(kek) != keySize {
		return k, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidKEK, len(kek), keySize)
	}
	copy(k[:], kek)
	return k, nil
}

// Initialized reports whether the inner store holds a keyring. It works
// while sealed.
func (b *Barrier) Initialized(ctx context.Context) (bool, error) {
	if b.closed.Load() {
		return false, store.ErrClosed
	}
	_, err := b.inner.Get(ctx, keyringKey)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("reading keyring: %w", err)
	}
}

// Initialize creates the keyring with one data key (term 1), seals it under
// kek (32 bytes) and writes it to the inner store, leaving the barrier
// unsealed. It fails with ErrAlreadyInitialized if a keyring exists, even one
// written concurrently by another Barrier over the same store: exactly one
// Initialize wins. The barrier keeps a copy of kek while unsealed; the
// caller may wipe its own.
func (b *Barrier) Initialize(ctx context.Context, kek []byte) error {
	k, err := kekFrom(kek)
	defer k.wipe()
	if err != nil {
		return err
	}
	return b.initialize(ctx, &k, shareConfig{})
}

func (b *Barrier) initialize(ctx context.Context, kek *secretKey, cfg shareConfig) error {
	if b.closed.Load() {
		return store.ErrClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state.Load() != nil {
		return ErrAlreadyInitialized
	}
	k, err := newKey(b.rand, 1, b.now())
	if err != nil {
		return err
	}
	ring := &keyring{active: 1, keys: []dataKey{k}}
	k.key.wipe()
	blob, err := sealKeyring(kek, b.rand, cfg, ring)
	if err != nil {
		ring.wipe()
		return err
	}
	rev, err := b.inner.Txn(ctx,
		[]store.Compare{{Key: keyringKey, Revision: store.MustNotExist}},
		[]store.Op{store.Put(keyringKey, blob)})
	if err != nil {
		ring.wipe()
		if errors.Is(err, store.ErrConflict) {
			return ErrAlreadyInitialized
		}
		return fmt.Errorf("writing keyring: %w", err)
	}
	st, err := newState(kek, cfg, ring, rev)
	if err != nil {
		ring.wipe()
		return err
	}
	b.install(st)
	b.log.Info("barrier initialized", "active_term", st.activeTerm, "unseal_shares", cfg.shares, "unseal_threshold", cfg.threshold)
	return nil
}

// Unseal reads the keyring from the inner store and opens it with kek (32
// bytes). It returns an error wrapping ErrNotInitialized if there is no
// keyring and ErrWrongKey if kek does not open it; the barrier's state is
// unchanged on error (a sealed barrier stays sealed). Unsealing an unsealed
// barrier checks kek again and picks up keys added by other replicas.
func (b *Barrier) Unseal(ctx context.Context, kek []byte) error {
	k, err := kekFrom(kek)
	defer k.wipe()
	if err != nil {
		return err
	}
	if b.closed.Load() {
		return store.ErrClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.inner.Get(ctx, keyringKey)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotInitialized
	}
	if err != nil {
		return fmt.Errorf("reading keyring: %w", err)
	}
	cfg, ring, err := openKeyring(&k, e.Value)
	switch {
	case errors.Is(err, ErrWrongKey):
		b.log.Warn("unseal failed: the key-encryption key did not authenticate the stored keyring (wrong key, or the keyring was altered)")
		return ErrWrongKey
	case err != nil:
		b.log.Error("unseal failed: stored keyring is malformed", "err", err)
		return err
	}
	if cur := b.state.Load(); cur != nil {
		merged, err := merge(cur.ring, ring)
		ring.wipe()
		if err != nil {
			return err
		}
		ring = merged
	}
	st, err := newState(&k, cfg, ring, e.Revision)
	if err != nil {
		ring.wipe()
		return err
	}
	b.install(st)
	b.log.Info("barrier unsealed", "active_term", st.activeTerm, "keys", st.nkeys)
	return nil
}

// Seal forgets the keyring and the key-encryption key, zeroing the copies
// the barrier holds, as far as Go allows (see the package comment). Store
// methods fail with ErrSealed until the next Unseal; operations already past
// their seal check complete. Sealing a sealed barrier does nothing.
func (b *Barrier) Seal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old := b.state.Swap(nil); old != nil {
		old.wipe()
		b.log.Info("barrier sealed")
	}
}

// Sealed reports whether the barrier is sealed.
func (b *Barrier) Sealed() bool { return b.state.Load() == nil }

// Rotate adds a new data key to the keyring and makes it active, returning
// its term. Values written before stay readable under their own term and are
// re-encrypted under the active term when next written. The keyring write is
// a compare-and-swap on its revision, retried a few times if another replica
// changes the keyring concurrently (the result then also holds that
// replica's keys).
func (b *Barrier) Rotate(ctx context.Context) (uint32, error) {
	if b.closed.Load() {
		return 0, store.ErrClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.state.Load()
	if st == nil {
		return 0, ErrSealed
	}
	for attempt := 0; attempt < maxRotateAttempts; attempt++ {
		e, cfg, ring, err := b.readKeyring(ctx, st)
		if err != nil {
			return 0, err
		}
		if ring.latest() == math.MaxUint32 {
			ring.wipe()
			return 0, fmt.Errorf("%w: key terms exhausted", ErrCorruptKeyring)
		}
		term := ring.latest() + 1
		k, err := newKey(b.rand, term, b.now())
		if err != nil {
			ring.wipe()
			return 0, err
		}
		ring.keys = append(ring.keys, k)
		ring.active = term
		k.key.wipe()
		blob, err := sealKeyring(&st.kek, b.rand, cfg, ring)
		if err != nil {
			ring.wipe()
			return 0, err
		}
		rev, err := b.inner.Txn(ctx,
			[]store.Compare{{Key: keyringKey, Revision: e.Revision}},
			[]store.Op{store.Put(keyringKey, blob)})
		if errors.Is(err, store.ErrConflict) {
			ring.wipe()
			continue
		}
		if err != nil {
			ring.wipe()
			return 0, fmt.Errorf("writing keyring: %w", err)
		}
		next, err := newState(&st.kek, cfg, ring, rev)
		if err != nil {
			ring.wipe()
			return 0, err
		}
		b.install(next)
		b.log.Info("barrier key rotated", "active_term", term, "keys", next.nkeys)
		return term, nil
	}
	return 0, fmt.Errorf("rotating keyring: gave up after %d attempts: %w", maxRotateAttempts, store.ErrConflict)
}

// readKeyring reads the stored keyring, opens it with st's KEK and merges it
// with st's keys. b.mu must be held.
func (b *Barrier) readKeyring(ctx context.Context, st *state) (store.Entry, shareConfig, *keyring, error) {
	e, err := b.getKeyring(ctx)
	if err != nil {
		return store.Entry{}, shareConfig{}, nil, err
	}
	cfg, ring, err := b.mergeStored(st, e.Value)
	if err != nil {
		return store.Entry{}, shareConfig{}, nil, err
	}
	return e, cfg, ring, nil
}

// getKeyring reads the sealed keyring entry of an initialised store.
func (b *Barrier) getKeyring(ctx context.Context) (store.Entry, error) {
	e, err := b.inner.Get(ctx, keyringKey)
	if errors.Is(err, store.ErrNotFound) {
		return store.Entry{}, fmt.Errorf("%w: keyring is missing from the store", ErrCorruptKeyring)
	}
	if err != nil {
		return store.Entry{}, fmt.Errorf("reading keyring: %w", err)
	}
	return e, nil
}

// mergeStored opens a sealed keyring with st's KEK and returns its union
// with st's keys.
func (b *Barrier) mergeStored(st *state, blob []byte) (shareConfig, *keyring, error) {
	cfg, stored, err := openKeyring(&st.kek, blob)
	if err != nil {
		b.log.Error("stored keyring does not open with the key-encryption key this barrier was unsealed with", "err", err)
		if errors.Is(err, ErrWrongKey) {
			err = fmt.Errorf("%w: stored keyring failed authentication", ErrCorruptKeyring)
		}
		return shareConfig{}, nil, err
	}
	ring, err := merge(st.ring, stored)
	stored.wipe()
	if err != nil {
		return shareConfig{}, nil, err
	}
	return cfg, ring, nil
}

// reload re-reads the keyring because a stored value names term, which the
// current state lacks (another replica probably rotated). It returns the
// state to use, which may still lack term.
func (b *Barrier) reload(ctx context.Context, term uint32) (*state, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.state.Load()
	if st == nil {
		return nil, ErrSealed
	}
	if st.aeads[term] != nil {
		return st, nil // another goroutine reloaded meanwhile
	}
	e, err := b.getKeyring(ctx)
	if err != nil {
		return nil, err
	}
	if e.Revision == st.rev {
		return st, nil // unchanged since this state was built: term is unknown
	}
	cfg, ring, err := b.mergeStored(st, e.Value)
	if err != nil {
		return nil, err
	}
	next, err := newState(&st.kek, cfg, ring, e.Revision)
	if err != nil {
		ring.wipe()
		return nil, err
	}
	b.install(next)
	b.log.Info("barrier keyring reloaded", "active_term", next.activeTerm, "keys", next.nkeys)
	return next, nil
}

// Status describes a barrier's keys without revealing them.
type Status struct {
	// Sealed is true when the barrier holds no keys; the other fields are
	// then zero.
	Sealed bool
	// ActiveTerm is the term of the data key new writes use.
	ActiveTerm uint32
	// Keys is the number of data keys in the keyring.
	Keys int
	// ActiveInstalled is when the active data key was created.
	ActiveInstalled time.Time
	// Shares and Threshold describe the unseal shares; both are zero when
	// the key-encryption key comes from a provider.
	Shares, Threshold int
}

// Status returns the barrier's current status. It does no I/O.
func (b *Barrier) Status() Status {
	st := b.state.Load()
	if st == nil {
		return Status{Sealed: true}
	}
	return Status{
		ActiveTerm:      st.activeTerm,
		Keys:            st.nkeys,
		ActiveInstalled: st.installed,
		Shares:          st.cfg.shares,
		Threshold:       st.cfg.threshold,
	}
}
