package barrier

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"
)

// keyringKey is where the sealed keyring lives in the inner store.
const keyringKey = ReservedPrefix + "keyring"

// Sealed keyring, format 1 (see the package comment):
//
//	offset  size  field
//	0       4     magic "SGKR"
//	4       1     format version, 1
//	5       1     mode: 0 = key-encryption key from a provider, 1 = unseal shares
//	6       1     number of shares (0 in mode 0)
//	7       1     threshold (0 in mode 0)
//	8       12    GCM nonce
//	20      n+16  AES-256-GCM ciphertext of the encoded keyring, then the tag
//
// It is sealed with the key-encryption key. The additional data is bytes 0..7
// followed by the storage key "barrier/keyring", so the plaintext share
// configuration is authenticated too.
//
// Encoded keyring (the plaintext), all integers big-endian:
//
//	4   active term
//	4   number of keys, n >= 1
//	n × (4 term, 8 install time in Unix nanoseconds, 32 key), terms strictly increasing
const (
	keyringMagic      = "SGKR"
	keyringV1    byte = 1
	modeProvider      = 0
	modeShamir        = 1

	keyringHeaderSize = 8
	keyringPayload    = keyringHeaderSize + nonceSize
	keyEntrySize      = 4 + 8 + keySize
)

// shareConfig is the plaintext part of the keyring header: how the
// key-encryption key is held. The zero value means a provider's KEK.
type shareConfig struct {
	shares, threshold int
}

func (c shareConfig) shamir() bool { return c.threshold > 0 }

// dataKey is one data-encryption key of the keyring.
type dataKey struct {
	redacted
	term      uint32
	installed time.Time
	key       secretKey
}

// keyring is the set of data-encryption keys and the active term.
type keyring struct {
	redacted
	active uint32
	keys   []dataKey // sorted by term, terms unique
}

// find returns the key of term, or nil.
func (r *keyring) find(term uint32) *dataKey {
	i, ok := slices.BinarySearchFunc(r.keys, term, func(k dataKey, t uint32) int {
		switch {
		case k.term < t:
			return -1
		case k.term > t:
			return 1
		}
		return 0
	})
	if !ok {
		return nil
	}
	return &r.keys[i]
}

// latest returns the highest term in r.
func (r *keyring) latest() uint32 { return r.keys[len(r.keys)-1].term }

func (r *keyring) wipe() {
	for i := range r.keys {
		r.keys[i].key.wipe()
	}
}

// newKey returns a random data key of term, installed at now.
func newKey(rand io.Reader, term uint32, now time.Time) (dataKey, error) {
	k := dataKey{term: term, installed: now.UTC()}
	if _, err := io.ReadFull(rand, k.key[:]); err != nil {
		return dataKey{}, fmt.Errorf("barrier: generating data key: %w", err)
	}
	return k, nil
}

// merge returns the union of a (held in memory) and b (just read from the
// store). Keys are never removed from a keyring, so a key missing from b
// means b is older than what this replica has seen (a rolled-back store
// entry); merging keeps every value readable. The active term is the higher
// of the two. A term present in both with different key bytes is corruption.
func merge(a, b *keyring) (*keyring, error) {
	out := &keyring{active: max(a.active, b.active)}
	i, j := 0, 0
	for i < len(a.keys) || j < len(b.keys) {
		switch {
		case j == len(b.keys) || (i < len(a.keys) && a.keys[i].term < b.keys[j].term):
			out.keys = append(out.keys, a.keys[i])
			i++
		case i == len(a.keys) || b.keys[j].term < a.keys[i].term:
			out.keys = append(out.keys, b.keys[j])
			j++
		default:
			if a.keys[i].key != b.keys[j].key {
				out.wipe()
				return nil, fmt.Errorf("%w: key term %d differs between memory and storage", ErrCorruptKeyring, a.keys[i].term)
			}
			out.keys = append(out.keys, b.keys[j])
			i++
			j++
		}
	}
	return out, nil
}

// encode returns the plaintext encoding of r. The caller wipes it.
func (r *keyring) encode() []byte {
	out := make([]byte, 8, 8+len(r.keys)*keyEntrySize)
	binary.BigEndian.PutUint32(out[0:4], r.active)
	binary.BigEndian.PutUint32(out[4:8], uint32(len(r.keys)))
	for _, k := range r.keys {
		out = binary.BigEndian.AppendUint32(out, k.term)
		out = binary.BigEndian.AppendUint64(out, uint64(k.installed.UnixNano()))
		out = append(out, k.key[:]...)
	}
	return out
}

// decodeKeyring parses the plaintext encoding of a keyring. It accepts only
// the canonical form: exact length, non-zero terms in strictly increasing
// order, the active term present.
func decodeKeyring(b []byte) (*keyring, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorruptKeyring, len(b))
	}
	n := binary.BigEndian.Uint32(b[4:8])
	if n == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrCorruptKeyring)
	}
	if uint64(len(b)-8) != uint64(n)*keyEntrySize {
		return nil, fmt.Errorf("%w: %d bytes does not hold %d keys", ErrCorruptKeyring, len(b), n)
	}
	r := &keyring{active: binary.BigEndian.Uint32(b[0:4]), keys: make([]dataKey, n)}
	var prev uint32
	for i := range r.keys {
		e := b[8+i*keyEntrySize:]
		k := &r.keys[i]
		k.term = binary.BigEndian.Uint32(e[0:4])
		k.installed = time.Unix(0, int64(binary.BigEndian.Uint64(e[4:12]))).UTC()
		copy(k.key[:], e[12:12+keySize])
		if k.term <= prev {
			r.wipe()
			return nil, fmt.Errorf("%w: key term %d follows %d", ErrCorruptKeyring, k.term, prev)
		}
		prev = k.term
	}
	if r.find(r.active) == nil {
		r.wipe()
		return nil, fmt.Errorf("%w: active term %d has no key", ErrCorruptKeyring, r.active)
	}
	return r, nil
}

// keyringHeader returns the 8-byte plaintext header for cfg.
func keyringHeader(cfg shareConfig) []byte {
	h := []byte(keyringMagic + "\x01\x00\x00\x00")
	if cfg.shamir() {
		h[5] = modeShamir
		h[6] = byte(cfg.shares)
		h[7] = byte(cfg.threshold)
	}
	return h
}

// parseKeyringHeader checks the plaintext header of a sealed keyring and
// returns its share configuration. It needs no key, so a sealed barrier can
// tell an Unsealer the threshold.
func parseKeyringHeader(blob []byte) (shareConfig, error) {
	if len(blob) < keyringPayload+tagSize {
		return shareConfig{}, fmt.Errorf("%w: %d bytes is too short", ErrCorruptKeyring, len(blob))
	}
	if string(blob[0:4]) != keyringMagic {
		return shareConfig{}, fmt.Errorf("%w: bad magic", ErrCorruptKeyring)
	}
	if blob[4] != keyringV1 {
		return shareConfig{}, fmt.Errorf("%w: unknown format version %d", ErrCorruptKeyring, blob[4])
	}
	cfg := shareConfig{shares: int(blob[6]), threshold: int(blob[7])}
	switch blob[5] {
	case modeProvider:
		if cfg != (shareConfig{}) {
			return shareConfig{}, fmt.Errorf("%w: share counts set without unseal shares", ErrCorruptKeyring)
		}
	case modeShamir:
		if cfg.threshold < 2 || cfg.shares < cfg.threshold {
			return shareConfig{}, fmt.Errorf("%w: threshold %d of %d shares", ErrCorruptKeyring, cfg.threshold, cfg.shares)
		}
	default:
		return shareConfig{}, fmt.Errorf("%w: unknown mode %d", ErrCorruptKeyring, blob[5])
	}
	return cfg, nil
}

// sealKeyring encrypts r under kek with the header for cfg.
func sealKeyring(kek *secretKey, rand io.Reader, cfg shareConfig, r *keyring) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	plain := r.encode()
	defer clear(plain)
	out := make([]byte, keyringPayload, keyringPayload+len(plain)+tagSize)
	copy(out, keyringHeader(cfg))
	nonce := out[keyringHeaderSize:keyringPayload]
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("barrier: reading nonce: %w", err)
	}
	return aead.Seal(out, nonce, plain, keyringAAD(out)), nil
}

func keyringAAD(blob []byte) []byte {
	return append(blob[:keyringHeaderSize:keyringHeaderSize], keyringKey...)
}

// openKeyring authenticates and decodes a sealed keyring with kek. An
// authentication failure is ErrWrongKey: with GCM a wrong key and an edited
// blob are indistinguishable.
func openKeyring(kek *secretKey, blob []byte) (shareConfig, *keyring, error) {
	cfg, err := parseKeyringHeader(blob)
	if err != nil {
		return shareConfig{}, nil, err
	}
	aead, err := newAEAD(kek)
	if err != nil {
		return shareConfig{}, nil, err
	}
	plain, err := aead.Open(nil, blob[keyringHeaderSize:keyringPayload], blob[keyringPayload:], keyringAAD(blob))
	if err != nil {
		return shareConfig{}, nil, ErrWrongKey
	}
	defer clear(plain)
	r, err := decodeKeyring(plain)
	if err != nil {
		return shareConfig{}, nil, err
	}
	return cfg, r, nil
}

// aeads builds the term -> AEAD map for r.
func (r *keyring) aeads() (map[uint32]cipher.AEAD, error) {
	m := make(map[uint32]cipher.AEAD, len(r.keys))
	for i := range r.keys {
		a, err := newAEAD(&r.keys[i].key)
		if err != nil {
			return nil, err
		}
		m[r.keys[i].term] = a
	}
	return m, nil
}
