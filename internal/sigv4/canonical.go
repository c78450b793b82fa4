package sigv4

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// This file builds the canonical request of the SigV4 specification:
//
//	Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n PayloadHash
//
// into pooled buffers, without regexp, fmt or per-request maps.

// state holds the reusable buffers of one verification.
type state struct {
	canon   []byte                // the canonical request
	sts     []byte                // HMAC inner block followed by the string to sign
	norm    []byte                // the canonical URI, dot segments removed
	literal []byte                // the canonical URI, path as sent
	scratch []byte                // canonical encodings of query names and values
	pairs   []qpair               // query parameters, indexes into scratch
	key     []byte                // canonical MIME form of a header name
	payload [2 * sha256.Size]byte // hex SHA-256 of the body
}

// qpair is one query parameter; its name and value are scratch[k0:k1] and
// scratch[v0:v1], both already in canonical (RFC 3986) encoding.
type qpair struct{ k0, k1, v0, v1 int }

// maxPooled caps the buffer capacity a state may keep when it returns to the
// pool, so one huge request does not pin memory forever.
const maxPooled = 64 << 10

// statePool recycles states between verifications; the zero value is ready
// to use.
type statePool struct{ p sync.Pool }

func (sp *statePool) get() *state {
	if s, ok := sp.p.Get().(*state); ok {
		return s
	}
	return &state{
		canon: make([]byte, 0, 1024),
		sts:   make([]byte, 0, 256),
		key:   make([]byte, 0, 64),
	}
}

func (sp *statePool) put(s *state) {
	if cap(s.canon) > maxPooled || cap(s.scratch) > maxPooled || cap(s.pairs) > maxPooled/32 ||
		cap(s.norm) > maxPooled || cap(s.literal) > maxPooled || cap(s.sts) > maxPooled {
		return
	}
	s.pairs = s.pairs[:0]
	sp.p.Put(s)
}

// unreserved marks the RFC 3986 unreserved characters, the only ones SigV4
// leaves unencoded. It is a read-only table.
var unreserved = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['.'], t['_'], t['~'] = true, true, true, true
	return t
}()

const upperHex = "0123456789ABCDEF"

func appendPercent(dst []byte, c byte) []byte {
	return append(dst, '%', upperHex[c>>4], upperHex[c&15])
}

// appendEncodedSegment URI-encodes a path segment as it arrived on the wire.
// Because the wire form is already percent-encoded, encoding it again (every
// byte outside the unreserved set, '%' included) is the "double encoding"
// that every service except S3 uses.
func appendEncodedSegment(dst []byte, seg string) []byte {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if unreserved[c] {
			dst = append(dst, c)
		} else {
			dst = appendPercent(dst, c)
		}
	}
	return dst
}

// appendLiteralURI appends the canonical URI for the path exactly as sent:
// each byte except '/' and the unreserved ones percent-encoded. This is what
// aws-sdk-go-v2 signs, which does not normalise paths.
func appendLiteralURI(dst []byte, path string) []byte {
	if path == "" {
		return append(dst, '/')
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '/' || unreserved[c] {
			dst = append(dst, c)
		} else {
			dst = appendPercent(dst, c)
		}
	}
	return dst
}

// appendNormalizedURI appends the canonical URI for the path with empty and
// "." segments removed and ".." segments applied (RFC 3986 section 5.2.4, plus
// the removal of repeated slashes that AWS services require), then encoded as
// in appendLiteralURI. A trailing slash survives when any segment does. This
// is what botocore (the aws CLI, boto3) and the JavaScript SDK sign. Dot
// segments are recognised on the wire form, so an encoded "%2E%2E" is a plain
// segment, as in those signers.
func appendNormalizedURI(dst []byte, path string) []byte {
	base := len(dst)
	for rest := path; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		switch seg {
		case "", ".":
		case "..":
			if len(dst) > base {
				dst = dst[:base+bytes.LastIndexByte(dst[base:], '/')]
			}
		default:
			dst = append(dst, '/')
			dst = appendEncodedSegment(dst, seg)
		}
	}
	if len(dst) == base {
		return append(dst, '/')
	}
	if strings.HasSuffix(path, "/") {
		dst = append(dst, '/')
	}
	return dst
}

// requestTarget returns the path and raw query of r as the client sent them.
// On a server, r.RequestURI is the request target off the wire, so it is
// preferred over r.URL, which Go has decoded and re-encoded (and which
// middleware may rewrite). A request built in-process has no RequestURI; then
// the path is r.URL.Opaque's path part or r.URL.EscapedPath, as the SDK
// signer takes it.
func requestTarget(r *http.Request) (path, query string) {
	if uri := r.RequestURI; uri != "" {
		if i := strings.IndexByte(uri, '?'); i >= 0 {
			uri, query = uri[:i], uri[i+1:]
		}
		switch {
		case strings.HasPrefix(uri, "/"):
			return uri, query
		case strings.Contains(uri, "://"):
			// Absolute form: scheme://authority/path.
			_, after, _ := strings.Cut(uri, "://")
			if i := strings.IndexByte(after, '/'); i >= 0 {
				return after[i:], query
			}
			return "/", query
		default:
			// "*" or the authority form of CONNECT.
			return "/", query
		}
	}
	query = r.URL.RawQuery
	if op := r.URL.Opaque; op != "" {
		if i := strings.IndexByte(op, '?'); i >= 0 {
			op = op[:i]
		}
		op = strings.TrimPrefix(op, "//")
		if i := strings.IndexByte(op, '/'); i >= 0 {
			return op[i:], query
		}
		return "/", query
	}
	return r.URL.EscapedPath(), query
}

// parseQuery splits a raw query into parameters, each name and value decoded
// ('+' is a space, as in Go's url.ParseQuery, which the Go SDK signs from)
// and re-encoded canonically into s.scratch, then sorts them by encoded name
// and then encoded value. Empty parameters ("a=1&&b=2") are skipped; a name
// without "=" has an empty value. It reports false for a malformed percent
// escape, which no signer could have signed.
func (s *state) parseQuery(raw string) bool {
	s.scratch = s.scratch[:0]
	s.pairs = s.pairs[:0]
	for rest := raw; rest != ""; {
		var kv string
		kv, rest, _ = strings.Cut(rest, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		var p qpair
		var ok bool
		p.k0 = len(s.scratch)
		if s.scratch, ok = appendQueryComponent(s.scratch, k); !ok {
			return false
		}
		p.k1 = len(s.scratch)
		p.v0 = p.k1
		if s.scratch, ok = appendQueryComponent(s.scratch, v); !ok {
			return false
		}
		p.v1 = len(s.scratch)
		s.pairs = append(s.pairs, p)
	}
	sc := s.scratch
	slices.SortFunc(s.pairs, func(a, b qpair) int {
		if c := bytes.Compare(sc[a.k0:a.k1], sc[b.k0:b.k1]); c != 0 {
			return c
		}
		return bytes.Compare(sc[a.v0:a.v1], sc[b.v0:b.v1])
	})
	return true
}

// appendQueryComponent decodes one raw query name or value and appends its
// canonical encoding: unreserved characters as they are, every other byte as
// %XY with upper-case hex.
func appendQueryComponent(dst []byte, raw string) ([]byte, bool) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '%':
			if i+2 >= len(raw) {
				return dst, false
			}
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return dst, false
			}
			c = hi<<4 | lo
			i += 2
		case '+':
			c = ' '
		}
		if unreserved[c] {
			dst = append(dst, c)
		} else {
			dst = appendPercent(dst, c)
		}
	}
	return dst, true
}

// param returns the canonically encoded value of the query parameter whose
// encoded name is name (its first occurrence) and how many times it occurs.
func (s *state) param(name string) (value []byte, count int) {
	for _, p := range s.pairs {
		if string(s.scratch[p.k0:p.k1]) == name {
			if count == 0 {
				value = s.scratch[p.v0:p.v1]
			}
			count++
		}
	}
	return value, count
}

// decodeCanonical reverses appendQueryComponent's encoding.
func decodeCanonical(b []byte) string {
	if bytes.IndexByte(b, '%') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) {
			hi, _ := unhex(b[i+1])
			lo, _ := unhex(b[i+2])
			out = append(out, hi<<4|lo)
			i += 2
			continue
		}
		out = append(out, b[i])
	}
	return string(out)
}

// canonicalInput is what the canonical request is built from, besides r.
type canonicalInput struct {
	uri           []byte // canonical URI
	signedHeaders string
	payloadHash   []byte
	presigned     bool // leave X-Amz-Signature out of the query
	redact        bool // write REDACTED for the security token (debug copies)
}

// buildCanonical writes the canonical request into s.canon. It reports the
// name of a signed header the request does not have, if any, and then leaves
// s.canon incomplete.
func (s *state) buildCanonical(r *http.Request, in *canonicalInput) (missing string) {
	b := append(s.canon[:0], r.Method...)
	b = append(b, '\n')
	b = append(b, in.uri...)
	b = append(b, '\n')
	first := true
	for _, p := range s.pairs {
		k := s.scratch[p.k0:p.k1]
		if in.presigned && string(k) == "X-Amz-Signature" {
			continue
		}
		if !first {
			b = append(b, '&')
		}
		first = false
		b = append(b, k...)
		b = append(b, '=')
		if in.redact && string(k) == "X-Amz-Security-Token" {
			b = append(b, "REDACTED"...)
		} else {
			b = append(b, s.scratch[p.v0:p.v1]...)
		}
	}
	b = append(b, '\n')
	for rest := in.signedHeaders; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		b = append(b, name...)
		b = append(b, ':')
		switch name {
		case "host":
			host := r.Host
			if host == "" {
				host = r.URL.Host
			}
			b = appendHeaderValue(b, host)
		default:
			values := s.header(r, name)
			if values == nil {
				if name == "content-length" && r.ContentLength > 0 {
					b = strconv.AppendInt(b, r.ContentLength, 10)
					break
				}
				// The canonical request is useless now; stop, so a long
				// list of absent names costs no more than one.
				return name
			}
			if in.redact && name == "x-amz-security-token" {
				b = append(b, "REDACTED"...)
				break
			}
			for i, v := range values {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendHeaderValue(b, v)
			}
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, in.signedHeaders...)
	b = append(b, '\n')
	b = append(b, in.payloadHash...)
	s.canon = b
	return ""
}

// header returns r's values for the lower-case header name. Go stores
// headers under their canonical MIME key, so that is looked up first, without
// allocating; other spellings (a request built in-process) are found by a
// case-insensitive scan.
func (s *state) header(r *http.Request, name string) []string {
	k := s.key[:0]
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		upper = c == '-'
		k = append(k, c)
	}
	s.key = k
	if v, ok := r.Header[string(k)]; ok {
		return v
	}
	for key, v := range r.Header {
		if strings.EqualFold(key, name) {
			return v
		}
	}
	return nil
}

// appendHeaderValue appends a header value trimmed of surrounding white
// space, with each run of spaces inside it collapsed to one, as the
// specification and aws-sdk-go-v2 do.
func appendHeaderValue(dst []byte, v string) []byte {
	v = strings.TrimSpace(v)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' && i > 0 && v[i-1] == ' ' {
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
