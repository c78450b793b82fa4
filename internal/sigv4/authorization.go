package sigv4

import (
	"net/http"
	"strings"
)

// Algorithm is the only signing algorithm sigil accepts.
const Algorithm = "AWS4-HMAC-SHA256"

// scopeTerminator ends every SigV4 credential scope.
const scopeTerminator = "aws4_request"

// authorization is what a request claims about its signature: the parsed
// Authorization header, or the presigned query parameters. Its strings are
// substrings of the request; parsing allocates nothing on success.
type authorization struct {
	// accessKeyID is the first element of the credential.
	accessKeyID string
	// scope is the rest of the credential, date/region/service/terminator,
	// exactly as the client sent it; it goes into the string to sign.
	scope string
	// date, region, service and terminator are scope's four elements.
	date, region, service, terminator string
	// signedHeaders is the semicolon-separated, sorted, lower-case list of
	// signed header names.
	signedHeaders string
	// signature is the decoded signature.
	signature [32]byte
}

// parseAuthorization parses an Authorization header of the form
//
//	AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=<64 hex>
//
// Components are separated by commas with optional spaces around them; each
// must appear exactly once and no other may appear. Scope values (date,
// region, service, terminator) are checked later, against the request and the
// server's configuration; here only the shape is. Every failure is an
// [*Error] of kind [ErrIncompleteSignature].
func parseAuthorization(h string) (authorization, *Error) {
	var a authorization
	rest, ok := strings.CutPrefix(h, Algorithm)
	if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return a, newError(ErrIncompleteSignature,
			"Unsupported authorization type or algorithm; only "+Algorithm+" is accepted.",
			"authorization header does not start with "+Algorithm+" and a space")
	}
	var credential, signature string
	var haveCred, haveSigned, haveSig bool
	for more := true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
		part = trimSpaceTab(part)
		name, value, ok := strings.Cut(part, "=")
		if !ok || value == "" {
			if part == "" {
				return a, incomplete("Authorization header has an empty component.", "empty authorization component")
			}
			return a, incomplete("Authorization header component "+quoteClient(name)+" must have the form Name=Value.", "authorization component without a value")
		}
		var seen *bool
		switch name {
		case "Credential":
			seen, credential = &haveCred, value
		case "SignedHeaders":
			seen, a.signedHeaders = &haveSigned, value
		case "Signature":
			seen, signature = &haveSig, value
		default:
			return a, incomplete("Authorization header has an unknown component "+quoteClient(name)+".", "unknown authorization component")
		}
		if *seen {
			return a, incomplete("Authorization header has more than one "+quoteClient(name)+" component.", "duplicated authorization component")
		}
		*seen = true
	}
	if !haveCred || !haveSigned || !haveSig {
		var msg string
		if !haveCred {
			msg += "Authorization header requires 'Credential' parameter. "
		}
		if !haveSigned {
			msg += "Authorization header requires 'SignedHeaders' parameter. "
		}
		if !haveSig {
			msg += "Authorization header requires 'Signature' parameter. "
		}
		return a, incomplete(msg+"Authorization="+quoteClient(h), "authorization header lacks a component")
	}
	if err := a.setCredential(credential); err != nil {
		return a, err
	}
	if err := checkSignedHeaders(a.signedHeaders); err != nil {
		return a, err
	}
	if err := a.setSignature(signature); err != nil {
		return a, err
	}
	return a, nil
}

// setCredential splits a credential, AKID/date/region/service/terminator.
func (a *authorization) setCredential(c string) *Error {
	if strings.Count(c, "/") != 4 {
		return incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got "+quoteClient(c)+".",
			"credential does not have five elements")
	}
	akid, scope, _ := strings.Cut(c, "/")
	if akid == "" {
		return incomplete("Credential has an empty access key id.", "empty access key id")
	}
	a.accessKeyID, a.scope = akid, scope
	rest := scope
	a.date, rest, _ = strings.Cut(rest, "/")
	a.region, rest, _ = strings.Cut(rest, "/")
	a.service, a.terminator, _ = strings.Cut(rest, "/")
	return nil
}

// setSignature decodes a 64-digit hex signature (either case).
func (a *authorization) setSignature(s string) *Error {
	if len(s) != 2*len(a.signature) {
		return incomplete("Signature must be 64 hexadecimal digits.", "signature has the wrong length")
	}
	for i := range a.signature {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return incomplete("Signature must be 64 hexadecimal digits.", "signature is not hexadecimal")
		}
		a.signature[i] = hi<<4 | lo
	}
	return nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// maxSignedHeaders bounds the SignedHeaders list, which keeps the work of
// checking headers against it small whatever a client sends. Real requests
// sign a handful.
const maxSignedHeaders = 128

// checkSignedHeaders requires a non-empty list of lower-case header names
// separated by semicolons, in strictly ascending order (so without
// duplicates), as the specification produces them.
func checkSignedHeaders(list string) *Error {
	prev := ""
	for n, rest := 1, list; ; n++ {
		if n > maxSignedHeaders {
			return incomplete("SignedHeaders may name at most 128 headers.", "too many signed headers")
		}
		name, tail, more := strings.Cut(rest, ";")
		if name == "" || !isLowerToken(name) || (prev != "" && name <= prev) {
			return incomplete("SignedHeaders must be a sorted, semicolon-separated list of lower-case header names, got "+quoteClient(list)+".",
				"malformed signed headers list")
		}
		prev = name
		if !more {
			return nil
		}
		rest = tail
	}
}

// isLowerToken reports whether s is an HTTP token (RFC 9110) without
// upper-case letters.
func isLowerToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// hasSignedHeader reports whether name is in the signed headers list.
func hasSignedHeader(list, name string) bool {
	for rest := list; rest != ""; {
		var h string
		h, rest, _ = strings.Cut(rest, ";")
		if h == name {
			return true
		}
	}
	return false
}

// unsignedAmzHeader returns the name of an X-Amz-* header of h that the
// signature does not cover, or "". Every SDK signs all of them, and some
// select behaviour (X-Amz-Target picks the operation), so an unsigned one
// means the request was altered after signing. X-Amz-Cf-Id is exempt:
// CloudFront adds it in front of an origin.
func unsignedAmzHeader(h http.Header, signed string) string {
	n := 0
	for k := range h {
		if len(k) < len("x-amz-") || !strings.EqualFold(k[:len("x-amz-")], "x-amz-") || strings.EqualFold(k, "X-Amz-Cf-Id") {
			continue
		}
		if n++; n > maxSignedHeaders {
			// More X-Amz-* headers than can be signed: one is not.
			return "X-Amz-*"
		}
		if !hasSignedHeaderFold(signed, k) {
			return k
		}
	}
	return ""
}

// hasSignedHeaderFold is hasSignedHeader for a name in any case.
func hasSignedHeaderFold(list, name string) bool {
	for rest := list; rest != ""; {
		var h string
		h, rest, _ = strings.Cut(rest, ";")
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

func incomplete(message, debug string) *Error {
	return newError(ErrIncompleteSignature, message, debug)
}

func trimSpaceTab(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
