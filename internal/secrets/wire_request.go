package secrets

import (
	"unicode/utf8"

	"sigil.dev/sigil/internal/awsproto"
)

// decodeGetSecretValueInput decodes a GetSecretValue request body into in.
// The common shape, a flat object whose members are SecretId, VersionId and
// VersionStage spelled exactly so, each at most once, with plain string
// values (no escapes, no control characters, valid UTF-8), is decoded by
// hand; encoding/json decodes such a body to exactly the same result.
// Anything else (other or differently cased members, duplicates, escapes,
// nulls, malformed JSON) goes to awsproto.DecodeJSON, so its errors and
// corner cases are unchanged. FuzzGetSecretValueInput checks the two agree.
func decodeGetSecretValueInput(body []byte, in *getSecretValueInput) error {
	if decodeFlatStrings(body, in) {
		return nil
	}
	*in = getSecretValueInput{}
	return awsproto.DecodeJSON(body, in)
}

// decodeFlatStrings is the hand decoder of decodeGetSecretValueInput. It
// reports false, leaving in partly filled, for any body it does not accept.
func decodeFlatStrings(b []byte, in *getSecretValueInput) bool {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		key, next, ok := plainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, next)
		if i == len(b) || b[i] != ':' {
			return false
		}
		val, next, ok := plainString(b, skipSpace(b, i+1))
		if !ok {
			return false
		}
		var field **string
		switch string(key) {
		case "SecretId":
			field = &in.SecretId
		case "VersionId":
			field = &in.VersionId
		case "VersionStage":
			field = &in.VersionStage
		default:
			return false
		}
		if *field != nil {
			return false
		}
		v := string(val)
		*field = &v
		i = skipSpace(b, next)
		if i == len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] that needs no unescaping: it
// returns its contents and the index after the closing quote, or false if
// there is no string at i or it holds an escape, a control character or
// invalid UTF-8.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	start := i + 1
	ascii := true
	for j := start; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, 0, false
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, 0, false
}
