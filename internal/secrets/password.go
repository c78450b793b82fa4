package secrets

import (
	"context"
	"strings"

	"sigil.dev/sigil/internal/awsproto"
)

// This file holds GetRandomPassword and the generator behind it.

// Character classes of generated passwords, as AWS documents them.
const (
	classUpper       = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	classLower       = "abcdefghijklmnopqrstuvwxyz"
	classDigits      = "0123456789"
	classPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)

const (
	defaultPasswordLength = 32
	maxPasswordLength     = 4096
	maxExcludeChars       = 4096
	// maxDrawnChars bounds the characters drawn by whole-password
	// rejection sampling before the fallback construction is used.
	maxDrawnChars = 1 << 20
)

// passwordSpec is a validated GetRandomPassword request.
type passwordSpec struct {
	length int
	// pool is every character the password may contain.
	pool []byte
	// required lists the classes of which the password must hold at least
	// one character (each already reduced by ExcludeCharacters).
	required [][]byte
}

func (s *Service) getRandomPassword(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "GetRandomPassword", true)
	inv.sensitive = true
	var in getRandomPasswordInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	spec, aerr := passwordSpecOf(&in)
	if aerr != nil {
		return nil, aerr
	}
	if err := inv.authorize(ctx, inv.starTarget()); err != nil {
		return inv.finish(ctx, nil, err)
	}
	pw, err := s.generatePassword(spec)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	return inv.finish(ctx, &getRandomPasswordOutput{RandomPassword: pw}, nil)
}

// passwordSpecOf validates a request and builds its character pool.
func passwordSpecOf(in *getRandomPasswordInput) (*passwordSpec, *awsproto.Error) {
	spec := &passwordSpec{length: defaultPasswordLength}
	if in.PasswordLength != nil {
		if *in.PasswordLength < 1 || *in.PasswordLength > maxPasswordLength {
			return nil, errInvalidParameter("The parameter PasswordLength must be between 1 and %d.", maxPasswordLength)
		}
		spec.length = int(*in.PasswordLength)
	}
	exclude := deref(in.ExcludeCharacters)
	if len(exclude) > maxExcludeChars {
		return nil, errInvalidParameter("The parameter ExcludeCharacters must be at most %d characters long.", maxExcludeChars)
	}
	keep := func(class string) []byte {
		var out []byte
		for i := 0; i < len(class); i++ {
			if strings.IndexByte(exclude, class[i]) < 0 {
				out = append(out, class[i])
			}
		}
		return out
	}
	requireEach := in.RequireEachIncludedType == nil || *in.RequireEachIncludedType
	for _, cl := range []struct {
		chars    string
		excluded *bool
	}{
		{classUpper, in.ExcludeUppercase},
		{classLower, in.ExcludeLowercase},
		{classDigits, in.ExcludeNumbers},
		{classPunctuation, in.ExcludePunctuation},
	} {
		if cl.excluded != nil && *cl.excluded {
			continue
		}
		chars := keep(cl.chars)
		if len(chars) == 0 {
			continue
		}
		spec.pool = append(spec.pool, chars...)
		if requireEach {
			spec.required = append(spec.required, chars)
		}
	}
	if in.IncludeSpace != nil && *in.IncludeSpace && strings.IndexByte(exclude, ' ') < 0 {
		spec.pool = append(spec.pool, ' ')
	}
	if len(spec.pool) == 0 {
		return nil, errInvalidParameter("The Exclude parameters and ExcludeCharacters leave no characters to build a password from.")
	}
	if len(spec.required) > spec.length {
		return nil, errInvalidParameter("Password length is too short based on the required types.")
	}
	return spec, nil
}

// generatePassword draws a password uniformly from every password of
// spec.length characters from spec.pool that holds each required class:
// characters are drawn uniformly (rejection sampling of random bytes, so no
// modulo bias) and a password missing a class is thrown away whole. Only
// when the classes are so lopsided that this keeps failing (after
// maxDrawnChars characters) does it fall back to placing one character of
// each class and shuffling, which is unbiased per position but not exactly
// uniform over all passwords.
func (s *Service) generatePassword(spec *passwordSpec) (string, error) {
	r := &uniform{s: s}
	var member [256][4]bool
	for ci, class := range spec.required {
		for _, ch := range class {
			member[ch][ci] = true
		}
	}
	pw := make([]byte, spec.length)
	for drawn := 0; drawn < maxDrawnChars; drawn += spec.length {
		var seen [4]bool
		for i := range pw {
			j, err := r.intn(len(spec.pool))
			if err != nil {
				return "", err
			}
			pw[i] = spec.pool[j]
			for ci := range spec.required {
				seen[ci] = seen[ci] || member[pw[i]][ci]
			}
		}
		ok := true
		for ci := range spec.required {
			ok = ok && seen[ci]
		}
		if ok {
			return string(pw), nil
		}
	}
	for i := range pw {
		pool := spec.pool
		if i < len(spec.required) {
			pool = spec.required[i]
		}
		j, err := r.intn(len(pool))
		if err != nil {
			return "", err
		}
		pw[i] = pool[j]
	}
	for i := len(pw) - 1; i > 0; i-- { // Fisher-Yates
		j, err := r.intn(i + 1)
		if err != nil {
			return "", err
		}
		pw[i], pw[j] = pw[j], pw[i]
	}
	return string(pw), nil
}

// uniform draws uniform integers from Config.Rand, buffering its reads.
type uniform struct {
	s   *Service
	buf [512]byte
	pos int
	n   int
}

func (u *uniform) byte() (byte, error) {
	if u.pos == u.n {
		if err := u.s.rand.fill(u.buf[:]); err != nil {
			return 0, err
		}
		u.pos, u.n = 0, len(u.buf)
	}
	b := u.buf[u.pos]
	u.pos++
	return b, nil
}

// intn returns a uniform integer in [0, n), for 0 < n <= 65536, by
// rejection sampling: values from the incomplete last block are drawn again.
func (u *uniform) intn(n int) (int, error) {
	if n <= 256 {
		limit := 256 - 256%n
		for {
			b, err := u.byte()
			if err != nil {
				return 0, err
			}
			if int(b) < limit {
				return int(b) % n, nil
			}
		}
	}
	limit := 65536 - 65536%n
	for {
		hi, err := u.byte()
		if err != nil {
			return 0, err
		}
		lo, err := u.byte()
		if err != nil {
			return 0, err
		}
		if v := int(hi)<<8 | int(lo); v < limit {
			return v % n, nil
		}
	}
}
