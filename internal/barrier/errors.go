package barrier

import "errors"

// Errors returned by the barrier, grouped by phase. Callers branch with
// errors.Is. Store errors from the inner store (store.ErrNotFound,
// store.ErrConflict, ...) pass through unchanged, and the barrier itself uses
// store.ErrInvalidKey for reserved keys, store.ErrTooLarge for oversized
// values and store.ErrClosed after Close.
var (
	// Lifecycle.

	// ErrNotInitialized means the inner store holds no keyring yet: call
	// Initialize (or InitShamir) once.
	ErrNotInitialized = errors.New("barrier: not initialized")
	// ErrAlreadyInitialized means a keyring already exists, possibly written
	// a moment ago by another replica; Unseal instead.
	ErrAlreadyInitialized = errors.New("barrier: already initialized")
	// ErrSealed means the barrier holds no keys: every Store method fails
	// with it until Unseal succeeds.
	ErrSealed = errors.New("barrier: sealed")
	// ErrNotShamir means unseal shares were offered to a barrier whose
	// keyring was initialised with a provider's key-encryption key.
	ErrNotShamir = errors.New("barrier: not initialized with unseal shares")

	// Keys.

	// ErrWrongKey means the key-encryption key (or the combination of
	// unseal shares) did not open the stored keyring. The message is vague
	// on purpose; the server log says more.
	ErrWrongKey = errors.New("barrier: wrong key-encryption key")
	// ErrInvalidKEK means a key-encryption key is not 32 bytes, or a key
	// provider's source (a key file, an environment variable) is missing or
	// malformed. Messages name the source, never its contents.
	ErrInvalidKEK = errors.New("barrier: invalid key-encryption key")
	// ErrInsecureKeyFile means a key file's permissions let users other
	// than its owner read or write it.
	ErrInsecureKeyFile = errors.New("barrier: insecure key file permissions")
	// ErrInvalidShare means an unseal share is not valid base64 of the
	// right length, or repeats a share already given.
	ErrInvalidShare = errors.New("barrier: invalid unseal share")

	// Stored data.

	// ErrDecrypt means a stored value failed authentication: it was
	// corrupted, edited, moved from another key, or names a key term the
	// keyring does not hold. No plaintext is returned with it.
	ErrDecrypt = errors.New("barrier: decryption failed")
	// ErrCorruptKeyring means the stored keyring is malformed or
	// inconsistent with the keys held in memory.
	ErrCorruptKeyring = errors.New("barrier: corrupt keyring")
)
