package barrier

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"sigil.dev/sigil/internal/store"
)

var _ store.Store = (*Barrier)(nil)

// ready returns the state to encrypt or decrypt with, or the reason there is
// none.
func (b *Barrier) ready() (*state, error) {
	if b.closed.Load() {
		return nil, store.ErrClosed
	}
	if st := b.state.Load(); st != nil {
		return st, nil
	}
	return nil, ErrSealed
}

// checkKey refuses keys under ReservedPrefix.
func checkKey(key string) error {
	if strings.HasPrefix(key, ReservedPrefix) {
		return fmt.Errorf("%w: %q is reserved for the barrier", store.ErrInvalidKey, key)
	}
	return nil
}

// seal encrypts value for key under the active data key.
func (b *Barrier) seal(st *state, key string, value []byte) ([]byte, error) {
	if len(value) > MaxValueSize {
		return nil, fmt.Errorf("%w: %d bytes at %q exceeds %d (the store's limit less the barrier's %d-byte envelope)",
			store.ErrTooLarge, len(value), key, MaxValueSize, Overhead)
	}
	return sealEnvelope(st.active, st.activeTerm, b.rand, &b.aad, key, value)
}

// open authenticates and decrypts the envelope stored at key, in place. A
// term missing from st triggers one keyring reload. Every failure to
// authenticate is ErrDecrypt, with the precise reason in the log only.
func (b *Barrier) open(ctx context.Context, st *state, key string, env []byte) ([]byte, error) {
	term, err := envelopeTerm(env)
	if err != nil {
		b.log.Warn("stored value failed authentication", "key", key, "reason", err.Error())
		return nil, decryptError(key)
	}
	aead := st.aeads[term]
	if aead == nil {
		st, err = b.reload(ctx, term)
		if err != nil {
			return nil, fmt.Errorf("reading %q: %w", key, err)
		}
		if aead = st.aeads[term]; aead == nil {
			b.log.Warn("stored value failed authentication", "key", key, "reason", "unknown key term", "term", term)
			return nil, decryptError(key)
		}
	}
	pt, err := openEnvelope(aead, &b.aad, key, env)
	if err != nil {
		b.log.Warn("stored value failed authentication", "key", key, "reason", "GCM tag mismatch", "term", term)
		return nil, decryptError(key)
	}
	return pt, nil
}

func decryptError(key string) error {
	return fmt.Errorf("%w: stored value at %q failed authentication", ErrDecrypt, key)
}

// Get returns the entry at key with its value decrypted. The revision is the
// inner store's. A value that fails authentication gives an error wrapping
// ErrDecrypt and no value.
func (b *Barrier) Get(ctx context.Context, key string) (store.Entry, error) {
	st, err := b.ready()
	if err != nil {
		return store.Entry{}, err
	}
	if err := checkKey(key); err != nil {
		return store.Entry{}, err
	}
	e, err := b.inner.Get(ctx, key)
	if err != nil {
		return store.Entry{}, err
	}
	pt, err := b.open(ctx, st, key, e.Value)
	if err != nil {
		return store.Entry{}, err
	}
	e.Value = pt
	return e, nil
}

// List returns decrypted entries under prefix, as store.Store.List
// specifies. Keys under ReservedPrefix are never returned, and a prefix under
// it is refused with store.ErrInvalidKey. If any entry of the page fails
// authentication, List returns an error wrapping ErrDecrypt and no entries.
func (b *Barrier) List(ctx context.Context, prefix, after string, limit int) ([]store.Entry, string, error) {
	st, err := b.ready()
	if err != nil {
		return nil, "", err
	}
	if err := checkKey(prefix); err != nil {
		return nil, "", err
	}
	var out []store.Entry
	for {
		want := limit
		if limit > 0 {
			want = limit - len(out)
		}
		es, next, err := b.inner.List(ctx, prefix, after, want)
		if err != nil {
			return nil, "", err
		}
		for _, e := range es {
			if strings.HasPrefix(e.Key, ReservedPrefix) {
				continue
			}
			pt, err := b.open(ctx, st, e.Key, e.Value)
			if err != nil {
				return nil, "", err
			}
			e.Value = pt
			out = append(out, e)
		}
		// A page shortened by skipping reserved keys is topped up, so that
		// callers see full pages whenever more entries exist.
		if next == "" || limit <= 0 || len(out) >= limit {
			return out, next, nil
		}
		after = next
	}
}

// Put encrypts value under the active data key and writes it at key.
func (b *Barrier) Put(ctx context.Context, key string, value []byte) (int64, error) {
	st, err := b.ready()
	if err != nil {
		return 0, err
	}
	if err := checkKey(key); err != nil {
		return 0, err
	}
	env, err := b.seal(st, key, value)
	if err != nil {
		return 0, err
	}
	return b.inner.Put(ctx, key, env)
}

// Delete removes key.
func (b *Barrier) Delete(ctx context.Context, key string) error {
	if _, err := b.ready(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	return b.inner.Delete(ctx, key)
}

// Txn encrypts the value of every put in ops and runs the transaction on the
// inner store. Compares pass through unchanged: the barrier's revisions are
// the inner store's.
func (b *Barrier) Txn(ctx context.Context, cmps []store.Compare, ops []store.Op) (int64, error) {
	st, err := b.ready()
	if err != nil {
		return 0, err
	}
	for _, c := range cmps {
		if err := checkKey(c.Key); err != nil {
			return 0, err
		}
	}
	sealed := make([]store.Op, len(ops))
	for i, op := range ops {
		if err := checkKey(op.Key); err != nil {
			return 0, err
		}
		sealed[i] = op
		if op.Kind == store.OpPut {
			if sealed[i].Value, err = b.seal(st, op.Key, op.Value); err != nil {
				return 0, err
			}
		}
	}
	return b.inner.Txn(ctx, cmps, sealed)
}

// Close seals the barrier and closes the inner store. Unlike the other
// methods it works while sealed, so that shutdown always releases the
// store. Every other method fails with store.ErrClosed afterwards; closing
// again does nothing and returns nil.
func (b *Barrier) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.Seal()
	if err := b.inner.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("closing inner store: %w", err)
	}
	return nil
}
