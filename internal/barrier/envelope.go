package barrier

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"sigil.dev/sigil/internal/store"
)

// Value envelope, format 1 (see the package comment):
//
//	offset  size  field
//	0       1     format version, 1
//	1       4     key term, big-endian, >= 1
//	5       12    GCM nonce, random per write
//	17      n+16  AES-256-GCM ciphertext of the n-byte value, then the tag
//
// The additional authenticated data is bytes 0..4 (format and term) followed
// by the storage key, so editing the header or moving the envelope to another
// key makes authentication fail. The nonce is authenticated by GCM itself.
const (
	envelopeV1   byte = 1
	headerSize        = 1 + 4
	nonceSize         = 12
	tagSize           = 16
	payloadStart      = headerSize + nonceSize

	// Overhead is how many bytes the barrier adds to every stored value.
	Overhead = payloadStart + tagSize

	// MaxValueSize is the largest value the barrier accepts: the inner
	// store's limit less the envelope.
	MaxValueSize = store.MaxValueSize - Overhead
)

// errEnvelope is the internal reason an envelope was rejected before any key
// was tried; callers turn it into ErrDecrypt.
var errEnvelope = errors.New("malformed envelope")

// newAEAD returns AES-256-GCM keyed with k.
func newAEAD(k *secretKey) (cipher.AEAD, error) {
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("barrier: internal error: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("barrier: internal error: %w", err)
	}
	return aead, nil
}

// aadPool recycles additional-data buffers so that sealing and opening do
// not allocate one per call (the buffer escapes through the cipher.AEAD
// interface). The zero value is ready to use.
type aadPool struct{ p sync.Pool }

// get returns a buffer holding the envelope header followed by key.
func (a *aadPool) get(header []byte, key string) *[]byte {
	bp, _ := a.p.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 128)
		bp = &b
	}
	*bp = append(append((*bp)[:0], header...), key...)
	return bp
}

func (a *aadPool) put(bp *[]byte) {
	if cap(*bp) > 4096 {
		return // do not keep buffers grown by unusually long keys
	}
	*bp = (*bp)[:0]
	a.p.Put(bp)
}

// sealEnvelope encrypts plaintext for storage at key under the data key of
// term, drawing the nonce from rand.
func sealEnvelope(aead cipher.AEAD, term uint32, rand io.Reader, pool *aadPool, key string, plaintext []byte) ([]byte, error) {
	out := make([]byte, payloadStart, payloadStart+len(plaintext)+tagSize)
	out[0] = envelopeV1
	binary.BigEndian.PutUint32(out[1:headerSize], term)
	nonce := out[headerSize:payloadStart]
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("barrier: reading nonce: %w", err)
	}
	aad := pool.get(out[:headerSize], key)
	out = aead.Seal(out, nonce, plaintext, *aad)
	pool.put(aad)
	return out, nil
}

// envelopeTerm checks an envelope's shape and returns the key term it names.
func envelopeTerm(env []byte) (uint32, error) {
	if len(env) < Overhead {
		return 0, fmt.Errorf("%w: %d bytes is shorter than the %d-byte minimum", errEnvelope, len(env), Overhead)
	}
	if env[0] != envelopeV1 {
		return 0, fmt.Errorf("%w: unknown format version %d", errEnvelope, env[0])
	}
	term := binary.BigEndian.Uint32(env[1:headerSize])
	if term == 0 {
		return 0, fmt.Errorf("%w: key term 0", errEnvelope)
	}
	return term, nil
}

// openEnvelope authenticates and decrypts env, stored at key, with aead. It
// decrypts in place: env is overwritten (with plaintext on success, zeros on
// failure) and the returned plaintext aliases it. The caller must have
// checked env with envelopeTerm.
func openEnvelope(aead cipher.AEAD, pool *aadPool, key string, env []byte) ([]byte, error) {
	ct := env[payloadStart:]
	aad := pool.get(env[:headerSize], key)
	pt, err := aead.Open(ct[:0], env[headerSize:payloadStart], ct, *aad)
	pool.put(aad)
	if err != nil {
		return nil, err
	}
	return pt, nil
}
