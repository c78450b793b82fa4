package dynamic

import (
	"fmt"
	"io"
	"strings"
)

// PostgresMaxIdentifier is the longest identifier PostgreSQL keeps, in bytes
// (NAMEDATALEN - 1); longer names are silently truncated by the server.
const PostgresMaxIdentifier = 63

// DefaultPasswordAlphabet is the alphabet of generated passwords: letters
// and digits, which need no escaping in any client's connection string.
const DefaultPasswordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// PasswordPolicy says how generated passwords look. Its zero value means 32
// characters from [DefaultPasswordAlphabet].
type PasswordPolicy struct {
	// Length is the number of characters; zero means 32. It must be at
	// least 16.
	Length int
	// Alphabet is the set of characters drawn from, each with equal
	// probability; "" means DefaultPasswordAlphabet. It must hold between 2
	// and 256 distinct ASCII characters.
	Alphabet string
}

func (p PasswordPolicy) withDefaults() PasswordPolicy {
	if p.Length == 0 {
		p.Length = 32
	}
	if p.Alphabet == "" {
		p.Alphabet = DefaultPasswordAlphabet
	}
	return p
}

func (p PasswordPolicy) validate() error {
	p = p.withDefaults()
	if p.Length < 16 {
		return fmt.Errorf("%w: password length %d is below 16", ErrInvalidConfig, p.Length)
	}
	if len(p.Alphabet) < 2 || len(p.Alphabet) > 256 {
		return fmt.Errorf("%w: password alphabet must hold 2 to 256 characters", ErrInvalidConfig)
	}
	seen := map[byte]bool{}
	for i := 0; i < len(p.Alphabet); i++ {
		c := p.Alphabet[i]
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: password alphabet must be printable ASCII without space", ErrInvalidConfig)
		}
		if seen[c] {
			return fmt.Errorf("%w: password alphabet repeats %q", ErrInvalidConfig, c)
		}
		seen[c] = true
	}
	return nil
}

// randomString returns n characters drawn uniformly from alphabet (at most
// 256 characters) using bytes from r. Bytes at or above the largest multiple
// of len(alphabet) are rejected, so there is no modulo bias.
func randomString(r io.Reader, alphabet string, n int) (string, error) {
	k := len(alphabet)
	limit := 256 - 256%k
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2+8)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("reading randomness: %w", err)
		}
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out = append(out, alphabet[int(b)%k])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}

// usernameAlphabet is used for the random suffix of usernames: lower-case
// letters and digits, so names never need quoting in a client.
const usernameAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// usernameRandom is the length of a username's random suffix: 16 characters
// of 36 give about 82 bits.
const usernameRandom = 16

// makeUsername returns prefix_role_<random>, with prefix and role reduced to
// lower-case letters, digits and underscores and shortened so that the whole
// name fits in max bytes.
func makeUsername(r io.Reader, prefix, role string, max int) (string, error) {
	suffix, err := randomString(r, usernameAlphabet, usernameRandom)
	if err != nil {
		return "", err
	}
	readable := cleanName(prefix)
	if c := cleanName(role); c != "" {
		if readable != "" {
			readable += "_"
		}
		readable += c
	}
	room := max - len(suffix) - 1
	if len(readable) > room {
		readable = readable[:room]
	}
	readable = strings.TrimRight(readable, "_")
	if readable == "" {
		return "v_" + suffix, nil
	}
	return readable + "_" + suffix, nil
}

// cleanName lower-cases s and maps every character other than a-z, 0-9 and
// '_' to '_', collapsing runs, so that the readable part of a username is
// plain ASCII whatever the secret is called.
func cleanName(s string) string {
	var b strings.Builder
	last := byte('_')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		default:
			c = '_'
		}
		if c == '_' && last == '_' {
			continue
		}
		b.WriteByte(c)
		last = c
	}
	return strings.TrimRight(b.String(), "_")
}
