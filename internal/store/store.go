// Package store defines sigil's storage contract: a small ordered key/value
// interface with per-key revisions and atomic multi-key transactions guarded
// by compare-and-swap.
//
// Every backend (bolt, the embedded default; etcd, for clusters) implements
// [Store] and passes the conformance suite in package storetest. Nothing above
// this package knows which backend it talks to.
//
// Domain code rarely calls [Store.Txn] directly. It uses [Update], which runs
// a read-modify-write function optimistically: reads record the revision they
// saw, writes are buffered, and the commit succeeds only if nothing read has
// changed since; on conflict the function is run again. This is the same
// pattern as etcd's software transactional memory, and it works unchanged on
// every backend.
//
// Security: a Store holds bytes. Encryption is the job of package barrier,
// which wraps a Store and is itself a Store; code above the barrier never sees
// ciphertext and code below it never sees plaintext.
package store

import (
	"context"
)

// Entry is one stored key with its value and revision.
type Entry struct {
	// Key is the full storage key.
	Key string
	// Value is the stored value. The slice belongs to the caller.
	Value []byte
	// Revision is the store-wide revision at which the key was last written.
	// Revisions are positive and increase with every committed write, so a
	// key's revision changes whenever its value does.
	Revision int64
}

// Revision conditions for [Compare].
const (
	// MustNotExist as a Compare revision requires that the key is absent.
	MustNotExist int64 = 0
)

// Compare is one condition of a transaction: the key's current revision must
// equal Revision. A Revision of [MustNotExist] requires the key to be absent.
type Compare struct {
	Key      string
	Revision int64
}

// OpKind says what an [Op] does.
type OpKind uint8

const (
	// OpPut writes Value at Key.
	OpPut OpKind = iota + 1
	// OpDelete removes Key; deleting an absent key is not an error.
	OpDelete
)

// Op is one write of a transaction.
type Op struct {
	Kind  OpKind
	Key   string
	Value []byte
}

// Put returns an Op that writes value at key.
func Put(key string, value []byte) Op { return Op{Kind: OpPut, Key: key, Value: value} }

// Delete returns an Op that removes key.
func Delete(key string) Op { return Op{Kind: OpDelete, Key: key} }

// Store is an ordered key/value store with per-key revisions.
//
// Keys are non-empty UTF-8 strings of at most [MaxKeySize] bytes; values are
// at most [MaxValueSize] bytes. Keys are ordered bytewise.
//
// All methods are safe for concurrent use. A write that returned nil is
// durable: it survives a crash of the process (kill -9) and of the machine, as
// far as the backend's fsync guarantees go.
type Store interface {
	// Get returns the entry at key, or an error wrapping [ErrNotFound].
	Get(ctx context.Context, key string) (Entry, error)

	// List returns up to limit entries whose keys start with prefix and sort
	// strictly after the cursor after (use "" to start at the beginning), in
	// key order. next is the cursor for the following page, or "" when there
	// are no more entries. A limit <= 0 means no limit.
	List(ctx context.Context, prefix, after string, limit int) (entries []Entry, next string, err error)

	// Put writes value at key unconditionally and returns the new revision.
	Put(ctx context.Context, key string, value []byte) (int64, error)

	// Delete removes key. Deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error

	// Txn atomically checks every condition in cmps and, only if all hold,
	// applies every op in ops, in order. If a condition fails it returns an
	// error wrapping [ErrConflict] and changes nothing. On success it returns
	// the revision of the commit (the revision every written key now has).
	Txn(ctx context.Context, cmps []Compare, ops []Op) (int64, error)

	// Close releases the backend. Using a closed Store returns [ErrClosed].
	Close() error
}

// Size limits every backend enforces, chosen to fit etcd's defaults with room
// for the barrier's envelope.
const (
	// MaxKeySize is the largest key, in bytes.
	MaxKeySize = 1024
	// MaxValueSize is the largest value, in bytes (1 MiB).
	MaxValueSize = 1 << 20
)
