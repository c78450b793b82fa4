package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Credentials resolves access key ids to secret keys. Package authn
// implements it over the store.
type Credentials interface {
	// SecretKey returns the secret access key for accessKeyID, or an error
	// wrapping ErrUnknownAccessKey when there is no such (active) key. Any
	// other error is treated as a server failure and returned by Verify
	// wrapped, not as an authentication failure.
	SecretKey(ctx context.Context, accessKeyID string) (string, error)
}

// Options configures a [Verifier]. Region, Services and Credentials are
// required; the other fields have the defaults their comments give.
type Options struct {
	// Region is the one region this server answers for, e.g. "us-east-1".
	// The credential scope's region must equal it.
	Region string
	// Services are the signing names this server accepts in the credential
	// scope, e.g. "secretsmanager", "sts", "iam". Verify reports which one
	// a request used in [Result.Service]; the protocol router must check
	// that it matches the API the request is dispatched to.
	Services []string
	// Credentials resolves access keys to secrets.
	Credentials Credentials
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// MaxSkew is how far X-Amz-Date may be from Now in either direction.
	// Zero means DefaultMaxSkew (5 minutes, as AWS).
	MaxSkew time.Duration
	// AllowUnsignedPayload accepts X-Amz-Content-Sha256: UNSIGNED-PAYLOAD,
	// whose body is then not covered by the signature. False (the default)
	// refuses such requests.
	AllowUnsignedPayload bool
	// CacheSize bounds the number of derived signing keys kept. Zero means
	// DefaultCacheSize.
	CacheSize int
}

// Defaults for zero [Options] fields.
const (
	// DefaultMaxSkew is the default allowed clock skew.
	DefaultMaxSkew = 5 * time.Minute
	// DefaultCacheSize is the default number of cached signing keys.
	DefaultCacheSize = 1024
	// MaxPresignExpires is the longest X-Amz-Expires accepted: 7 days.
	MaxPresignExpires = 7 * 24 * time.Hour
)

// UnsignedPayload is the X-Amz-Content-Sha256 value of a request whose body
// is not signed.
const UnsignedPayload = "UNSIGNED-PAYLOAD"

// Verifier checks SigV4 signatures. It is safe for concurrent use.
type Verifier struct {
	region        string
	services      []string
	creds         Credentials
	now           func() time.Time
	maxSkew       time.Duration
	allowUnsigned bool
	cache         *keyCache
	states        statePool
}

// New returns a Verifier for opts. It fails when a required field is
// missing or a value is out of range, so a bad configuration stops the
// server at start-up instead of rejecting every request.
func New(opts Options) (*Verifier, error) {
	if opts.Region == "" {
		return nil, errors.New("sigv4: options: region is required")
	}
	if len(opts.Services) == 0 || slices.Contains(opts.Services, "") {
		return nil, errors.New("sigv4: options: at least one service, none empty, is required")
	}
	if opts.Credentials == nil {
		return nil, errors.New("sigv4: options: credentials are required")
	}
	if opts.MaxSkew < 0 || opts.CacheSize < 0 {
		return nil, errors.New("sigv4: options: max skew and cache size must not be negative")
	}
	v := &Verifier{
		region:        opts.Region,
		services:      slices.Clone(opts.Services),
		creds:         opts.Credentials,
		now:           opts.Now,
		maxSkew:       opts.MaxSkew,
		allowUnsigned: opts.AllowUnsignedPayload,
	}
	size := opts.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	v.cache = newKeyCache(size)
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxSkew == 0 {
		v.maxSkew = DefaultMaxSkew
	}
	return v, nil
}

// Result describes a verified request.
type Result struct {
	// AccessKeyID is the access key the request was signed with.
	AccessKeyID string
	// SessionToken is X-Amz-Security-Token (header or presigned query),
	// empty when absent. It is a bearer credential: authn verifies it, and
	// nothing may log it.
	SessionToken string
	// Region and Service are the credential scope's region and service.
	Region, Service string
	// SignedAt is the request's X-Amz-Date (or Date), in UTC.
	SignedAt time.Time
	// Presigned reports query-string authentication.
	Presigned bool
}

// String describes r without its session token.
func (r *Result) String() string {
	tok := ""
	if r.SessionToken != "" {
		tok = " session-token=REDACTED"
	}
	return "sigv4.Result{access-key=" + r.AccessKeyID + " region=" + r.Region + " service=" + r.Service + tok + "}"
}

// LogValue describes r for log/slog without its session token.
func (r *Result) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("access_key_id", r.AccessKeyID),
		slog.Bool("session_token", r.SessionToken != ""),
		slog.String("region", r.Region),
		slog.String("service", r.Service),
		slog.Time("signed_at", r.SignedAt),
		slog.Bool("presigned", r.Presigned),
	)
}

// claim gathers what a request asserts, from either authentication form.
type claim struct {
	authorization
	amzDate   string // the ISO 8601 basic timestamp for the string to sign
	signedAt  time.Time
	token     string
	presigned bool
	expires   time.Duration
}

// Verify checks r's SigV4 signature, from the Authorization header or from
// presigned query parameters. body is the complete request body, already
// read by the caller (which enforces its size limit); Verify never reads
// r.Body. On success it returns what the signature established. Every
// authentication failure is an [*Error] whose Kind is one of the package's
// sentinels; any other error is a Credentials failure (for example the store
// is unavailable) and is a server error, not the client's.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) (*Result, error) {
	st := v.states.get()
	defer v.states.put(st)

	path, rawQuery := requestTarget(r)
	queryOK := rawQuery == "" || st.parseQuery(rawQuery)
	var algCount int
	if queryOK {
		_, algCount = st.param("X-Amz-Algorithm")
	}

	var c claim
	var err *Error
	authz := r.Header["Authorization"]
	switch {
	case len(authz) == 0 && algCount == 0:
		return nil, newError(ErrMissingAuth, msgMissingAuth, "no Authorization header and no X-Amz-Algorithm query parameter")
	case !queryOK:
		// No signer produces this, so no signature can cover it.
		return nil, newError(ErrSignatureMismatch, msgMismatch, "query string has a malformed percent escape")
	case len(authz) > 0 && algCount > 0:
		return nil, incomplete(msgTwoMechanisms, "both an Authorization header and X-Amz-Algorithm")
	case len(authz) > 1:
		return nil, incomplete("Only one Authorization header is allowed.", "more than one Authorization header")
	case len(authz) == 1:
		err = v.headerClaim(r, authz[0], &c)
	default:
		err = v.presignedClaim(st, r, &c)
	}
	if err != nil {
		return nil, err
	}
	if name := unsignedAmzHeader(r.Header, c.signedHeaders); name != "" {
		return nil, newError(ErrSignatureMismatch, "The "+quoteClient(name)+" header must be signed.", "x-amz-* header "+quoteClient(name)+" is not signed")
	}
	if err := v.checkScope(&c); err != nil {
		return nil, err
	}
	if err := v.checkTime(&c); err != nil {
		return nil, err
	}

	payloadHash, err := v.payloadHash(r, body, &st.payload)
	if err != nil {
		return nil, err
	}

	secret, lerr := v.creds.SecretKey(ctx, c.accessKeyID)
	if lerr != nil {
		if errors.Is(lerr, ErrUnknownAccessKey) {
			return nil, newError(ErrUnknownAccessKey, msgUnknownKey, "access key "+quoteClient(c.accessKeyID)+" is unknown")
		}
		return nil, fmt.Errorf("sigv4: looking up access key %s: %w", quoteClient(c.accessKeyID), lerr)
	}
	key := v.cache.get(c.accessKeyID, secret, c.date, c.region, c.service)

	in := canonicalInput{
		signedHeaders: c.signedHeaders,
		payloadHash:   payloadHash,
		presigned:     c.presigned,
	}
	st.norm = appendNormalizedURI(st.norm[:0], path)
	in.uri = st.norm
	if missing := st.buildCanonical(r, &in); missing != "" {
		return nil, newError(ErrSignatureMismatch, msgMismatch, "signed header "+quoteClient(missing)+" is absent from the request")
	}
	if v.check(st, key, &c) {
		return c.result(), nil
	}
	// aws-sdk-go-v2 signs the path as sent, without normalising it; try
	// that form too when it differs.
	st.literal = appendLiteralURI(st.literal[:0], path)
	if !bytesEqual(st.literal, st.norm) {
		in.uri = st.literal
		st.buildCanonical(r, &in)
		if v.check(st, key, &c) {
			return c.result(), nil
		}
	}
	return nil, newError(ErrSignatureMismatch, msgMismatch, v.mismatchDebug(st, r, &in, &c))
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

func (c *claim) result() *Result {
	return &Result{
		AccessKeyID:  c.accessKeyID,
		SessionToken: c.token,
		Region:       c.region,
		Service:      c.service,
		SignedAt:     c.signedAt,
		Presigned:    c.presigned,
	}
}

// check builds the string to sign from st.canon and compares its signature
// with the claimed one in constant time.
func (v *Verifier) check(st *state, key *signingKey, c *claim) bool {
	sum := sha256.Sum256(st.canon)
	b := st.sts[:0]
	b = append(b, make([]byte, sha256.BlockSize)...)
	b = appendStringToSign(b, c.amzDate, c.scope, &sum)
	st.sts = b
	mac := key.sign(b)
	return hmac.Equal(mac[:], c.signature[:])
}

func appendStringToSign(b []byte, amzDate, scope string, canonSum *[sha256.Size]byte) []byte {
	b = append(b, Algorithm+"\n"...)
	b = append(b, amzDate...)
	b = append(b, '\n')
	b = append(b, scope...)
	b = append(b, '\n')
	return hex.AppendEncode(b, canonSum[:])
}

// mismatchDebug describes a signature mismatch for the server log: for each
// path form tried, the string to sign and the canonical request, with the
// security token redacted. Nothing in it is secret.
func (v *Verifier) mismatchDebug(st *state, r *http.Request, in *canonicalInput, c *claim) string {
	out := "signature mismatch for access key " + quoteClient(c.accessKeyID)
	type form struct {
		label string
		uri   []byte
	}
	forms := []form{{"normalised path", st.norm}}
	if !bytesEqual(st.literal, st.norm) {
		forms = append(forms, form{"path as sent", st.literal})
	}
	for _, f := range forms {
		in.uri, in.redact = f.uri, false
		st.buildCanonical(r, in)
		sum := sha256.Sum256(st.canon)
		sts := appendStringToSign(nil, c.amzDate, c.scope, &sum)
		in.redact = true
		st.buildCanonical(r, in)
		out += "\n--- string to sign (" + f.label + ") ---\n" + string(sts) +
			"\n--- canonical request (" + f.label + ", security token redacted) ---\n" + string(st.canon)
	}
	return out
}

// headerClaim parses the Authorization header form.
func (v *Verifier) headerClaim(r *http.Request, h string, c *claim) *Error {
	a, err := parseAuthorization(h)
	if err != nil {
		return err
	}
	c.authorization = a
	if d := r.Header["X-Amz-Date"]; len(d) > 0 {
		if len(d) > 1 {
			return incomplete("Only one X-Amz-Date header is allowed.", "more than one X-Amz-Date header")
		}
		t, ok := parseAmzDate(d[0])
		if !ok {
			return badDate(d[0])
		}
		c.amzDate, c.signedAt = d[0], t
		if !hasSignedHeader(a.signedHeaders, "x-amz-date") {
			return newError(ErrSignatureMismatch, "The X-Amz-Date header must be signed.", "x-amz-date is not among the signed headers")
		}
	} else if d := r.Header["Date"]; len(d) == 1 {
		t, perr := http.ParseTime(d[0])
		if perr != nil {
			return badDate(d[0])
		}
		c.signedAt = t.UTC()
		c.amzDate = c.signedAt.Format(amzDateLayout)
		if !hasSignedHeader(a.signedHeaders, "date") {
			return newError(ErrSignatureMismatch, "The Date header must be signed.", "date is not among the signed headers")
		}
	} else {
		return incomplete(msgNoDate, "no X-Amz-Date or single Date header")
	}
	if !hasSignedHeader(a.signedHeaders, "host") {
		return newError(ErrSignatureMismatch, "The Host header must be signed.", "host is not among the signed headers")
	}
	tok := r.Header["X-Amz-Security-Token"]
	switch {
	case len(tok) > 1:
		return incomplete("Only one X-Amz-Security-Token header is allowed.", "more than one X-Amz-Security-Token header")
	case len(tok) == 1:
		if !hasSignedHeader(a.signedHeaders, "x-amz-security-token") {
			return newError(ErrSignatureMismatch, "The X-Amz-Security-Token header must be signed.", "x-amz-security-token is present but not signed")
		}
		c.token = tok[0]
	}
	return nil
}

// presignedClaim parses query-string authentication.
func (v *Verifier) presignedClaim(st *state, r *http.Request, c *claim) *Error {
	c.presigned = true
	get := func(name string) (string, *Error) {
		val, n := st.param(name)
		switch {
		case n == 0:
			return "", incomplete("Query-string authentication requires the "+name+" parameter.", "presigned request lacks "+name)
		case n > 1:
			return "", incomplete("Only one "+name+" parameter is allowed.", "presigned request repeats "+name)
		}
		return decodeCanonical(val), nil
	}
	alg, err := get("X-Amz-Algorithm")
	if err != nil {
		return err
	}
	if alg != Algorithm {
		return incomplete("X-Amz-Algorithm only supports \""+Algorithm+"\".", "unsupported presign algorithm")
	}
	var cred, signed, sig, date, expires string
	for _, p := range []struct {
		name string
		dst  *string
	}{
		{"X-Amz-Credential", &cred}, {"X-Amz-SignedHeaders", &signed}, {"X-Amz-Signature", &sig},
		{"X-Amz-Date", &date}, {"X-Amz-Expires", &expires},
	} {
		if *p.dst, err = get(p.name); err != nil {
			return err
		}
	}
	if err := c.setCredential(cred); err != nil {
		return err
	}
	if err := checkSignedHeaders(signed); err != nil {
		return err
	}
	c.signedHeaders = signed
	if err := c.setSignature(sig); err != nil {
		return err
	}
	t, ok := parseAmzDate(date)
	if !ok {
		return badDate(date)
	}
	c.amzDate, c.signedAt = date, t
	secs, perr := strconv.ParseUint(expires, 10, 32)
	if perr != nil || secs == 0 {
		return incomplete("X-Amz-Expires should be a positive number of seconds.", "malformed X-Amz-Expires")
	}
	if time.Duration(secs)*time.Second > MaxPresignExpires {
		return incomplete("X-Amz-Expires must be less than a week (in seconds) that is 604800.", "X-Amz-Expires over a week")
	}
	c.expires = time.Duration(secs) * time.Second
	if !hasSignedHeader(signed, "host") {
		return newError(ErrSignatureMismatch, "The Host header must be signed.", "host is not among the signed headers")
	}
	qtok, n := st.param("X-Amz-Security-Token")
	htok := r.Header["X-Amz-Security-Token"]
	switch {
	case n > 1 || len(htok) > 1 || (n == 1 && len(htok) > 0):
		return incomplete("Only one X-Amz-Security-Token is allowed.", "security token given more than once")
	case n == 1:
		c.token = decodeCanonical(qtok)
	case len(htok) == 1:
		if !hasSignedHeader(signed, "x-amz-security-token") {
			return newError(ErrSignatureMismatch, "The X-Amz-Security-Token header must be signed.", "x-amz-security-token is present but not signed")
		}
		c.token = htok[0]
	}
	return nil
}

// checkScope compares the credential scope with the request and the server.
func (v *Verifier) checkScope(c *claim) *Error {
	switch {
	case c.terminator != scopeTerminator:
		return newError(ErrScope, "Credential should be scoped with a valid terminator: 'aws4_request', not "+quoteClient(c.terminator)+".", "wrong scope terminator")
	case c.date != c.amzDate[:8]:
		return newError(ErrScope, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "+
			quoteClient(c.date)+" != '"+c.amzDate[:8]+"', from '"+c.amzDate+"'.", "scope date differs from request date")
	case c.region != v.region:
		return newError(ErrScope, "Credential should be scoped to a valid region, not "+quoteClient(c.region)+"; this endpoint serves '"+v.region+"'.", "wrong scope region")
	case !slices.Contains(v.services, c.service):
		return newError(ErrScope, "Credential should be scoped to correct service: "+v.serviceList()+", not "+quoteClient(c.service)+".", "wrong scope service")
	}
	return nil
}

func (v *Verifier) serviceList() string {
	s := ""
	for i, name := range v.services {
		if i > 0 {
			s += " or "
		}
		s += "'" + name + "'"
	}
	return s
}

// checkTime applies the skew window (header form) or the validity period
// (presigned form).
func (v *Verifier) checkTime(c *claim) *Error {
	now := v.now().UTC()
	if c.signedAt.After(now.Add(v.maxSkew)) {
		return newError(ErrSkewed, "Signature not yet current: "+c.amzDate+" is still later than "+
			now.Add(v.maxSkew).Format(amzDateLayout)+" ("+now.Format(amzDateLayout)+" + "+skewText(v.maxSkew)+").", "request date in the future")
	}
	if c.presigned {
		if now.After(c.signedAt.Add(c.expires)) {
			return newError(ErrExpired, msgExpired, "presigned request expired at "+c.signedAt.Add(c.expires).Format(amzDateLayout))
		}
		return nil
	}
	if c.signedAt.Before(now.Add(-v.maxSkew)) {
		return newError(ErrSkewed, "Signature expired: "+c.amzDate+" is now earlier than "+
			now.Add(-v.maxSkew).Format(amzDateLayout)+" ("+now.Format(amzDateLayout)+" - "+skewText(v.maxSkew)+").", "request date in the past")
	}
	return nil
}

func skewText(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min."
	}
	return d.String()
}

// payloadHash returns the payload hash for the canonical request: the body's
// SHA-256, which X-Amz-Content-Sha256 must equal when present, or
// UNSIGNED-PAYLOAD where allowed.
func (v *Verifier) payloadHash(r *http.Request, body []byte, buf *[2 * sha256.Size]byte) ([]byte, *Error) {
	sum := sha256.Sum256(body)
	hex.Encode(buf[:], sum[:])
	computed := buf[:]
	claimed := r.Header["X-Amz-Content-Sha256"]
	switch {
	case len(claimed) == 0:
		return computed, nil
	case len(claimed) > 1:
		return nil, newError(ErrSignatureMismatch, "Only one X-Amz-Content-Sha256 header is allowed.", "more than one x-amz-content-sha256 header")
	case claimed[0] == UnsignedPayload:
		if !v.allowUnsigned {
			return nil, newError(ErrSignatureMismatch, "UNSIGNED-PAYLOAD is not accepted by this service; sign the payload.", "unsigned payload refused")
		}
		return buf[:copy(buf[:], UnsignedPayload)], nil
	case claimed[0] != string(computed):
		return nil, newError(ErrSignatureMismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.", "x-amz-content-sha256 does not match the body")
	}
	return computed, nil
}

const amzDateLayout = "20060102T150405Z"

func badDate(s string) *Error {
	return incomplete("Date must be in ISO-8601 'basic format'. Got "+quoteClient(s)+". See http://en.wikipedia.org/wiki/ISO_8601", "unparseable request date")
}

// parseAmzDate parses the ISO 8601 basic format, YYYYMMDDTHHMMSSZ, strictly.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != len(amzDateLayout) || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(4, 2)
	d, ok3 := num(6, 2)
	h, ok4 := num(9, 2)
	mi, ok5 := num(11, 2)
	se, ok6 := num(13, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC)
	if t.Day() != d {
		// Day past the end of the month; time.Date normalised it.
		return time.Time{}, false
	}
	return t, true
}
