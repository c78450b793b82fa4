// Package shamir implements Shamir's secret sharing over GF(2^8), the scheme
// sigil uses to split its key-encryption key among operators.
//
// [Split] turns a secret into n shares, any t of which reconstruct it with
// [Combine]; fewer than t shares reveal nothing about it. Each byte of the
// secret is the constant term of its own random polynomial of degree t-1, and
// a share is the polynomials' values at one x coordinate.
//
// # Share layout
//
// A share is len(secret)+1 bytes: the y-values, one per secret byte, followed
// by the x coordinate (1..255) as the last byte. This is the layout of
// HashiCorp Vault's shamir package with the same field (the AES polynomial
// x^8+x^4+x^3+x+1), so shares produced by either implementation combine with
// the other.
//
// # Security notes
//
//   - Field arithmetic is constant-time: multiplication is shift-and-xor with
//     masks and inversion is exponentiation to the 254th power, so no table
//     is indexed by secret bytes.
//   - Every polynomial coefficient above the constant term is uniformly
//     random, including the leading one. Forcing a non-zero leading
//     coefficient (as some implementations do) would let t-1 shares rule out
//     one candidate value per secret byte; uniform coefficients give perfect
//     secrecy.
//   - Combine cannot tell a wrong share from a right one: it always returns
//     some bytes. Callers must authenticate the result (sigil's barrier does,
//     by unsealing its keyring with it).
//   - x coordinates are a random subset of 1..255. They are not secret.
package shamir

import (
	"crypto/rand"
	"fmt"
	"io"
)

// MaxShares is the largest number of shares (and threshold): the number of
// non-zero elements of GF(2^8).
const MaxShares = 255

// Split divides secret into parts shares, any threshold of which reconstruct
// it with [Combine]. It requires 2 <= threshold <= parts <= 255 and a
// non-empty secret, and returns an error wrapping [ErrInvalidParameters]
// otherwise. Each share is len(secret)+1 bytes (see the package comment).
// Randomness comes from crypto/rand.
func Split(secret []byte, parts, threshold int) ([][]byte, error) {
	return SplitWithRand(rand.Reader, secret, parts, threshold)
}

// SplitWithRand is [Split] drawing polynomial coefficients and x coordinates
// from r, which must be a cryptographically secure source outside tests.
func SplitWithRand(r io.Reader, secret []byte, parts, threshold int) ([][]byte, error) {
	switch {
	case threshold < 2:
		return nil, fmt.Errorf("%w: threshold %d is less than 2", ErrInvalidParameters, threshold)
	case parts < threshold:
		return nil, fmt.Errorf("%w: %d parts is less than the threshold %d", ErrInvalidParameters, parts, threshold)
	case parts > MaxShares:
		return nil, fmt.Errorf("%w: %d parts exceeds %d", ErrInvalidParameters, parts, MaxShares)
	case len(secret) == 0:
		return nil, fmt.Errorf("%w: empty secret", ErrInvalidParameters)
	}

	xs, err := xCoordinates(r, parts)
	if err != nil {
		return nil, err
	}

	// coeffs holds, for each secret byte, the threshold-1 coefficients of
	// x^1..x^(threshold-1). It is secret and wiped before returning.
	degree := threshold - 1
	coeffs := make([]byte, len(secret)*degree)
	defer clear(coeffs)
	if _, err := io.ReadFull(r, coeffs); err != nil {
		return nil, fmt.Errorf("shamir: reading random coefficients: %w", err)
	}

	out := make([][]byte, parts)
	for i := range out {
		share := make([]byte, len(secret)+1)
		x := xs[i]
		for idx, s := range secret {
			share[idx] = evaluate(s, coeffs[idx*degree:(idx+1)*degree], x)
		}
		share[len(secret)] = x
		out[i] = share
	}
	return out, nil
}

// evaluate returns the value at x of the polynomial with constant term c0 and
// higher coefficients cs (cs[0] for x^1), by Horner's rule.
func evaluate(c0 byte, cs []byte, x byte) byte {
	var y byte
	for i := len(cs) - 1; i >= 0; i-- {
		y = add(mul(y, x), cs[i])
	}
	return add(mul(y, x), c0)
}

// xCoordinates returns n distinct values from 1..255 in random order: the
// first n entries of a Fisher-Yates shuffle driven by r.
func xCoordinates(r io.Reader, n int) ([]byte, error) {
	var all [MaxShares]byte
	for i := range all {
		all[i] = byte(i + 1)
	}
	rb := &byteReader{r: r}
	for i := 0; i < n; i++ {
		j, err := rb.below(MaxShares - i)
		if err != nil {
			return nil, fmt.Errorf("shamir: choosing x coordinates: %w", err)
		}
		all[i], all[i+j] = all[i+j], all[i]
	}
	return append([]byte(nil), all[:n]...), nil
}

// byteReader hands out random bytes from r, reading in small batches.
type byteReader struct {
	r   io.Reader
	buf [64]byte
	n   int // unread bytes at the end of buf
}

// below returns a uniform integer in [0, n) for 1 <= n <= 256, rejecting
// bytes that would bias the result.
func (b *byteReader) below(n int) (int, error) {
	limit := 256 - 256%n
	for {
		if b.n == 0 {
			if _, err := io.ReadFull(b.r, b.buf[:]); err != nil {
				return 0, err
			}
			b.n = len(b.buf)
		}
		v := int(b.buf[len(b.buf)-b.n])
		b.n--
		if v < limit {
			return v % n, nil
		}
	}
}

// Combine reconstructs a secret from shares produced by [Split]. It needs at
// least the threshold number of shares; given fewer, or a wrong share, it
// returns unrelated bytes, so the caller must check the result. It returns an
// error wrapping [ErrInvalidShares] if there are fewer than two shares, more
// than 255, shares shorter than two bytes or of unequal length, or a
// duplicate or zero x coordinate. Combine never modifies parts.
func Combine(parts [][]byte) ([]byte, error) {
	switch {
	case len(parts) < 2:
		return nil, fmt.Errorf("%w: need at least 2 shares, got %d", ErrInvalidShares, len(parts))
	case len(parts) > MaxShares:
		return nil, fmt.Errorf("%w: %d shares exceeds %d", ErrInvalidShares, len(parts), MaxShares)
	}
	size := len(parts[0])
	if size < 2 {
		return nil, fmt.Errorf("%w: share 1 is %d bytes, need at least 2", ErrInvalidShares, size)
	}
	xs := make([]byte, len(parts))
	var seen [256]bool
	for i, p := range parts {
		if len(p) != size {
			return nil, fmt.Errorf("%w: share %d is %d bytes, share 1 is %d", ErrInvalidShares, i+1, len(p), size)
		}
		x := p[size-1]
		switch {
		case x == 0:
			return nil, fmt.Errorf("%w: share %d has x coordinate 0", ErrInvalidShares, i+1)
		case seen[x]:
			return nil, fmt.Errorf("%w: share %d repeats x coordinate %d", ErrInvalidShares, i+1, x)
		}
		seen[x] = true
		xs[i] = x
	}

	// Lagrange basis polynomials evaluated at 0 depend only on the (public)
	// x coordinates, so they are computed once for every byte:
	// basis_i = prod_{j != i} x_j / (x_i - x_j).
	basis := make([]byte, len(parts))
	for i := range xs {
		b := byte(1)
		for j := range xs {
			if i != j {
				b = mul(b, div(xs[j], add(xs[i], xs[j])))
			}
		}
		basis[i] = b
	}

	secret := make([]byte, size-1)
	for idx := range secret {
		var s byte
		for i, p := range parts {
			s = add(s, mul(p[idx], basis[i]))
		}
		secret[idx] = s
	}
	return secret, nil
}
