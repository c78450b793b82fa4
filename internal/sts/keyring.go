package sts

import (
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"sigil.dev/sigil/internal/store"
)

// Session keys
//
// Every session token is sealed, and every session's secret access key is
// derived, under a 32-byte session key. The keys live in one record of the
// (barrier-encrypted) store, keyringKey, created once with compare-and-swap
// so that replicas starting together agree on it, and loaded into memory by
// New; Run notices a rotation made by another replica. Each key has an id
// from 1 to maxKeyID that is encoded in the first two characters after
// "ASIA" of every access key it issued and in the token header, so a
// request names its key without a lookup and keys can rotate: RotateKey
// makes a new key current and keeps the old ones until the sessions they
// issued have all expired.
//
// From the 32 bytes, HKDF-SHA256 derives two independent keys: an
// XChaCha20-Poly1305 key for tokens (random 24-byte nonces, so nonce
// reuse is not a concern however many sessions are issued) and an HMAC key
// for secret access keys.

const (
	// keyringKey is where the session keys are stored.
	keyringKey = "sts/keyring"
	// maxKeyID is the largest key id: ten bits, two base32 characters.
	maxKeyID = 1023
	// keyRetention is how long a replaced key is kept: the longest session
	// it can have issued, plus clock skew.
	keyRetention = maxSessionSeconds*time.Second + 5*time.Minute
)

// keyringRecord is the stored keyring. It holds key material and exists
// only behind the barrier.
type keyringRecord struct {
	Format  int         `json:"v"`
	Current uint16      `json:"current"`
	Keys    []keyRecord `json:"keys"`
}

type keyRecord struct {
	ID      uint16    `json:"id"`
	Key     []byte    `json:"key"`
	Created time.Time `json:"created"`
	// Retired is when another key became current; zero for the current
	// key.
	Retired time.Time `json:"retired,omitzero"`
}

// sessionKey is one usable key.
type sessionKey struct {
	id     uint16
	token  cipher.AEAD
	secret []byte // HMAC-SHA256 key for secret access keys
}

// keyring is the in-memory form of the stored keys; immutable once built.
type keyring struct {
	rev     int64
	current *sessionKey
	byID    map[uint16]*sessionKey
}

func newSessionKey(id uint16, master []byte) (*sessionKey, error) {
	if len(master) != 32 || id == 0 || id > maxKeyID {
		return nil, fmt.Errorf("%w: key %d is malformed", ErrCorruptKeyring, id)
	}
	tk, err := hkdf.Key(sha256.New, master, nil, "sigil sts session token v1", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("deriving the token key: %w", err)
	}
	sk, err := hkdf.Key(sha256.New, master, nil, "sigil sts secret access key v1", 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the secret key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(tk)
	if err != nil {
		return nil, fmt.Errorf("creating the token cipher: %w", err)
	}
	return &sessionKey{id: id, token: aead, secret: sk}, nil
}

func buildKeyring(rec *keyringRecord, rev int64) (*keyring, error) {
	if rec.Format != 1 {
		return nil, fmt.Errorf("%w: unsupported format %d", ErrCorruptKeyring, rec.Format)
	}
	r := &keyring{rev: rev, byID: make(map[uint16]*sessionKey, len(rec.Keys))}
	for _, k := range rec.Keys {
		if _, dup := r.byID[k.ID]; dup {
			return nil, fmt.Errorf("%w: key %d appears twice", ErrCorruptKeyring, k.ID)
		}
		sk, err := newSessionKey(k.ID, k.Key)
		if err != nil {
			return nil, err
		}
		r.byID[k.ID] = sk
	}
	r.current = r.byID[rec.Current]
	if r.current == nil {
		return nil, fmt.Errorf("%w: current key %d is missing", ErrCorruptKeyring, rec.Current)
	}
	return r, nil
}

// loadKeyring reads the keyring, creating it when absent.
func (s *Service) loadKeyring(ctx context.Context) (*keyring, error) {
	for attempt := 0; attempt < 3; attempt++ {
		e, err := s.store.Get(ctx, keyringKey)
		if err == nil {
			return decodeKeyring(e)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("reading the session keyring: %w", err)
		}
		master, err := s.randomBytes(32)
		if err != nil {
			return nil, err
		}
		rec := keyringRecord{Format: 1, Current: 1, Keys: []keyRecord{{ID: 1, Key: master, Created: s.now().UTC()}}}
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("encoding the session keyring: %w", err)
		}
		_, err = s.store.Txn(ctx, []store.Compare{{Key: keyringKey, Revision: store.MustNotExist}}, []store.Op{store.Put(keyringKey, b)})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("creating the session keyring: %w", err)
		}
		// Created, or another replica won the race: read what is stored.
	}
	return nil, fmt.Errorf("creating the session keyring: %w", store.ErrConflict)
}

func decodeKeyring(e store.Entry) (*keyring, error) {
	var rec keyringRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptKeyring, err)
	}
	return buildKeyring(&rec, e.Revision)
}

// RotateKey makes a new session key current and returns its id. Sessions
// issued before keep working until they expire; keys replaced more than
// the longest session lifetime ago are dropped. Other replicas pick the
// new key up within their poll interval (Run); until then they can verify
// tokens of the keys they know, and the store decides which key signs new
// sessions only once they have reloaded.
func (s *Service) RotateKey(ctx context.Context) (uint16, error) {
	master, err := s.randomBytes(32)
	if err != nil {
		return 0, err
	}
	now := s.now().UTC()
	var newID uint16
	_, err = store.Update(ctx, s.store, func(v *store.View) error {
		e, err := v.Get(keyringKey)
		if err != nil {
			return fmt.Errorf("reading the session keyring: %w", err)
		}
		var rec keyringRecord
		if err := json.Unmarshal(e.Value, &rec); err != nil {
			return fmt.Errorf("%w: %w", ErrCorruptKeyring, err)
		}
		kept := rec.Keys[:0]
		used := map[uint16]bool{}
		for _, k := range rec.Keys {
			if k.ID == rec.Current {
				k.Retired = now
			}
			if !k.Retired.IsZero() && now.Sub(k.Retired) > keyRetention {
				continue
			}
			kept = append(kept, k)
			used[k.ID] = true
		}
		newID = rec.Current
		for i := 0; i < maxKeyID; i++ {
			newID = newID%maxKeyID + 1
			if !used[newID] {
				break
			}
		}
		if used[newID] {
			return fmt.Errorf("rotating the session key: all %d key ids are in use", maxKeyID)
		}
		rec.Keys = append(kept, keyRecord{ID: newID, Key: master, Created: now})
		rec.Current = newID
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encoding the session keyring: %w", err)
		}
		v.Put(keyringKey, b)
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := s.syncKeyring(ctx); err != nil {
		return 0, err
	}
	s.log.Info("sts: session key rotated", "key_id", newID)
	return newID, nil
}

// syncKeyring reloads the keyring when its stored revision changed.
func (s *Service) syncKeyring(ctx context.Context) error {
	e, err := s.store.Get(ctx, keyringKey)
	if err != nil {
		return fmt.Errorf("reading the session keyring: %w", err)
	}
	if cur := s.ring.Load(); cur != nil && cur.rev == e.Revision {
		return nil
	}
	r, err := decodeKeyring(e)
	if err != nil {
		return err
	}
	s.ring.Store(r)
	return nil
}

func (s *Service) randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	s.randMu.Lock()
	_, err := io.ReadFull(s.rand, b)
	s.randMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	return b, nil
}

// Access key ids and secrets

// accessKeyPrefix starts every session access key id, as in AWS.
const accessKeyPrefix = "ASIA"

// idAlphabet is base32's alphabet, as AWS's access key ids use.
const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// accessKeyLength is the length of an access key id.
const accessKeyLength = 20

// newAccessKeyID returns ASIA, two characters encoding keyID and fourteen
// random characters (70 bits).
func (s *Service) newAccessKeyID(keyID uint16) (string, error) {
	r, err := s.randomBytes(14)
	if err != nil {
		return "", err
	}
	b := make([]byte, 0, accessKeyLength)
	b = append(b, accessKeyPrefix...)
	b = append(b, idAlphabet[keyID>>5&31], idAlphabet[keyID&31])
	for _, c := range r {
		b = append(b, idAlphabet[c&31])
	}
	return string(b), nil
}

// accessKeyKeyID returns the session key id an access key id names, or
// false when id is not a well-formed session access key id.
func accessKeyKeyID(id string) (uint16, bool) {
	if len(id) != accessKeyLength || id[:len(accessKeyPrefix)] != accessKeyPrefix {
		return 0, false
	}
	var v [accessKeyLength]byte
	for i := len(accessKeyPrefix); i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'A' && c <= 'Z':
			v[i] = c - 'A'
		case c >= '2' && c <= '7':
			v[i] = c - '2' + 26
		default:
			return 0, false
		}
	}
	k := uint16(v[4])<<5 | uint16(v[5])
	if k == 0 || k > maxKeyID {
		return 0, false
	}
	return k, true
}

// IsSessionAccessKey reports whether id has the form of a session access
// key id (ASIA...), which the server must resolve through this package
// rather than the long-term key registry.
func IsSessionAccessKey(id string) bool {
	_, ok := accessKeyKeyID(id)
	return ok
}

// secretFor derives the 40-character secret access key of accessKeyID:
// the first 30 bytes of HMAC-SHA256 under the key's secret key, in
// standard base64.
func (k *sessionKey) secretFor(accessKeyID string) string {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte("sigil sts secret\x00"))
	m.Write([]byte(accessKeyID))
	var sum [sha256.Size]byte
	return base64.StdEncoding.EncodeToString(m.Sum(sum[:0])[:30])
}
