// Package jsonenc appends JSON strings exactly as encoding/json writes
// them. The hand-written encoders on sigil's hot paths (Secrets Manager
// responses, audit records) use it so that their output stays, byte for
// byte, what encoding/json would produce, without its reflection.
package jsonenc

import "unicode/utf8"

// AppendString appends s as json.Marshal encodes the string string(s):
// with HTML escaping, so <, > and & become \u003c, \u003e and \u0026. (A
// []byte is taken as the string it holds, not base64-encoded as
// json.Marshal would a []byte value.)
func AppendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	return appendString(dst, s, &htmlPlain)
}

// AppendStringNoHTML appends s as a json.Encoder with SetEscapeHTML(false)
// encodes the string string(s).
func AppendStringNoHTML[S ~string | ~[]byte](dst []byte, s S) []byte {
	return appendString(dst, s, &plain)
}

// Plain reports whether c stands for itself inside a JSON string, in both
// directions: the bytes 0x20 to 0x7F other than the quote and the
// backslash. A scanner may skip such bytes, and AppendStringNoHTML copies
// them.
func Plain(c byte) bool { return plain[c] }

// plain and htmlPlain mark the bytes each encoding copies as they are
// (DEL, 0x7F, included, as encoding/json does).
var (
	plain     = plainTable("")
	htmlPlain = plainTable("<>&")
)

func plainTable(escaped string) (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	for i := range len(escaped) {
		t[escaped[i]] = false
	}
	return t
}

const hexDigits = "0123456789abcdef"

// appendString is encoding/json's string encoding: the ASCII bytes marked
// in copied as they are, `"` and `\` escaped, \b \f \n \r \t short, every
// other ASCII byte (the rest below 0x20, and <, > and & when HTML escaping)
// as \u00XX, invalid UTF-8 as \ufffd, and U+2028 and U+2029 escaped.
func appendString[S ~string | ~[]byte](dst []byte, s S, copied *[256]bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if copied[b] {
			i++
			continue
		}
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
