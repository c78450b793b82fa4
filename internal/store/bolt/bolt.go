// Package bolt is sigil's embedded storage backend: a [store.Store] kept in
// one bbolt file in the data directory. It is the default backend, and the
// one a single sigil server uses unless it is pointed at etcd.
//
// Open the file once per process and share the *DB; it is safe for
// concurrent use:
//
//	db, err := bolt.Open(filepath.Join(dataDir, "sigil.db"), bolt.Options{Logger: log})
//	if err != nil {
//		return err // errors.Is(err, bolt.ErrLocked), bolt.ErrCorrupt, ...
//	}
//	defer db.Close()
//
// # Durability
//
// Every write (Put, Delete, Txn) is one bbolt transaction, fsynced before it
// returns; there is deliberately no option to turn that off. A write that
// returned nil survives kill -9 and, as far as the disk honours fsync, power
// loss. bbolt serialises writers; readers do not wait for them (except
// briefly while the file grows), and each Get or List reads one consistent
// snapshot, so a List sees a transaction entirely or not at all.
//
// # Revisions
//
// The file keeps one store-wide revision counter, like etcd's. Each committed
// transaction that changes something increments it by one, and every key it
// writes records that revision, which [store.Compare] then checks.
//
// # File format
//
// Bucket "kv" maps each key to its value prefixed with the 8-byte big-endian
// revision that last wrote it. Bucket "meta" holds the format version ("format",
// currently 1) and the current revision ("revision"), both 8-byte big-endian.
// Open refuses, without changing a byte, a file that is not a bbolt database,
// a bbolt database that is not a sigil store, a truncated or damaged file, and
// a store written in a newer format; see [ErrCorrupt] and
// [ErrUnsupportedFormat].
//
// # Security
//
// The file holds what it is given. sigil hands it only ciphertext (package
// barrier encrypts above the store), so the file never holds a plaintext
// secret; Open creates it with mode 0600 all the same. Neither errors nor log
// messages of this package contain values.
package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FormatVersion is the version of the store layout that this build writes
// and reads. Open refuses a file recording any other version.
const FormatVersion = 1

// DefaultTimeout is how long Open waits for another process to release the
// file lock when Options.Timeout is zero.
const DefaultTimeout = time.Second

// fileMode is the permission a new store file gets: readable by the owner only.
const fileMode os.FileMode = 0o600

var (
	kvBucket    = []byte("kv")
	metaBucket  = []byte("meta")
	formatKey   = []byte("format")
	revisionKey = []byte("revision")
)

// revSize is the length of the revision prefix of every stored value.
const revSize = 8

// Options configures [Open]. The zero value is ready to use.
//
// There is deliberately no way to turn off fsync (bbolt's NoSync): a store
// that acknowledged writes it could lose would break sigil's durability
// promise.
type Options struct {
	// Timeout is how long Open waits for another process to release its lock
	// on the file before failing with an error wrapping ErrLocked. Zero means
	// DefaultTimeout (one second); a negative value fails at once.
	Timeout time.Duration

	// Logger receives operational messages: the store opened or closed, Open
	// waiting for the lock. They name the file and the revision, never a key's
	// value. Nil discards them.
	Logger *slog.Logger

	// Verify makes Open walk every page of the file with bbolt's consistency
	// check before accepting it, which takes time proportional to the file's
	// size. The zero value (false) checks only the meta pages, the file's
	// length and sigil's format record, which is enough to refuse a foreign,
	// truncated or newer file; damage inside data pages is then found when
	// those pages are read.
	Verify bool
}

// DB is a bbolt-backed [store.Store]. Create it with [Open]; it is safe for
// concurrent use. All methods of a closed DB return store.ErrClosed.
type DB struct {
	db     *bbolt.DB
	path   string
	log    *slog.Logger
	closed atomic.Bool
}

// Open opens the store file at path, creating it (mode 0600) if it does not
// exist; its directory must exist. It waits up to opts.Timeout for another
// process to release the file and fails with an error wrapping ErrLocked if
// none does. It refuses a file that is not a sigil store or is damaged
// (ErrCorrupt) or that records a format this build does not read
// (ErrUnsupportedFormat), and never modifies such a file.
func Open(path string, opts Options) (*DB, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := opts.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		timeout = 0
	}

	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("opening store %q: %w", path, err)
	}
	err = lockFile(f, timeout, func() {
		log.Warn("store file is locked by another process; waiting", "path", path, "timeout", timeout)
	})
	if err == nil {
		err = checkFile(f)
	}
	if err != nil {
		_ = f.Close()
		return nil, openError(path, err)
	}

	db, rev, err := openBolt(path, f, timeout, opts.Verify)
	if err != nil {
		return nil, openError(path, err)
	}
	log.Info("store opened", "path", path, "format", FormatVersion, "revision", rev)
	return &DB{db: db, path: path, log: log}, nil
}

// openError adds to err the path and what the operator can do about it.
func openError(path string, err error) error {
	var hint string
	switch {
	case errors.Is(err, ErrLocked):
		hint = "stop the other sigil process using this file, or give this one its own data directory"
	case errors.Is(err, ErrUnsupportedFormat):
		hint = "open it with the sigil release that wrote it, or a newer one; this build leaves it untouched"
	case errors.Is(err, ErrCorrupt):
		hint = "sigil does not repair or overwrite it: restore the file from a backup, or move it aside to start an empty store"
	default:
		return fmt.Errorf("opening store %q: %w", path, err)
	}
	return fmt.Errorf("opening store %q: %w; %s", path, err, hint)
}

// openBolt hands the locked, inspected file f to bbolt and checks or creates
// sigil's format record. It returns the current revision. On error f is
// closed, which releases the lock.
//
// bbolt panics, or faults reading the mapping, on kinds of damage that
// checkFile does not look for. openBolt turns those into ErrCorrupt rather
// than crashing the process. If that happens inside bbolt.Open, bbolt's
// mapping of the file is left behind, and since a mapping keeps the file
// open, so is the lock: the refused file stays locked until the process
// exits, which is what a server that cannot open its store does next.
func openBolt(path string, f *os.File, timeout time.Duration, verify bool) (db *bbolt.DB, rev int64, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				_ = db.Close()
			}
			_ = f.Close()
			db, rev, err = nil, 0, fmt.Errorf("%w: bbolt failed reading the file: %v", ErrCorrupt, r)
		}
	}()

	handed := false
	db, err = bbolt.Open(path, fileMode, &bbolt.Options{
		// The lock is already held on f; on platforms where lockFile cannot
		// take it, bbolt does, within this timeout (bbolt reads zero as
		// "wait forever", so "fail at once" is passed as 1ns).
		Timeout:      max(timeout, time.Nanosecond),
		NoStatistics: true,
		OpenFile: func(string, int, os.FileMode) (*os.File, error) {
			if handed {
				return nil, errors.New("bolt: internal error: bbolt opened the file twice")
			}
			handed = true
			return f, nil
		},
	})
	if err != nil {
		// bbolt has closed f.
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			err = fmt.Errorf("%w: still locked after %s", ErrLocked, timeout)
		case errors.Is(err, berrors.ErrVersionMismatch):
			err = fmt.Errorf("%w: %v", ErrUnsupportedFormat, err)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum):
			err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return nil, 0, err
	}

	if verify {
		err = db.View(func(tx *bbolt.Tx) error {
			for cerr := range tx.Check() {
				if err == nil {
					err = fmt.Errorf("%w: consistency check: %v", ErrCorrupt, cerr)
				}
			}
			return err
		})
	}
	if err == nil {
		rev, err = initFormat(db)
	}
	if err != nil {
		_ = db.Close()
		return nil, 0, err
	}
	return db, rev, nil
}

// initFormat checks sigil's format record, or writes it if the database is
// empty (a new file), and returns the current revision.
func initFormat(db *bbolt.DB) (int64, error) {
	var rev int64
	empty := false
	err := db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			var foreign []byte
			_ = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
				foreign = append([]byte(nil), name...)
				return errStop
			})
			if foreign != nil {
				return fmt.Errorf("%w: it is a bbolt database, but not a sigil store (it has bucket %q and no %q bucket)",
					ErrCorrupt, foreign, metaBucket)
			}
			empty = true
			return nil
		}
		format, err := readUint(meta, formatKey)
		if err != nil {
			return err
		}
		if format != FormatVersion {
			return fmt.Errorf("%w: the store records format version %d, this build reads version %d",
				ErrUnsupportedFormat, format, FormatVersion)
		}
		r, err := readUint(meta, revisionKey)
		if err != nil {
			return err
		}
		if tx.Bucket(kvBucket) == nil {
			return fmt.Errorf("%w: the %q bucket is missing", ErrCorrupt, kvBucket)
		}
		rev = int64(r)
		return nil
	})
	if err != nil || !empty {
		return rev, err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket(metaBucket)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket(kvBucket); err != nil {
			return err
		}
		if err := meta.Put(formatKey, encodeUint(FormatVersion)); err != nil {
			return err
		}
		return meta.Put(revisionKey, encodeUint(0))
	})
	if err != nil {
		return 0, fmt.Errorf("creating the store's format record: %w", err)
	}
	return 0, nil
}

// errStop ends a bbolt iteration early.
var errStop = errors.New("stop")

// readUint reads an 8-byte big-endian record of the meta bucket.
func readUint(meta *bbolt.Bucket, key []byte) (uint64, error) {
	v := meta.Get(key)
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: the %q record of the meta bucket is missing or damaged (%d bytes)", ErrCorrupt, key, len(v))
	}
	n := binary.BigEndian.Uint64(v)
	if n > 1<<62 {
		return 0, fmt.Errorf("%w: the %q record of the meta bucket holds an impossible value %d", ErrCorrupt, key, n)
	}
	return n, nil
}

func encodeUint(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n)
}

// Path returns the file the DB was opened from.
func (d *DB) Path() string { return d.path }

// Close releases the file and its lock, after waiting for operations in
// progress to finish. Closing a closed DB does nothing and returns nil.
func (d *DB) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("closing store %q: %w", d.path, err)
	}
	d.log.Info("store closed", "path", d.path)
	return nil
}
