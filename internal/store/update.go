package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxAttempts is how many times [Update] runs its function before giving up
// with [ErrConflict] under sustained contention.
const MaxAttempts = 16

// View is the read-modify-write context given to the function passed to
// [Update]. Reads see the store as of the first read plus this View's own
// buffered writes; writes become visible to others only if the whole function
// commits.
//
// A View is not safe for concurrent use and must not be kept after the
// function returns.
type View struct {
	s      Store
	ctx    context.Context
	reads  map[string]int64 // key -> revision seen (MustNotExist if absent)
	writes map[string]*Op   // key -> buffered op
	order  []string         // write order, for deterministic commits
}

// Get returns the entry at key as this transaction sees it, or an error
// wrapping ErrNotFound. The revision of a key written in this View is 0.
func (v *View) Get(key string) (Entry, error) {
	if op, ok := v.writes[key]; ok {
		if op.Kind == OpDelete {
			return Entry{}, fmt.Errorf("%w: %q", ErrNotFound, key)
		}
		return Entry{Key: key, Value: clone(op.Value)}, nil
	}
	e, err := v.s.Get(v.ctx, key)
	switch {
	case err == nil:
		v.record(key, e.Revision)
		return e, nil
	case errors.Is(err, ErrNotFound):
		v.record(key, MustNotExist)
		return Entry{}, err
	default:
		return Entry{}, err
	}
}

// List returns entries under prefix after the cursor, like Store.List, and
// guards each returned key against concurrent change. Keys added under the
// prefix concurrently are not detected; callers that need an exact set keep
// an index key and read it with Get.
func (v *View) List(prefix, after string, limit int) ([]Entry, string, error) {
	es, next, err := v.s.List(v.ctx, prefix, after, limit)
	if err != nil {
		return nil, "", err
	}
	for _, e := range es {
		v.record(e.Key, e.Revision)
	}
	return es, next, nil
}

func (v *View) record(key string, rev int64) {
	if _, seen := v.reads[key]; !seen {
		v.reads[key] = rev
	}
}

// Put buffers a write of value at key.
func (v *View) Put(key string, value []byte) {
	v.buffer(Op{Kind: OpPut, Key: key, Value: clone(value)})
}

// Delete buffers the removal of key.
func (v *View) Delete(key string) {
	v.buffer(Op{Kind: OpDelete, Key: key})
}

func (v *View) buffer(op Op) {
	if _, ok := v.writes[op.Key]; !ok {
		v.order = append(v.order, op.Key)
	}
	v.writes[op.Key] = &op
}

// Update runs fn in an optimistic transaction against s and commits its
// buffered writes atomically, on the condition that every key fn read still
// has the revision it saw. If another writer changed one of them, fn runs
// again with fresh reads, up to MaxAttempts times.
//
// fn must be free of side effects outside the View, since it may run more
// than once. If fn returns an error, nothing is written and Update returns
// that error unchanged. Update returns the commit revision, or 0 when fn made
// no writes.
func Update(ctx context.Context, s Store, fn func(v *View) error) (int64, error) {
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		v := &View{s: s, ctx: ctx, reads: map[string]int64{}, writes: map[string]*Op{}}
		if err := fn(v); err != nil {
			return 0, err
		}
		if len(v.writes) == 0 {
			return 0, nil
		}
		cmps := make([]Compare, 0, len(v.reads))
		for k, rev := range v.reads {
			cmps = append(cmps, Compare{Key: k, Revision: rev})
		}
		ops := make([]Op, 0, len(v.order))
		for _, k := range v.order {
			ops = append(ops, *v.writes[k])
		}
		rev, err := s.Txn(ctx, cmps, ops)
		if err == nil {
			return rev, nil
		}
		if !errors.Is(err, ErrConflict) {
			return 0, err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%w: gave up after %d attempts", ErrConflict, MaxAttempts)
}

// ValidateKey reports whether key is acceptable to every backend: non-empty,
// at most MaxKeySize bytes, valid UTF-8, and free of NUL bytes.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeySize:
		return fmt.Errorf("%w: %d bytes exceeds %d", ErrInvalidKey, len(key), MaxKeySize)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidKey)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: contains NUL", ErrInvalidKey)
	}
	return nil
}

// ValidateOps checks the keys and value sizes of a transaction's operations.
func ValidateOps(cmps []Compare, ops []Op) error {
	for _, c := range cmps {
		if err := ValidateKey(c.Key); err != nil {
			return err
		}
		if c.Revision < 0 {
			return fmt.Errorf("%w: negative compare revision %d for %q", ErrInvalidOp, c.Revision, c.Key)
		}
	}
	for _, op := range ops {
		if err := ValidateKey(op.Key); err != nil {
			return err
		}
		switch op.Kind {
		case OpPut:
			if len(op.Value) > MaxValueSize {
				return fmt.Errorf("%w: %d bytes at %q exceeds %d", ErrTooLarge, len(op.Value), op.Key, MaxValueSize)
			}
		case OpDelete:
		default:
			return fmt.Errorf("%w: unknown op kind %d for %q", ErrInvalidOp, op.Kind, op.Key)
		}
	}
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// Bump changes the value at key inside v, so its revision moves: a
// generation counter that other replicas poll with one Get and compare by
// revision (the value is a decimal count, kept only for people reading
// the store). A value that is not a count is an error.
func Bump(v *View, key string) error {
	n := int64(0)
	e, err := v.Get(key)
	switch {
	case err == nil:
		if n, err = strconv.ParseInt(string(e.Value), 10, 64); err != nil {
			return fmt.Errorf("decoding counter %s: %w", key, err)
		}
	case !errors.Is(err, ErrNotFound):
		return err
	}
	v.Put(key, []byte(strconv.FormatInt(n+1, 10)))
	return nil
}
