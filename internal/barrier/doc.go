// Package barrier encrypts everything sigil stores. A [Barrier] wraps a
// store.Store and is itself a store.Store: values are sealed with
// AES-256-GCM on the way in and opened on the way out, so code above the
// barrier sees plaintext and the backend (and its files, and its backups)
// sees only ciphertext. Keys are not encrypted; do not put secrets in keys.
//
// # Using it
//
//	b := barrier.New(inner, barrier.Options{Logger: log})
//	kek, err := barrier.FileKEK{Path: filepath.Join(dataDir, "sigil.kek")}.KEK(ctx)
//	ok, err := b.Initialized(ctx)
//	if !ok {
//		err = b.Initialize(ctx, kek) // first start: creates the keyring, leaves b unsealed
//	} else {
//		err = b.Unseal(ctx, kek)
//	}
//	clear(kek)
//	// b is now a store.Store; hand it to everything above.
//
// With unseal shares instead of a key provider, the first start calls
// [Barrier.InitShamir], which returns the printable shares, and later starts
// feed operators' shares to an [Unsealer] from [Barrier.NewUnsealer].
//
// [Barrier.Rotate] adds a data key and makes it active; [Barrier.Seal]
// forgets all keys; [Barrier.Status] reports the key state without secrets.
//
// # Keys
//
// Values are encrypted with data-encryption keys held in a keyring: term
// (a number from 1, incremented by each rotation) -> 32-byte key and install
// time, plus the active term. The keyring is stored in the inner store at
// "barrier/keyring", sealed with AES-256-GCM under a 32-byte key-encryption
// key (KEK) that is never stored beside it. The KEK comes from a
// [KEKProvider] ([FileKEK], [EnvKEK]) or is split into Shamir shares (package
// shamir) and held by operators. Every keyring write is a compare-and-swap on
// the entry's revision, so replicas sharing one store cannot overwrite each
// other's keys; a replica that reads a value under a term it does not know
// re-reads the keyring once.
//
// # Formats
//
// A stored value (format 1):
//
//	1 byte   format version, 1
//	4 bytes  key term, big-endian
//	12 bytes random nonce
//	n+16     AES-256-GCM ciphertext and tag
//
// with additional data = version || term || storage key. The stored keyring
// (format 1) is
//
//	"SGKR" || 1 || mode || shares || threshold || 12-byte nonce || ciphertext+tag
//
// with additional data = its 8-byte header || "barrier/keyring"; mode 0
// means a provider's KEK, mode 1 unseal shares (shares and threshold in
// plaintext so a sealed barrier can tell an Unsealer how many it needs). The
// keyring plaintext is active term (4 bytes), key count (4), then per key
// term (4), install time in Unix nanoseconds (8) and key (32), all
// big-endian, terms strictly increasing.
//
// # Security notes
//
//   - Authentication binds each value to its storage key and key term: a
//     ciphertext copied to another key, a changed header, or any flipped bit
//     makes Get fail with [ErrDecrypt], and no partial plaintext is ever
//     returned. The barrier does not stop an attacker with write access to
//     the store from replacing a value with an older value of the same key
//     (rollback) or deleting it.
//   - Nonces are random, 96 bits. NIST SP 800-38D limits random-nonce GCM
//     to 2^32 encryptions per key; rotate long before that (yearly, or every
//     few hundred million writes, is ample).
//   - Errors to callers are vague about cryptographic failures ("failed
//     authentication", "wrong key-encryption key"); the logger gets the
//     storage key and the reason. Neither ever gets key material or values.
//   - Seal zeroes the copies of the KEK and data keys the barrier holds.
//     Go cannot promise more: the AES key schedules inside crypto/cipher
//     values are unreachable, and the runtime may have copied stack memory.
//   - Types holding key material (Barrier, Unsealer, and the internal key
//     types) print as REDACTED through fmt, log/slog and encoding/json.
//   - The key file is refused if group or other users have any access to
//     it. Whoever holds both the key file and the store can read every
//     secret, so keep them apart in backups.
package barrier
