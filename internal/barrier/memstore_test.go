package barrier

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"sigil.dev/sigil/internal/store"
)

// memStore is an in-memory store.Store for the barrier's tests: revisions,
// cursors and compare-and-swap behave as the Store contract says, which is
// all the barrier relies on. Real backends are tested by storetest.
type memStore struct {
	mu     sync.Mutex
	rev    int64
	data   map[string]store.Entry
	closed bool
}

func newMemStore() *memStore { return &memStore{data: map[string]store.Entry{}} }

func (m *memStore) Get(_ context.Context, key string) (store.Entry, error) {
	if err := store.ValidateKey(key); err != nil {
		return store.Entry{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return store.Entry{}, store.ErrClosed
	}
	e, ok := m.data[key]
	if !ok {
		return store.Entry{}, fmt.Errorf("%w: %q", store.ErrNotFound, key)
	}
	e.Value = slices.Clone(e.Value)
	return e, nil
}

func (m *memStore) List(_ context.Context, prefix, after string, limit int) ([]store.Entry, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, "", store.ErrClosed
	}
	var keys []string
	for k := range m.data {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	next := ""
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
		next = keys[limit-1]
	}
	out := make([]store.Entry, len(keys))
	for i, k := range keys {
		out[i] = m.data[k]
		out[i].Value = slices.Clone(out[i].Value)
	}
	return out, next, nil
}

func (m *memStore) Put(ctx context.Context, key string, value []byte) (int64, error) {
	return m.Txn(ctx, nil, []store.Op{store.Put(key, value)})
}

func (m *memStore) Delete(ctx context.Context, key string) error {
	_, err := m.Txn(ctx, nil, []store.Op{store.Delete(key)})
	return err
}

func (m *memStore) Txn(_ context.Context, cmps []store.Compare, ops []store.Op) (int64, error) {
	if err := store.ValidateOps(cmps, ops); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, store.ErrClosed
	}
	for _, c := range cmps {
		if m.data[c.Key].Revision != c.Revision { // absent keys have revision 0 = MustNotExist
			return 0, fmt.Errorf("%w: %q", store.ErrConflict, c.Key)
		}
	}
	m.rev++
	for _, op := range ops {
		if op.Kind == store.OpPut {
			m.data[op.Key] = store.Entry{Key: op.Key, Value: slices.Clone(op.Value), Revision: m.rev}
		} else {
			delete(m.data, op.Key)
		}
	}
	return m.rev, nil
}

func (m *memStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return store.ErrClosed
	}
	m.closed = true
	return nil
}

// all returns a snapshot of every stored entry, for tests that inspect what
// reached the inner store.
func (m *memStore) all() map[string]store.Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]store.Entry, len(m.data))
	for k, e := range m.data {
		e.Value = slices.Clone(e.Value)
		out[k] = e
	}
	return out
}
