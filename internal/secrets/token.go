package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"

	"sigil.dev/sigil/internal/store"
)

// Pagination tokens are opaque to clients: a cursor sealed with AES-256-GCM
// under a key kept in the store (so every replica accepts every token, and
// the barrier encrypts the key). The operation and a scope (the secret, the
// filters and sort) are the additional data, so a token cannot be replayed
// against another listing, and any change to it fails to open.

// maxTokenChars bounds NextToken, as AWS does.
const maxTokenChars = 4096

// sealToken seals cursor for op and scope.
func (s *Service) sealToken(ctx context.Context, op, scope, cursor string) (string, error) {
	aead, err := s.tokenSealer(ctx, true)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(cursor)+aead.Overhead())
	if err := s.rand.fill(nonce); err != nil {
		return "", err
	}
	sealed := aead.Seal(nonce, nonce, []byte(cursor), tokenAD(op, scope))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// openToken returns the cursor sealed in token, or InvalidNextTokenException
// when it was not sealed by this service for op and scope.
func (s *Service) openToken(ctx context.Context, op, scope, token string) (string, error) {
	if token == "" || len(token) > maxTokenChars {
		return "", errInvalidNextToken()
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", errInvalidNextToken()
	}
	aead, err := s.tokenSealer(ctx, false)
	if errors.Is(err, errNoTokenKey) {
		return "", errInvalidNextToken() // nothing was ever sealed
	}
	if err != nil {
		return "", err
	}
	if len(raw) < aead.NonceSize()+aead.Overhead() {
		return "", errInvalidNextToken()
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, raw[:n], raw[n:], tokenAD(op, scope))
	if err != nil {
		return "", errInvalidNextToken()
	}
	return string(plain), nil
}

func tokenAD(op, scope string) []byte {
	return []byte("sigil secrets page token\x00" + op + "\x00" + scope)
}

// errNoTokenKey means no token key exists yet (and create was false).
var errNoTokenKey = errors.New("no pagination token key yet")

// tokenSealer returns the AEAD for tokens, loading its key from the store
// or, when create is set, creating it there on first use. Opening a token
// never creates the key, so a bad token changes nothing.
func (s *Service) tokenSealer(ctx context.Context, create bool) (cipher.AEAD, error) {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	if s.tokenAEAD != nil {
		return s.tokenAEAD, nil
	}
	key, err := s.loadTokenKey(ctx, create)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	s.tokenAEAD = aead
	return aead, nil
}

func (s *Service) loadTokenKey(ctx context.Context, create bool) ([]byte, error) {
	for range 2 {
		e, err := s.store.Get(ctx, keyTokenKey)
		if err == nil {
			var rec tokenKeyRecord
			if err := decode(keyTokenKey, e.Value, &rec, &rec.V); err != nil {
				return nil, err
			}
			if len(rec.Key) != 32 {
				return nil, errCorrupt(keyTokenKey, nil)
			}
			return rec.Key, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("reading token key: %w", err)
		}
		if !create {
			return nil, errNoTokenKey
		}
		key := make([]byte, 32)
		if err := s.rand.fill(key); err != nil {
			return nil, err
		}
		_, err = s.store.Txn(ctx, []store.Compare{{Key: keyTokenKey, Revision: store.MustNotExist}},
			[]store.Op{store.Put(keyTokenKey, encode(&tokenKeyRecord{V: formatVersion, Key: key}))})
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("creating token key: %w", err)
		}
		// Another replica created it first; read theirs.
	}
	return nil, fmt.Errorf("creating token key: %w", store.ErrConflict)
}
