package bolt

import "errors"

// Errors returned by [Open]. Errors from the methods of an open [DB] wrap the
// sentinels of package store instead (store.ErrNotFound, store.ErrConflict,
// store.ErrClosed, ...), except that an entry found damaged while reading
// wraps [ErrCorrupt].
var (
	// ErrCorrupt means the file is not a bbolt database, is a bbolt database
	// that sigil did not create, or is damaged (for example truncated). Open
	// never repairs or overwrites such a file: restore it from a backup or move
	// it aside.
	ErrCorrupt = errors.New("bolt: store file is corrupt or not a sigil store")

	// ErrLocked means another process holds the file open (its lock did not
	// come free within Options.Timeout). Only one process may use a store file
	// at a time.
	ErrLocked = errors.New("bolt: store file is locked by another process")

	// ErrUnsupportedFormat means the file is a sigil store written in a format
	// version (or a bbolt file format) that this build does not understand,
	// usually by a newer sigil. Open leaves it untouched.
	ErrUnsupportedFormat = errors.New("bolt: unsupported store format")
)
