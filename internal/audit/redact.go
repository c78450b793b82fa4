package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"sigil.dev/sigil/internal/jsonenc"
)

// HashPrefix starts every redacted value in the log.
const HashPrefix = "hmac-sha256:"

// SensitiveKey reports whether a JSON object key names a field that could
// hold secret material, so its value must never be written to the log. The
// match is case-insensitive on the key as decoded (escapes resolved). A key
// is sensitive when, lower-cased, it
//
//   - is one of secretstring, secretbinary, secretaccesskey, share, shares,
//     unsealkey, kek, webhookkey, hmackey; or
//   - ends with token, password, secret, secretkey, privatekey, passphrase
//     or assertion (SessionToken, WebIdentityToken, token, Password,
//     dbPassword, ClientSecret, PrivateKey, SAMLAssertion, ...),
//
// except nexttoken (a pagination cursor) and clientrequesttoken (the secret
// version id, which responses show as VersionId).
func SensitiveKey(key string) bool {
	return sensitiveLower(strings.ToLower(key))
}

// sensitiveKeyBytes is SensitiveKey for a key held as bytes. Short ASCII
// keys, nearly all of them, are lower-cased on the stack; anything else
// goes through SensitiveKey itself, so the two never disagree (Unicode
// case mapping included).
func sensitiveKeyBytes(key []byte) bool {
	var buf [48]byte
	if len(key) > len(buf) {
		return SensitiveKey(string(key))
	}
	for i, c := range key {
		if c >= utf8.RuneSelf {
			return SensitiveKey(string(key))
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return sensitiveLower(buf[:len(key)])
}

// sensitiveLower is SensitiveKey's rule on a key already lower-cased.
func sensitiveLower[S ~string | ~[]byte](k S) bool {
	switch string(k) {
	case "nexttoken", "clientrequesttoken":
		return false
	case "secretstring", "secretbinary", "secretaccesskey", "share", "shares", "unsealkey", "kek", "webhookkey", "hmackey":
		return true
	}
	for _, suffix := range [...]string{"token", "password", "secret", "secretkey", "privatekey", "passphrase", "assertion"} {
		if len(k) >= len(suffix) && string(k[len(k)-len(suffix):]) == suffix {
			return true
		}
	}
	return false
}

// HashValue returns "hmac-sha256:<hex>" of value under key: what the log
// holds in place of a sensitive value. For a JSON string the value hashed
// is the string's content (escapes resolved, no quotes); for any other
// JSON value it is its compact encoding with object keys sorted.
func HashValue(key, value []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(value)
	return HashPrefix + hex.EncodeToString(m.Sum(nil))
}

// marshalCompact encodes v without HTML escaping and without the trailing
// newline json.Encoder adds.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%w: encoding: %w", ErrInvalidEvent, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// appendHashValue appends HashValue(key, value) to dst, taking the HMAC
// state from macs when it is not nil.
func appendHashValue(dst, key, value []byte, macs *macPool) []byte {
	var m hash.Hash
	if macs != nil {
		m = macs.get(key)
		defer macs.put(m)
	} else {
		m = hmac.New(sha256.New, key)
	}
	m.Write(value)
	// Sum appends the raw digest to dst (a local array would escape
	// through the interface call); it is then moved out and hex-encoded
	// in its place.
	at := len(dst)
	dst = m.Sum(dst)
	var sum [sha256.Size]byte
	copy(sum[:], dst[at:])
	dst = append(dst[:at], HashPrefix...)
	return hex.AppendEncode(dst, sum[:])
}

// macPool reuses HMAC-SHA256 states of one key. hmac.New derives the
// keyed pads and allocates each time; a state used once saves its pads and
// restores them on Reset, so a pooled state costs only the hashing of the
// value. One pool serves one key: the encoder's, for its whole life.
type macPool struct{ p sync.Pool }

// get returns a state keyed with key and ready for Write.
func (mp *macPool) get(key []byte) hash.Hash {
	if m, ok := mp.p.Get().(hash.Hash); ok {
		return m
	}
	return hmac.New(sha256.New, key)
}

// put resets m and keeps it for reuse. The reset comes first because a
// used state still holds the unhashed tail of the last value (up to a
// block of it, in the clear) in its buffer: a pooled state holds no
// plaintext, only the key's pads and, in its outer hash until the next
// Sum, the last value's inner digest (no more than its logged HMAC
// reveals to a holder of the key). States the pool drops are left to the
// garbage collector unzeroed, as hmac.New's were.
func (mp *macPool) put(m hash.Hash) {
	m.Reset()
	mp.p.Put(m)
}

// redact marshals v (nil, json.RawMessage, []byte or any value that
// marshals to a JSON object) and returns it compact, with every member name
// in lower camel case (see camelName) and the value of every sensitive
// member, at any depth, replaced by its HashValue. It returns nil for nil
// or JSON null.
func redact(v any, key []byte) (json.RawMessage, error) {
	out, err := appendRedacted(nil, v, key, nil)
	if out == nil || err != nil {
		return nil, err
	}
	return out, nil
}

// appendRedacted is redact appending to dst, with HMAC states from macs
// when it is not nil; it returns dst unchanged (nil when dst is nil) for
// nil or JSON null.
func appendRedacted(dst []byte, v any, key []byte, macs *macPool) ([]byte, error) {
	var raw []byte
	switch t := v.(type) {
	case nil:
		return dst, nil
	case json.RawMessage:
		raw = t
	case []byte:
		raw = t
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return dst, fmt.Errorf("%w: encoding parameters: %w", ErrInvalidEvent, err)
		}
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return dst, nil
	}
	if raw[0] != '{' {
		return dst, fmt.Errorf("%w: parameters must be a JSON object", ErrInvalidEvent)
	}
	r := redactor{src: raw, dst: dst, key: key, macs: macs}
	if err := r.value(true); err != nil {
		return dst, fmt.Errorf("%w: parameters are not valid JSON: %w", ErrInvalidEvent, err)
	}
	if r.skipSpace(); r.pos != len(r.src) {
		return dst, fmt.Errorf("%w: parameters hold more than one JSON value", ErrInvalidEvent)
	}
	return r.dst, nil
}

// maxDepth is encoding/json's nesting limit, which redact keeps so that it
// accepts exactly the documents json.Valid accepts.
const maxDepth = 10000

var (
	errSyntax   = errors.New("syntax error")
	errTooDeep  = errors.New("exceeded max depth")
	errTruncate = errors.New("unexpected end of JSON input")
)

// redactor is a validating single-pass JSON scanner that appends the
// compact form of src to dst while it reads. Values are copied byte for
// byte (a string holding invalid UTF-8 is re-encoded with U+FFFD, so
// records stay UTF-8); member names are decoded, checked with
// SensitiveKey, and written in lower camel case; the value of a sensitive
// member is scanned without being copied and only its HMAC is written.
// Nothing is decoded into Go values except a sensitive value that is not
// a string, which HashValue defines by its sorted-key encoding.
type redactor struct {
	src     []byte
	pos     int
	dst     []byte
	key     []byte
	macs    *macPool // nil: a fresh HMAC state per value
	depth   int
	scratch []byte // decoded member names and sensitive strings
}

func (r *redactor) skipSpace() {
	for r.pos < len(r.src) {
		switch r.src[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// value scans one value at r.pos, appending it when emit is set.
func (r *redactor) value(emit bool) error {
	r.skipSpace()
	if r.pos >= len(r.src) {
		return errTruncate
	}
	start := r.pos
	switch c := r.src[r.pos]; {
	case c == '{':
		return r.object(emit)
	case c == '[':
		return r.array(emit)
	case c == '"':
		escaped, badUTF8, err := r.scanString()
		if err != nil {
			return err
		}
		if emit {
			if badUTF8 {
				r.scratch = unquote(r.scratch[:0], r.src[start:r.pos], escaped)
				r.dst = appendJSONString(r.dst, r.scratch)
			} else {
				r.dst = append(r.dst, r.src[start:r.pos]...)
			}
		}
		return nil
	case c == '-' || '0' <= c && c <= '9':
		if err := r.scanNumber(); err != nil {
			return err
		}
	case c == 't':
		if err := r.literal("true"); err != nil {
			return err
		}
	case c == 'f':
		if err := r.literal("false"); err != nil {
			return err
		}
	case c == 'n':
		if err := r.literal("null"); err != nil {
			return err
		}
	default:
		return errSyntax
	}
	if emit {
		r.dst = append(r.dst, r.src[start:r.pos]...)
	}
	return nil
}

func (r *redactor) literal(lit string) error {
	if len(r.src)-r.pos < len(lit) {
		if string(r.src[r.pos:]) == lit[:len(r.src)-r.pos] {
			return errTruncate
		}
		return errSyntax
	}
	if string(r.src[r.pos:r.pos+len(lit)]) != lit {
		return errSyntax
	}
	r.pos += len(lit)
	return nil
}

// scanNumber scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (r *redactor) scanNumber() error {
	s, i := r.src, r.pos
	digits := func() bool {
		n := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > n
	}
	if s[i] == '-' {
		i++
	}
	switch {
	case i >= len(s):
		return errTruncate
	case s[i] == '0':
		i++
	case '1' <= s[i] && s[i] <= '9':
		digits()
	default:
		return errSyntax
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return r.numberEnd(i)
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return r.numberEnd(i)
		}
	}
	r.pos = i
	return nil
}

// numberEnd reports a number cut short at i: truncated input or a syntax
// error.
func (r *redactor) numberEnd(i int) error {
	if i >= len(r.src) {
		return errTruncate
	}
	return errSyntax
}

// scanString scans the string starting at r.pos (its opening quote) and
// reports whether it holds escapes and whether it holds invalid UTF-8.
func (r *redactor) scanString() (escaped, badUTF8 bool, err error) {
	s := r.src
	i := r.pos + 1
	nonASCII := false
	start := i
	for {
		for i < len(s) && jsonenc.Plain(s[i]) {
			i++
		}
		if i >= len(s) {
			return false, false, errTruncate
		}
		c := s[i]
		switch {
		case c == '"':
			if nonASCII && !utf8.Valid(s[start:i]) {
				badUTF8 = true
			}
			r.pos = i + 1
			return escaped, badUTF8, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(s) {
				return false, false, errTruncate
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				for range 4 {
					if i >= len(s) {
						return false, false, errTruncate
					}
					if !isHex(s[i]) {
						return false, false, errSyntax
					}
					i++
				}
			default:
				return false, false, errSyntax
			}
		case c < 0x20:
			return false, false, errSyntax
		default:
			if c >= utf8.RuneSelf {
				nonASCII = true
			}
			i++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (r *redactor) array(emit bool) error {
	r.pos++ // [
	if r.depth++; r.depth > maxDepth {
		return errTooDeep
	}
	if emit {
		r.dst = append(r.dst, '[')
	}
	r.skipSpace()
	if r.pos < len(r.src) && r.src[r.pos] == ']' {
		r.pos++
	} else {
		for {
			if err := r.value(emit); err != nil {
				return err
			}
			r.skipSpace()
			if r.pos >= len(r.src) {
				return errTruncate
			}
			c := r.src[r.pos]
			r.pos++
			if c == ']' {
				break
			}
			if c != ',' {
				return errSyntax
			}
			if emit {
				r.dst = append(r.dst, ',')
			}
		}
	}
	if emit {
		r.dst = append(r.dst, ']')
	}
	r.depth--
	return nil
}

func (r *redactor) object(emit bool) error {
	r.pos++ // {
	if r.depth++; r.depth > maxDepth {
		return errTooDeep
	}
	if emit {
		r.dst = append(r.dst, '{')
	}
	r.skipSpace()
	if r.pos < len(r.src) && r.src[r.pos] == '}' {
		r.pos++
	} else {
		for {
			r.skipSpace()
			if r.pos >= len(r.src) {
				return errTruncate
			}
			if r.src[r.pos] != '"' {
				return errSyntax
			}
			start := r.pos
			escaped, badUTF8, err := r.scanString()
			if err != nil {
				return err
			}
			end := r.pos
			r.skipSpace()
			if r.pos >= len(r.src) {
				return errTruncate
			}
			if r.src[r.pos] != ':' {
				return errSyntax
			}
			r.pos++
			sensitive := false
			if emit {
				sensitive = r.member(r.src[start:end], escaped, badUTF8)
			}
			if sensitive {
				if err := r.sensitiveValue(); err != nil {
					return err
				}
			} else if err := r.value(emit); err != nil {
				return err
			}
			r.skipSpace()
			if r.pos >= len(r.src) {
				return errTruncate
			}
			c := r.src[r.pos]
			r.pos++
			if c == '}' {
				break
			}
			if c != ',' {
				return errSyntax
			}
			if emit {
				r.dst = append(r.dst, ',')
			}
		}
	}
	if emit {
		r.dst = append(r.dst, '}')
	}
	r.depth--
	return nil
}

// member appends the member name of the string token tok in lower camel
// case and a colon, and reports whether the name is sensitive.
func (r *redactor) member(tok []byte, escaped, badUTF8 bool) bool {
	if !escaped && !badUTF8 {
		name := tok[1 : len(tok)-1]
		r.dst = append(r.dst, '"')
		at := len(r.dst)
		r.dst = append(r.dst, name...)
		camelName(r.dst[at:])
		r.dst = append(r.dst, '"', ':')
		return sensitiveKeyBytes(name)
	}
	r.scratch = unquote(r.scratch[:0], tok, escaped)
	sensitive := sensitiveKeyBytes(r.scratch)
	camelName(r.scratch)
	r.dst = appendJSONString(r.dst, r.scratch)
	r.dst = append(r.dst, ':')
	return sensitive
}

// sensitiveValue scans the value of a sensitive member and appends its
// HashValue as a string, or null for null.
func (r *redactor) sensitiveValue() error {
	r.skipSpace()
	start := r.pos
	if r.pos < len(r.src) && r.src[r.pos] == '"' {
		escaped, _, err := r.scanString()
		if err != nil {
			return err
		}
		tok := r.src[start:r.pos]
		content := tok[1 : len(tok)-1]
		if escaped || !utf8.Valid(content) {
			r.scratch = unquote(r.scratch[:0], tok, escaped)
			content = r.scratch
		}
		r.dst = append(r.dst, '"')
		r.dst = appendHashValue(r.dst, r.key, content, r.macs)
		r.dst = append(r.dst, '"')
		return nil
	}
	if err := r.value(false); err != nil {
		return err
	}
	raw := r.src[start:r.pos]
	if string(raw) == "null" {
		r.dst = append(r.dst, "null"...)
		return nil
	}
	// Numbers, booleans, objects and arrays hash as their compact
	// encoding with object keys sorted: decode and re-encode. Rare.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return err
	}
	b, err := marshalCompact(doc)
	if err != nil {
		return err
	}
	r.dst = append(r.dst, '"')
	r.dst = appendHashValue(r.dst, r.key, b, r.macs)
	r.dst = append(r.dst, '"')
	return nil
}

// unquote appends the content of the valid JSON string token tok to dst,
// exactly as encoding/json decodes it: escapes resolved, an unpaired
// surrogate escape and every byte of invalid UTF-8 replaced by U+FFFD.
func unquote(dst, tok []byte, escaped bool) []byte {
	s := tok[1 : len(tok)-1]
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && escaped:
			e := s[i+1]
			i += 2
			switch e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := hex4(s[i:])
				i += 4
				if utf16.IsSurrogate(rr) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(s[i+2:])); dec != utf8.RuneError {
							dst = utf8.AppendRune(dst, dec)
							i += 6
							continue
						}
					}
					rr = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, rr)
			default: // " \ /
				dst = append(dst, e)
			}
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			rr, size := utf8.DecodeRune(s[i:])
			if rr == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// hex4 decodes four hex digits (already validated).
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// camelName rewrites a member name in place the way CloudTrail spells
// request and response members: a leading run of ASCII capitals is
// lower-cased, all but its last letter when a lower-case letter follows
// (SecretId → secretId, ARN → arn, KMSKeyId → kmsKeyId, VersionStages →
// versionStages). Names that start otherwise are left as they are.
func camelName(name []byte) {
	n := 0
	for n < len(name) && 'A' <= name[n] && name[n] <= 'Z' {
		n++
	}
	if n > 1 && n < len(name) && 'a' <= name[n] && name[n] <= 'z' {
		n--
	}
	for i := range n {
		name[i] += 'a' - 'A'
	}
}
