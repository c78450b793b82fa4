package sigv4

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The oracle tests sign random requests with aws-sdk-go-v2's signer, send
// them through net/http's wire format, and require Verify to accept them,
// and to reject each of a set of one-thing mutations.

var (
	oracleNow      = time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	oracleServices = []string{"secretsmanager", "sts", "iam", "sigil"}
	pathSegments   = []string{"a", "secret", "", ".", "..", "with space", "ü", "%2F", "%41", "%e2%82%ac", "~tilde",
		"a+b", "semi;colon", "!$&'()*,=:@", "ሴ", "v1", "x.y", "..a", "%2E%2E", "UPPER"}
	queryKeys   = []string{"a", "A", "b", "Action", "ü", "ሴ", "k k", "x/y", "e", "", "a-b", "a.b", "~", "X-Amz-Meta", "+"}
	queryValues = []string{"", "1", "v v", "ü", "x/y", "+", "&=", "2010-05-08", "~*'", "%"}
	headerVals  = []string{"plain", "  lead", "trail  ", "in   ner", "tab\tin", "ü", "a,b", "", "x  y  z", "\"q  q\""}
)

type oracleCase struct {
	req     *http.Request // client request, signed
	body    []byte
	service string
	token   string
	signed  time.Time
}

func randomPath(rng *rand.Rand) string {
	var b strings.Builder
	for n := rng.IntN(5); n >= 0; n-- {
		b.WriteByte('/')
		b.WriteString(pathSegments[rng.IntN(len(pathSegments))])
	}
	if rng.IntN(4) == 0 {
		b.WriteByte('/')
	}
	return b.String()
}

func randomQuery(rng *rand.Rand) string {
	var parts []string
	for n := rng.IntN(5); n > 0; n-- {
		k := url.QueryEscape(queryKeys[rng.IntN(len(queryKeys))])
		v := url.QueryEscape(queryValues[rng.IntN(len(queryValues))])
		if rng.IntN(3) == 0 {
			v = strings.ReplaceAll(v, "+", "%20")
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, "&")
}

// newOracleCase builds and signs one random request. It returns nil when
// net/url refuses the random URL.
func newOracleCase(t *testing.T, rng *rand.Rand, i int) *oracleCase {
	t.Helper()
	hosts := []string{"sigil.example", "127.0.0.1:8200", "localhost:443"}
	raw := "https://" + hosts[rng.IntN(len(hosts))] + randomPath(rng)
	if q := randomQuery(rng); q != "" {
		raw += "?" + q
	}
	var body []byte
	switch r := rng.IntN(100); {
	case r == 0 && i < 2000:
		body = make([]byte, 1<<20)
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
	case r < 50:
		body = make([]byte, rng.IntN(300))
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
	}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	var rd *bytes.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequest(methods[rng.IntN(len(methods))], raw, rd)
	} else {
		req, err = http.NewRequest(methods[rng.IntN(len(methods))], raw, nil)
	}
	if err != nil {
		return nil
	}
	for n := rng.IntN(5); n > 0; n-- {
		name := "X-Test-" + strconv.Itoa(rng.IntN(4))
		req.Header.Add(name, headerVals[rng.IntN(len(headerVals))])
	}
	if rng.IntN(2) == 0 {
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	}
	c := &oracleCase{req: req, body: body, service: oracleServices[rng.IntN(len(oracleServices))]}
	payload := hashHex(body)
	if rng.IntN(10) == 0 {
		req.Header.Set("X-Amz-Content-Sha256", payload)
	}
	creds := aws.Credentials{AccessKeyID: exampleKeyID, SecretAccessKey: exampleSecret}
	if rng.IntN(4) == 0 {
		c.token = "IQoJb3JpZ2luX2VjEXAMPLE/" + strconv.Itoa(i) + "+=="
		creds.SessionToken = c.token
	}
	c.signed = oracleNow.Add(time.Duration(rng.IntN(480)-240) * time.Second)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payload, c.service, "us-east-1", c.signed); err != nil {
		t.Fatalf("SignHTTP: %v", err)
	}
	return c
}

// setTarget replaces a server request's path and query as if sent so.
func setTarget(r *http.Request, path, query string) {
	r.RequestURI = path
	if query != "" {
		r.RequestURI += "?" + query
	}
	r.URL.RawQuery = query
}

// mutations each change one thing a signature covers. They report false
// when they do not apply to the request.
var mutations = []struct {
	name  string
	apply func(r *http.Request, body *[]byte) bool
}{
	{"header value", func(r *http.Request, _ *[]byte) bool {
		for _, h := range []string{"X-Test-0", "X-Test-1", "X-Test-2", "X-Test-3", "Content-Type"} {
			if v, ok := r.Header[h]; ok {
				v[0] += "x"
				return true
			}
		}
		return false
	}},
	{"extra header value", func(r *http.Request, _ *[]byte) bool {
		for _, h := range []string{"X-Test-0", "X-Test-1", "Content-Type"} {
			if _, ok := r.Header[h]; ok {
				r.Header.Add(h, "again")
				return true
			}
		}
		return false
	}},
	{"query value", func(r *http.Request, _ *[]byte) bool {
		p, q := requestTarget(r)
		if q == "" {
			q = "zz=1"
		} else {
			q += "&zz=1"
		}
		setTarget(r, p, q)
		return true
	}},
	{"body", func(_ *http.Request, body *[]byte) bool {
		if len(*body) == 0 {
			*body = []byte("x")
		} else {
			b := bytes.Clone(*body)
			b[len(b)/2] ^= 1
			*body = b
		}
		return true
	}},
	{"path", func(r *http.Request, _ *[]byte) bool {
		p, q := requestTarget(r)
		setTarget(r, p+"x", q)
		return true
	}},
	{"date", func(r *http.Request, _ *[]byte) bool {
		tm, _ := parseAmzDate(r.Header.Get("X-Amz-Date"))
		r.Header.Set("X-Amz-Date", tm.Add(time.Second).Format(amzDateLayout))
		return true
	}},
	{"region", func(r *http.Request, _ *[]byte) bool {
		r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/us-east-1/", "/eu-west-1/", 1))
		return true
	}},
	{"service", func(r *http.Request, _ *[]byte) bool {
		a := r.Header.Get("Authorization")
		for _, s := range oracleServices {
			if strings.Contains(a, "/"+s+"/") {
				other := oracleServices[(indexOf(oracleServices, s)+1)%len(oracleServices)]
				r.Header.Set("Authorization", strings.Replace(a, "/"+s+"/", "/"+other+"/", 1))
				return true
			}
		}
		return false
	}},
	{"method", func(r *http.Request, _ *[]byte) bool {
		if r.Method == "GET" {
			r.Method = "HEAD"
		} else {
			r.Method = "GET"
		}
		return true
	}},
	{"security token", func(r *http.Request, _ *[]byte) bool {
		if v, ok := r.Header["X-Amz-Security-Token"]; ok {
			v[0] += "x"
		} else {
			r.Header.Set("X-Amz-Security-Token", "unsigned")
		}
		return true
	}},
	{"signature", func(r *http.Request, _ *[]byte) bool {
		a := r.Header.Get("Authorization")
		last := a[len(a)-1]
		if last == '0' {
			last = '1'
		} else {
			last = '0'
		}
		r.Header.Set("Authorization", a[:len(a)-1]+string(last))
		return true
	}},
	{"host", func(r *http.Request, _ *[]byte) bool {
		r.Host = "evil.example"
		return true
	}},
	{"signed headers list", func(r *http.Request, _ *[]byte) bool {
		a := r.Header.Get("Authorization")
		for _, h := range []string{"content-type;", "x-test-0;", "x-test-1;", "content-length;"} {
			if strings.Contains(a, h) {
				r.Header.Set("Authorization", strings.Replace(a, h, "", 1))
				return true
			}
		}
		return false
	}},
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func mustFail(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: mutated request verified", what)
	}
	if !errors.Is(err, ErrSignatureMismatch) && !errors.Is(err, ErrScope) {
		t.Fatalf("%s: error %v, want a signature or scope mismatch", what, err)
	}
}

func TestOracleSDK(t *testing.T) {
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: oracleServices, Now: fixedClock(oracleNow)})
	rng := rand.New(rand.NewPCG(20261204, 1))
	const n = 2000
	ctx := context.Background()
	checked := make([]int, len(mutations))
	for i := 0; i < n; {
		c := newOracleCase(t, rng, i)
		if c == nil {
			continue
		}
		i++
		var wire bytes.Buffer
		if err := c.req.Write(&wire); err != nil {
			t.Fatal(err)
		}
		r, body := readServer(t, wire.Bytes())
		res, err := v.Verify(ctx, r, body)
		if err != nil {
			var e *Error
			errors.As(err, &e)
			t.Fatalf("case %d: Verify: %v\nrequest:\n%s\n%s", i, err, wire.Bytes()[:min(wire.Len(), 2000)], e.Debug)
		}
		if res.Service != c.service || res.SessionToken != c.token || !res.SignedAt.Equal(c.signed) || res.AccessKeyID != exampleKeyID {
			t.Fatalf("case %d: result %+v", i, res)
		}
		for m, mu := range mutations {
			r, body := readServer(t, wire.Bytes())
			if !mu.apply(r, &body) {
				continue
			}
			checked[m]++
			_, err := v.Verify(ctx, r, body)
			mustFail(t, "case "+strconv.Itoa(i)+" "+mu.name, err)
		}
	}
	t.Logf("mutations applied: %v", checked)
	for m, n := range checked {
		if n < 100 {
			t.Errorf("mutation %q applied to only %d requests", mutations[m].name, n)
		}
	}
}

// botocorePath normalises a wire path as botocore's remove_dot_segments
// does: an independent reference for the normalised form.
func botocorePath(p string) string {
	var out []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	s := "/" + strings.Join(out, "/")
	if strings.HasSuffix(p, "/") && len(out) > 0 {
		s += "/"
	}
	return s
}

// TestOracleNormalizedPath signs the normalised path, as botocore and the
// JavaScript SDK do, and sends the path un-normalised: Verify must accept
// it, in origin form and in absolute form.
func TestOracleNormalizedPath(t *testing.T) {
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: oracleServices, Now: fixedClock(oracleNow)})
	rng := rand.New(rand.NewPCG(7, 7))
	tested := 0
	for i := 0; i < 400; i++ {
		raw := "https://sigil.example" + randomPath(rng)
		req, err := http.NewRequest("GET", raw, nil)
		if err != nil {
			continue
		}
		sent := req.URL.EscapedPath()
		norm := botocorePath(sent)
		if norm == sent {
			continue
		}
		tested++
		req.URL.Opaque = "//sigil.example" + norm
		creds := aws.Credentials{AccessKeyID: exampleKeyID, SecretAccessKey: exampleSecret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hashHex(nil), "sts", "us-east-1", oracleNow); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			req.URL.Opaque = "" // origin form: GET /a/../b HTTP/1.1
		} else {
			req.URL.Opaque = "//sigil.example" + sent // absolute form: GET https://sigil.example/a/../b
		}
		r, body := toServer(t, req)
		if _, err := v.Verify(context.Background(), r, body); err != nil {
			t.Fatalf("path %q signed as %q: %v (request target %q)", sent, norm, err, r.RequestURI)
		}
		r.RequestURI = strings.Replace(r.RequestURI, sent, sent+"x", 1)
		if _, err := v.Verify(context.Background(), r, body); !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("path %q changed: %v", sent, err)
		}
	}
	t.Logf("%d normalised paths", tested)
	if tested < 100 {
		t.Fatalf("only %d paths needed normalising", tested)
	}
}

// TestOraclePresigned presigns random requests with the SDK and verifies
// them, then checks that a changed query, a changed signature and the clock
// past X-Amz-Expires all fail.
func TestOraclePresigned(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ctx := context.Background()
	for i := 0; i < 300; i++ {
		raw := "https://sigil.example" + randomPath(rng)
		q := randomQuery(rng)
		expires := 1 + rng.IntN(604800)
		if q != "" {
			q += "&"
		}
		raw += "?" + q + "X-Amz-Expires=" + strconv.Itoa(expires)
		req, err := http.NewRequest("GET", raw, nil)
		if err != nil {
			continue
		}
		if rng.IntN(2) == 0 {
			req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue") // hoisted into the query
		}
		if rng.IntN(2) == 0 {
			req.Header.Set("Content-Type", "text/plain") // stays a signed header
		}
		creds := aws.Credentials{AccessKeyID: exampleKeyID, SecretAccessKey: exampleSecret}
		token := ""
		if rng.IntN(3) == 0 {
			token = "presign+token/" + strconv.Itoa(i)
			creds.SessionToken = token
		}
		signed := oracleNow.Add(-time.Duration(rng.IntN(expires)) * time.Second)
		uri, hdr, err := v4.NewSigner().PresignHTTP(ctx, creds, req, hashHex(nil), "sts", "us-east-1", signed)
		if err != nil {
			t.Fatal(err)
		}
		out, err := http.NewRequest("GET", uri, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range hdr {
			if !strings.EqualFold(k, "host") {
				out.Header[k] = vs
			}
		}
		var wire bytes.Buffer
		if err := out.Write(&wire); err != nil {
			t.Fatal(err)
		}
		v := newTestVerifier(t, Options{Region: "us-east-1", Services: oracleServices, Now: fixedClock(oracleNow)})
		r, body := readServer(t, wire.Bytes())
		res, err := v.Verify(ctx, r, body)
		if err != nil {
			var e *Error
			errors.As(err, &e)
			t.Fatalf("case %d: %v\n%s\n%s", i, err, wire.Bytes(), e.Debug)
		}
		if !res.Presigned || res.SessionToken != token || !res.SignedAt.Equal(signed) {
			t.Fatalf("case %d: result %+v", i, res)
		}

		r, body = readServer(t, wire.Bytes())
		p, query := requestTarget(r)
		setTarget(r, p, query+"&zz=1")
		mustFail(t, "presigned query", func() error { _, err := v.Verify(ctx, r, body); return err }())

		r, body = readServer(t, wire.Bytes())
		p, query = requestTarget(r)
		j := strings.Index(query, "X-Amz-Signature=") + len("X-Amz-Signature=")
		flipped := byte('0')
		if query[j] == '0' {
			flipped = '1'
		}
		setTarget(r, p, query[:j]+string(flipped)+query[j+1:])
		mustFail(t, "presigned signature", func() error { _, err := v.Verify(ctx, r, body); return err }())

		late := newTestVerifier(t, Options{Region: "us-east-1", Services: oracleServices,
			Now: fixedClock(signed.Add(time.Duration(expires)*time.Second + time.Second))})
		r, body = readServer(t, wire.Bytes())
		if _, err := late.Verify(ctx, r, body); !errors.Is(err, ErrExpired) {
			t.Fatalf("case %d: after expiry: %v, want ErrExpired", i, err)
		}
	}
}
