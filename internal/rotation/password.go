package rotation

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Character classes of generated passwords, as AWS's GetRandomPassword
// documents them.
const (
	classUpper       = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	classLower       = "abcdefghijklmnopqrstuvwxyz"
	classDigits      = "0123456789"
	classPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)

// UnsafeCharacters are never put in a generated password, whatever the
// policy says: they break connection strings and URLs (":/@?#%&=+;"),
// quoting in SQL, shells and JSON ("'`\"\\"), or are easily mangled
// ("[]{}<>|^" and space). AWS's own rotation functions exclude a similar
// set (/@"'\).
const UnsafeCharacters = ":/@?#%&=+;'`\"\\[]{}<>|^ "

// Password length bounds.
const (
	// DefaultPasswordLength is the length of a generated password when the
	// policy says 0, as for GetRandomPassword.
	DefaultPasswordLength = 32
	// MinPasswordLength and MaxPasswordLength bound PasswordPolicy.Length.
	MinPasswordLength = 8
	MaxPasswordLength = 4096
)

// PasswordPolicy describes generated passwords, with GetRandomPassword's
// parameters. The zero value means 32 characters from upper- and
// lower-case letters, digits and punctuation, at least one of each, without
// [UnsafeCharacters].
type PasswordPolicy struct {
	// Length is the number of characters; 0 means DefaultPasswordLength.
	Length int `json:"length,omitempty"`
	// ExcludeCharacters are left out in addition to UnsafeCharacters.
	ExcludeCharacters string `json:"excludeCharacters,omitempty"`
	// ExcludeUppercase, ExcludeLowercase, ExcludeNumbers and
	// ExcludePunctuation leave out a whole class.
	ExcludeUppercase   bool `json:"excludeUppercase,omitempty"`
	ExcludeLowercase   bool `json:"excludeLowercase,omitempty"`
	ExcludeNumbers     bool `json:"excludeNumbers,omitempty"`
	ExcludePunctuation bool `json:"excludePunctuation,omitempty"`
	// AllowMissingTypes drops the rule that every included class appears
	// at least once (GetRandomPassword's RequireEachIncludedType=false).
	AllowMissingTypes bool `json:"allowMissingTypes,omitempty"`
}

// Validate reports whether p can generate passwords.
func (p PasswordPolicy) Validate() error {
	_, _, _, err := p.compile()
	return err
}

// compile returns the length, the pool of allowed characters and the
// classes of which the password must hold one character each.
func (p PasswordPolicy) compile() (n int, pool []byte, required [][]byte, err error) {
	n = p.Length
	if n == 0 {
		n = DefaultPasswordLength
	}
	if n < MinPasswordLength || n > MaxPasswordLength {
		return 0, nil, nil, fmt.Errorf("%w: password length %d is outside %d to %d", ErrInvalidRotator, n, MinPasswordLength, MaxPasswordLength)
	}
	exclude := UnsafeCharacters + p.ExcludeCharacters
	for _, cl := range []struct {
		chars    string
		excluded bool
	}{
		{classUpper, p.ExcludeUppercase},
		{classLower, p.ExcludeLowercase},
		{classDigits, p.ExcludeNumbers},
		{classPunctuation, p.ExcludePunctuation},
	} {
		if cl.excluded {
			continue
		}
		var chars []byte
		for i := 0; i < len(cl.chars); i++ {
			if strings.IndexByte(exclude, cl.chars[i]) < 0 {
				chars = append(chars, cl.chars[i])
			}
		}
		if len(chars) == 0 {
			continue
		}
		pool = append(pool, chars...)
		if !p.AllowMissingTypes {
			required = append(required, chars)
		}
	}
	if len(pool) < 2 {
		return 0, nil, nil, fmt.Errorf("%w: the password policy leaves fewer than two characters", ErrInvalidRotator)
	}
	return n, pool, required, nil
}

// maxWholeDraws is how many whole passwords Generate draws hoping for one
// that holds every required class before it plants the missing ones.
const maxWholeDraws = 64

// Generate returns a password following p, drawing randomness from r
// (crypto/rand in production). Characters are drawn uniformly by rejection
// sampling, so there is no modulo bias; a draw that misses a required class
// is thrown away whole, and only after many such draws (a policy with a
// tiny class) is the password built from one character of each required
// class and the rest from the pool, shuffled.
func (p PasswordPolicy) Generate(r io.Reader) (string, error) {
	n, pool, required, err := p.compile()
	if err != nil {
		return "", err
	}
	r = bufio.NewReaderSize(r, 4*n)
	for range maxWholeDraws {
		pw, err := draw(r, pool, n)
		if err != nil {
			return "", err
		}
		if len(missing(pw, required)) == 0 {
			return string(pw), nil
		}
	}
	// Fallback: one character of each required class plus the rest
	// from the pool, shuffled (Fisher-Yates).
	var pw []byte
	for _, cl := range required {
		c, err := draw(r, cl, 1)
		if err != nil {
			return "", err
		}
		pw = append(pw, c...)
	}
	rest, err := draw(r, pool, n-len(pw))
	if err != nil {
		return "", err
	}
	pw = append(pw, rest...)
	for i := len(pw) - 1; i > 0; i-- {
		j, err := uniform(r, i+1)
		if err != nil {
			return "", err
		}
		pw[i], pw[j] = pw[j], pw[i]
	}
	return string(pw), nil
}

// missing returns the classes of which pw holds no character.
func missing(pw []byte, classes [][]byte) [][]byte {
	var out [][]byte
	for _, cl := range classes {
		found := false
		for _, c := range pw {
			if strings.IndexByte(string(cl), c) >= 0 {
				found = true
				break
			}
		}
		if !found {
			out = append(out, cl)
		}
	}
	return out
}

// draw returns n characters drawn uniformly from alphabet.
func draw(r io.Reader, alphabet []byte, n int) ([]byte, error) {
	out := make([]byte, 0, n)
	for len(out) < n {
		i, err := uniform(r, len(alphabet))
		if err != nil {
			return nil, err
		}
		out = append(out, alphabet[i])
	}
	return out, nil
}

// uniform returns an integer in [0, k) for 0 < k <= MaxPasswordLength,
// rejecting 16-bit draws at or above the largest multiple of k.
func uniform(r io.Reader, k int) (int, error) {
	limit := 1<<16 - (1<<16)%k
	var b [2]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, fmt.Errorf("reading randomness: %w", err)
		}
		if v := int(binary.BigEndian.Uint16(b[:])); v < limit {
			return v % k, nil
		}
	}
}
