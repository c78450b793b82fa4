package iam

import "unicode/utf8"

// This file holds the wildcard matcher shared by actions, resources,
// StringLike and the ARN operators. A pattern is compiled once into tokens:
// literal runs, "*" (any run of characters, including none, across ':' and
// '/') and "?" (exactly one character). Literal runs may hold '*' and '?'
// themselves, which is how the ${*} and ${?} escapes and substituted policy
// variables stay literal. Common shapes (exact, prefix, suffix, "*") take a
// fast path that is a single string comparison.

// tokKind is the kind of one pattern token.
type tokKind uint8

const (
	tokLit  tokKind = iota // a literal run of bytes
	tokStar                // "*": any run of characters
	tokOne                 // "?": exactly one character
)

// tok is one pattern token.
type tok struct {
	kind tokKind
	s    string // the literal run, for tokLit
}

// globShape is the fast-path classification of a compiled pattern.
type globShape uint8

const (
	shapeGeneral globShape = iota // backtracking match over toks
	shapeExact                    // text == lit
	shapePrefix                   // text starts with lit
	shapeSuffix                   // text ends with lit
	shapeAny                      // "*": everything matches
)

// glob is a compiled wildcard pattern. The zero value matches only the empty
// string.
type glob struct {
	shape globShape
	lit   string // the literal of the exact, prefix and suffix shapes
	toks  []tok
	// fold makes literal comparison ASCII case-insensitive; literals are
	// stored lower-cased when it is set (action patterns).
	fold bool
}

// tokenize splits a policy string into tokens, treating '*' and '?' as
// wildcards, and appends them to dst.
func tokenize(dst []tok, s string) []tok {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '*' && c != '?' {
			continue
		}
		if i > start {
			dst = appendLit(dst, s[start:i])
		}
		if c == '*' {
			// Consecutive stars are one star.
			if n := len(dst); n == 0 || dst[n-1].kind != tokStar {
				dst = append(dst, tok{kind: tokStar})
			}
		} else {
			dst = append(dst, tok{kind: tokOne})
		}
		start = i + 1
	}
	if start < len(s) {
		dst = appendLit(dst, s[start:])
	}
	return dst
}

// appendLit appends a literal run, merging it with a preceding literal.
func appendLit(dst []tok, s string) []tok {
	if s == "" {
		return dst
	}
	if n := len(dst); n > 0 && dst[n-1].kind == tokLit {
		dst[n-1].s += s
		return dst
	}
	return append(dst, tok{kind: tokLit, s: s})
}

// compileGlob compiles a pattern in which '*' and '?' are wildcards.
func compileGlob(pattern string, fold bool) glob {
	if fold {
		pattern = asciiLower(pattern)
	}
	return globFromToks(tokenize(nil, pattern), fold)
}

// literalGlob compiles a pattern that matches exactly s.
func literalGlob(s string) glob {
	return glob{shape: shapeExact, lit: s}
}

// globFromToks classifies tokens into a fast-path shape where possible.
func globFromToks(toks []tok, fold bool) glob {
	g := glob{toks: toks, fold: fold}
	switch {
	case len(toks) == 0:
		g.shape = shapeExact
	case len(toks) == 1 && toks[0].kind == tokLit:
		g.shape, g.lit = shapeExact, toks[0].s
	case len(toks) == 1 && toks[0].kind == tokStar:
		g.shape = shapeAny
	case len(toks) == 2 && toks[0].kind == tokLit && toks[1].kind == tokStar:
		g.shape, g.lit = shapePrefix, toks[0].s
	case len(toks) == 2 && toks[0].kind == tokStar && toks[1].kind == tokLit:
		g.shape, g.lit = shapeSuffix, toks[1].s
	default:
		g.shape = shapeGeneral
	}
	return g
}

// match reports whether s matches the pattern.
func (g *glob) match(s string) bool {
	switch g.shape {
	case shapeAny:
		return true
	case shapeExact:
		return len(s) == len(g.lit) && hasPrefix(s, g.lit, g.fold)
	case shapePrefix:
		return hasPrefix(s, g.lit, g.fold)
	case shapeSuffix:
		return len(s) >= len(g.lit) && hasPrefix(s[len(s)-len(g.lit):], g.lit, g.fold)
	}
	return matchToks(g.toks, s, g.fold)
}

// matchToks matches s against toks with the classic single-backtrack
// algorithm: on a mismatch, the most recent star absorbs one more character.
// It runs in O(len(toks)*len(s)) time and never allocates.
func matchToks(toks []tok, s string, fold bool) bool {
	ti, si := 0, 0
	starTi, starSi := -1, 0
	for {
		if ti < len(toks) {
			t := &toks[ti]
			switch t.kind {
			case tokStar:
				starTi, starSi = ti, si
				ti++
				continue
			case tokOne:
				if si < len(s) {
					_, w := utf8.DecodeRuneInString(s[si:])
					si += w
					ti++
					continue
				}
			case tokLit:
				if hasPrefix(s[si:], t.s, fold) {
					si += len(t.s)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		if starTi < 0 || starSi >= len(s) {
			return false
		}
		_, w := utf8.DecodeRuneInString(s[starSi:])
		starSi += w
		si, ti = starSi, starTi+1
	}
}

// hasPrefix reports whether s starts with prefix; with fold, ASCII letters in
// s compare case-insensitively against the lower-cased prefix.
func hasPrefix(s, prefix string, fold bool) bool {
	if len(s) < len(prefix) {
		return false
	}
	if !fold {
		return s[:len(prefix)] == prefix
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// asciiLower lower-cases ASCII letters only, keeping byte offsets stable.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
