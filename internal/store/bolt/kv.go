package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"sigil.dev/sigil/internal/store"
)

var _ store.Store = (*DB)(nil)

// Get returns the entry at key, or an error wrapping store.ErrNotFound. The
// returned value is a copy that belongs to the caller.
func (d *DB) Get(ctx context.Context, key string) (_ store.Entry, err error) {
	if err := d.ready(ctx); err != nil {
		return store.Entry{}, err
	}
	if err := store.ValidateKey(key); err != nil {
		return store.Entry{}, err
	}
	tx, err := d.db.Begin(false)
	if err != nil {
		return store.Entry{}, d.txError(err)
	}
	defer d.recoverCorrupt(&err)
	defer func() { _ = tx.Rollback() }()
	kv, err := kvOf(tx)
	if err != nil {
		return store.Entry{}, err
	}
	raw := kv.Get([]byte(key))
	if raw == nil {
		return store.Entry{}, fmt.Errorf("%w: %q", store.ErrNotFound, key)
	}
	rev, err := decodeRevision(key, raw)
	if err != nil {
		return store.Entry{}, err
	}
	value := make([]byte, len(raw)-revSize)
	copy(value, raw[revSize:])
	return store.Entry{Key: key, Value: value, Revision: rev}, nil
}

// List returns up to limit entries (all of them if limit <= 0) whose keys
// start with prefix and sort strictly after the cursor after, in bytewise key
// order, from one consistent snapshot. next is the last returned key when
// more entries remain, and "" otherwise.
//
// The keys and values of one page share two backing arrays; each value is
// capped to its own length, so a caller may modify or append to one without
// touching the others.
func (d *DB) List(ctx context.Context, prefix, after string, limit int) (_ []store.Entry, _ string, err error) {
	if err := d.ready(ctx); err != nil {
		return nil, "", err
	}
	tx, err := d.db.Begin(false)
	if err != nil {
		return nil, "", d.txError(err)
	}
	defer d.recoverCorrupt(&err)
	defer func() { _ = tx.Rollback() }()
	kv, err := kvOf(tx)
	if err != nil {
		return nil, "", err
	}

	type span struct {
		keyEnd, valEnd int
		rev            int64
	}
	var (
		keys, vals []byte
		spans      = make([]span, 0, min(max(limit, 0), 1024))
		more       bool
		pfx        = []byte(prefix)
		start      = max(prefix, after)
	)
	c := kv.Cursor()
	for k, v := c.Seek([]byte(start)); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
		if string(k) == after {
			continue
		}
		if limit > 0 && len(spans) == limit {
			more = true
			break
		}
		rev, err := decodeRevision(string(k), v)
		if err != nil {
			return nil, "", err
		}
		keys = append(keys, k...)
		vals = append(vals, v[revSize:]...)
		spans = append(spans, span{keyEnd: len(keys), valEnd: len(vals), rev: rev})
	}
	if len(spans) == 0 {
		return nil, "", nil
	}

	all := string(keys)
	entries := make([]store.Entry, len(spans))
	ko, vo := 0, 0
	for i, s := range spans {
		entries[i] = store.Entry{Key: all[ko:s.keyEnd], Value: vals[vo:s.valEnd:s.valEnd], Revision: s.rev}
		ko, vo = s.keyEnd, s.valEnd
	}
	next := ""
	if more {
		next = entries[len(entries)-1].Key
	}
	return entries, next, nil
}

// Put writes value at key and returns the new revision.
func (d *DB) Put(ctx context.Context, key string, value []byte) (int64, error) {
	return d.Txn(ctx, nil, []store.Op{store.Put(key, value)})
}

// Delete removes key. Deleting an absent key is not an error and writes
// nothing.
func (d *DB) Delete(ctx context.Context, key string) error {
	_, err := d.Txn(ctx, nil, []store.Op{store.Delete(key)})
	return err
}

// Txn checks every condition in cmps and, only if all hold, applies ops in
// order, atomically and durably, all with one new revision, which it returns.
// A failed condition returns an error wrapping store.ErrConflict that names
// the key and both revisions, and writes nothing. A transaction that would
// change nothing (no ops, or only deletes of absent keys) writes nothing and
// returns the store's current revision.
func (d *DB) Txn(ctx context.Context, cmps []store.Compare, ops []store.Op) (_ int64, err error) {
	if err := d.ready(ctx); err != nil {
		return 0, err
	}
	if err := store.ValidateOps(cmps, ops); err != nil {
		return 0, err
	}
	defer d.recoverCorrupt(&err)
	var rev int64
	err = d.db.Update(func(tx *bbolt.Tx) error {
		// Waiting for the writer lock may have outlasted the caller.
		if err := ctx.Err(); err != nil {
			return err
		}
		kv, err := kvOf(tx)
		if err != nil {
			return err
		}
		for _, c := range cmps {
			cur := store.MustNotExist
			if raw := kv.Get([]byte(c.Key)); raw != nil {
				if cur, err = decodeRevision(c.Key, raw); err != nil {
					return err
				}
			}
			if cur != c.Revision {
				return conflict(c, cur)
			}
		}
		meta := tx.Bucket(metaBucket)
		cur, err := readUint(meta, revisionKey)
		if err != nil {
			return err
		}
		next := cur + 1
		changed := false
		for _, op := range ops {
			k := []byte(op.Key)
			switch op.Kind {
			case store.OpPut:
				v := make([]byte, revSize+len(op.Value))
				binary.BigEndian.PutUint64(v, next)
				copy(v[revSize:], op.Value)
				if err := kv.Put(k, v); err != nil {
					return fmt.Errorf("writing %q: %w", op.Key, err)
				}
				changed = true
			case store.OpDelete:
				if kv.Get(k) == nil {
					continue
				}
				if err := kv.Delete(k); err != nil {
					return fmt.Errorf("deleting %q: %w", op.Key, err)
				}
				changed = true
			}
		}
		if !changed {
			rev = int64(cur)
			return errUnchanged
		}
		if err := meta.Put(revisionKey, encodeUint(next)); err != nil {
			return fmt.Errorf("advancing the revision: %w", err)
		}
		rev = int64(next)
		return nil
	})
	switch {
	case err == nil:
		return rev, nil
	case errors.Is(err, errUnchanged):
		return rev, nil
	default:
		return 0, d.txError(err)
	}
}

// errUnchanged rolls back a transaction that changed nothing, so that it
// costs no fsync.
var errUnchanged = errors.New("unchanged")

// conflict describes a failed compare.
func conflict(c store.Compare, cur int64) error {
	want, have := fmt.Sprintf("revision %d", c.Revision), fmt.Sprintf("revision %d", cur)
	if c.Revision == store.MustNotExist {
		want = "absent"
	}
	if cur == store.MustNotExist {
		have = "absent"
	}
	return fmt.Errorf("%w: %q is %s, expected %s", store.ErrConflict, c.Key, have, want)
}

// recoverCorrupt turns a panic inside bbolt into an error wrapping
// ErrCorrupt. bbolt panics when it meets a damaged page (for example an
// invalid page type); one damaged page then fails the requests that touch it
// instead of the whole process. bbolt has already rolled the transaction
// back, releasing its locks.
func (d *DB) recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: store %q: bbolt failed reading a page: %v", ErrCorrupt, d.path, r)
	}
}

// ready reports why the DB cannot serve a request: the caller's context is
// done, or the DB is closed.
func (d *DB) ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// txError maps bbolt's errors to the store's: a DB closed while the request
// was starting reports store.ErrClosed; other failures of bbolt (I/O errors,
// a full disk) wrap store.ErrUnavailable, since the request may succeed once
// the disk is fixed, as well as the cause.
func (d *DB) txError(err error) error {
	switch {
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return store.ErrClosed
	case errors.Is(err, store.ErrConflict), errors.Is(err, ErrCorrupt),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	default:
		return fmt.Errorf("bolt: store %q: %w: %w", d.path, store.ErrUnavailable, err)
	}
}

// kvOf returns the kv bucket of tx, which Open guarantees exists.
func kvOf(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	kv := tx.Bucket(kvBucket)
	if kv == nil {
		return nil, fmt.Errorf("%w: the %q bucket is missing", ErrCorrupt, kvBucket)
	}
	return kv, nil
}

// decodeRevision reads the revision prefix of a stored value.
func decodeRevision(key string, raw []byte) (int64, error) {
	if len(raw) < revSize {
		return 0, fmt.Errorf("%w: the entry at %q is %d bytes, shorter than its revision", ErrCorrupt, key, len(raw))
	}
	rev := binary.BigEndian.Uint64(raw)
	if rev == 0 || rev > 1<<62 {
		return 0, fmt.Errorf("%w: the entry at %q records an impossible revision %d", ErrCorrupt, key, rev)
	}
	return int64(rev), nil
}
