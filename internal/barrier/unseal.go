package barrier

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"

	"sigil.dev/sigil/internal/barrier/shamir"
	"sigil.dev/sigil/internal/store"
)

// shareSize is the decoded size of an unseal share: the 32 y-values of the
// key-encryption key and the x coordinate.
const shareSize = keySize + 1

// InitShamir initialises the barrier with unseal shares instead of a
// provider's key-encryption key. It generates a KEK, initialises the keyring
// with it (recording shares and threshold in the keyring's authenticated
// plaintext header), splits the KEK into shares of which threshold are
// needed, and returns them. The KEK itself is stored nowhere, and the
// barrier is left unsealed.
//
// Each share is printable text: the standard, padded base64 encoding of the
// 33-byte share from package shamir (y-values, then the x coordinate), 44
// characters. This is the encoding HashiCorp Vault prints for its unseal
// keys, and the share bytes are interchangeable with Vault's. Hand each share
// to a different operator; they are not shown again.
//
// It requires 2 <= threshold <= shares <= 255 (an error wrapping
// shamir.ErrInvalidParameters otherwise) and fails with
// ErrAlreadyInitialized like Initialize.
func (b *Barrier) InitShamir(ctx context.Context, shares, threshold int) ([][]byte, error) {
	var kek secretKey
	defer kek.wipe()
	if _, err := io.ReadFull(b.rand, kek[:]); err != nil {
		return nil, fmt.Errorf("generating key-encryption key: %w", err)
	}
	// Split before writing anything, so that bad parameters change nothing.
	raw, err := shamir.SplitWithRand(b.rand, kek[:], shares, threshold)
	if err != nil {
		return nil, fmt.Errorf("splitting key-encryption key: %w", err)
	}
	defer func() {
		for _, s := range raw {
			clear(s)
		}
	}()
	if err := b.initialize(ctx, &kek, shareConfig{shares: shares, threshold: threshold}); err != nil {
		return nil, err
	}
	out := make([][]byte, len(raw))
	for i, s := range raw {
		out[i] = base64.StdEncoding.AppendEncode(nil, s)
	}
	return out, nil
}

// decodeShare decodes one printable share (surrounding whitespace ignored).
// Its errors never quote the input.
func decodeShare(text []byte) ([]byte, error) {
	text = bytes.TrimSpace(text)
	if len(text) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalidShare)
	}
	// The decoder would skip line breaks inside the text; refuse them so
	// that only the canonical 44-character form is accepted.
	if bytes.ContainsAny(text, "\r\n") {
		return nil, fmt.Errorf("%w: line break inside the share", ErrInvalidShare)
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Strict().Decode(raw, text)
	if err != nil {
		clear(raw)
		return nil, fmt.Errorf("%w: not valid standard base64", ErrInvalidShare)
	}
	raw = raw[:n:n]
	if n != shareSize {
		clear(raw)
		return nil, fmt.Errorf("%w: decodes to %d bytes, want %d", ErrInvalidShare, n, shareSize)
	}
	if raw[keySize] == 0 {
		clear(raw)
		return nil, fmt.Errorf("%w: x coordinate 0", ErrInvalidShare)
	}
	return raw, nil
}

// Unsealer collects unseal shares, one operator at a time, and unseals the
// barrier once it holds the threshold. Shares are kept in memory only until
// the combination is tried. It is safe for concurrent use and prints as
// REDACTED.
type Unsealer struct {
	redacted
	b         *Barrier
	threshold int

	mu     sync.Mutex
	shares [][]byte // decoded
}

// NewUnsealer returns an Unsealer for b, reading the threshold from the
// stored keyring's plaintext header (it works while sealed). It fails with
// ErrNotInitialized if there is no keyring and ErrNotShamir if the keyring
// was initialised with a provider's key.
func (b *Barrier) NewUnsealer(ctx context.Context) (*Unsealer, error) {
	if b.closed.Load() {
		return nil, store.ErrClosed
	}
	e, err := b.inner.Get(ctx, keyringKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotInitialized
	}
	if err != nil {
		return nil, fmt.Errorf("reading keyring: %w", err)
	}
	cfg, err := parseKeyringHeader(e.Value)
	if err != nil {
		return nil, err
	}
	if !cfg.shamir() {
		return nil, ErrNotShamir
	}
	return &Unsealer{b: b, threshold: cfg.threshold}, nil
}

// Threshold returns how many shares unseal the barrier.
func (u *Unsealer) Threshold() int { return u.threshold }

// Add offers one printable share (as returned by InitShamir). It returns how
// many shares are held, the threshold, and whether the barrier is now
// unsealed.
//
//   - A share that is malformed, or whose x coordinate repeats one already
//     held (the same share twice), is refused with an error wrapping
//     ErrInvalidShare; the shares held so far are kept.
//   - When the threshold is reached the shares are combined and the
//     barrier unsealed with the result. Whatever the outcome, the shares are
//     then forgotten: on success progress is the threshold and unsealed is
//     true; if the combination does not open the keyring (a wrong share, or
//     shares of another barrier) the error wraps ErrWrongKey and progress
//     is 0, so every share must be entered again.
//   - If the barrier is already unsealed, Add returns unsealed true and
//     holds nothing.
func (u *Unsealer) Add(ctx context.Context, share []byte) (progress, threshold int, unsealed bool, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.b.Sealed() {
		u.reset()
		return 0, u.threshold, true, nil
	}
	raw, err := decodeShare(share)
	if err != nil {
		return len(u.shares), u.threshold, false, err
	}
	for _, s := range u.shares {
		if s[keySize] == raw[keySize] {
			clear(raw)
			return len(u.shares), u.threshold, false, fmt.Errorf("%w: this share (or one with the same x coordinate) was already given", ErrInvalidShare)
		}
	}
	u.shares = append(u.shares, raw)
	if len(u.shares) < u.threshold {
		return len(u.shares), u.threshold, false, nil
	}
	kek, err := shamir.Combine(u.shares)
	u.reset()
	if err != nil {
		return 0, u.threshold, false, fmt.Errorf("%w: %w", ErrInvalidShare, err)
	}
	err = u.b.Unseal(ctx, kek)
	clear(kek)
	if err != nil {
		if errors.Is(err, ErrWrongKey) {
			u.b.log.Warn("unseal shares combined to a key that does not open the keyring; progress reset")
		}
		return 0, u.threshold, false, err
	}
	return u.threshold, u.threshold, true, nil
}

// Reset forgets every share held, zeroing them.
func (u *Unsealer) Reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reset()
}

func (u *Unsealer) reset() {
	for _, s := range u.shares {
		clear(s)
	}
	u.shares = nil
}

// Progress returns how many shares are held towards the threshold.
func (u *Unsealer) Progress() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.shares)
}
