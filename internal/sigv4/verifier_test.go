package sigv4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const getSecretBody = `{"SecretId":"arn:aws:secretsmanager:us-east-1:123456789012:secret:db"}`

// signedGetSecret returns a GetSecretValue request as a server receives it,
// signed by the SDK at signedAt with creds.
func signedGetSecret(t testing.TB, creds aws.Credentials, signedAt time.Time, region string) (*http.Request, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://127.0.0.1:8200/", strings.NewReader(getSecretBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hashHex([]byte(getSecretBody)),
		"secretsmanager", region, signedAt); err != nil {
		t.Fatal(err)
	}
	return toServer(t, req)
}

var exampleAWSCreds = aws.Credentials{AccessKeyID: exampleKeyID, SecretAccessKey: exampleSecret}

func TestSkew(t *testing.T) {
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	tests := []struct {
		name   string
		offset time.Duration // clock minus signing time
		skew   time.Duration
		want   error
	}{
		{"same time", 0, 0, nil},
		{"clock 4m59s ahead", 4*time.Minute + 59*time.Second, 0, nil},
		{"clock exactly 5m ahead", 5 * time.Minute, 0, nil},
		{"clock 5m01s ahead", 5*time.Minute + time.Second, 0, ErrSkewed},
		{"clock 4m59s behind", -(4*time.Minute + 59*time.Second), 0, nil},
		{"clock 5m01s behind", -(5*time.Minute + time.Second), 0, ErrSkewed},
		{"custom skew 1m, 61s ahead", 61 * time.Second, time.Minute, ErrSkewed},
		{"custom skew 1m, 59s behind", -59 * time.Second, time.Minute, nil},
		{"a day late", 24 * time.Hour, 0, ErrSkewed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, body := signedGetSecret(t, exampleAWSCreds, signedAt, "us-east-1")
			v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"secretsmanager"},
				Now: fixedClock(signedAt.Add(tt.offset)), MaxSkew: tt.skew})
			_, err := v.Verify(context.Background(), r, body)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if tt.want != nil && !strings.Contains(err.Error(), "20261204T101500Z") {
				t.Errorf("skew message %q does not name the request time", err)
			}
		})
	}
}

// TestReplayWithinWindow documents SigV4's replay property: the same request
// verifies again while its date is inside the window, and not after.
func TestReplayWithinWindow(t *testing.T) {
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	now := signedAt
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"secretsmanager"},
		Now: func() time.Time { return now }})
	r, body := signedGetSecret(t, exampleAWSCreds, signedAt, "us-east-1")
	for _, step := range []time.Duration{0, time.Minute, 4 * time.Minute} {
		now = signedAt.Add(step)
		if _, err := v.Verify(context.Background(), r, body); err != nil {
			t.Fatalf("replay at +%v: %v", step, err)
		}
	}
	now = signedAt.Add(6 * time.Minute)
	if _, err := v.Verify(context.Background(), r, body); !errors.Is(err, ErrSkewed) {
		t.Fatalf("replay at +6m: %v, want ErrSkewed", err)
	}
}

func TestSessionToken(t *testing.T) {
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	creds := exampleAWSCreds
	creds.SessionToken = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN"
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"secretsmanager"}, Now: fixedClock(signedAt)})

	t.Run("signed token is returned", func(t *testing.T) {
		r, body := signedGetSecret(t, creds, signedAt, "us-east-1")
		res, err := v.Verify(context.Background(), r, body)
		if err != nil {
			t.Fatal(err)
		}
		if res.SessionToken != creds.SessionToken {
			t.Fatalf("token %q", res.SessionToken)
		}
		if s := res.String(); strings.Contains(s, creds.SessionToken) || !strings.Contains(s, "REDACTED") {
			t.Errorf("String() = %q", s)
		}
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("verified", "result", res)
		if strings.Contains(buf.String(), creds.SessionToken) || !strings.Contains(buf.String(), exampleKeyID) {
			t.Errorf("log line %q", buf.String())
		}
	})
	t.Run("token added after signing", func(t *testing.T) {
		r, body := signedGetSecret(t, exampleAWSCreds, signedAt, "us-east-1")
		r.Header.Set("X-Amz-Security-Token", creds.SessionToken)
		_, err := v.Verify(context.Background(), r, body)
		if !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("Verify = %v, want ErrSignatureMismatch", err)
		}
	})
	t.Run("token changed", func(t *testing.T) {
		r, body := signedGetSecret(t, creds, signedAt, "us-east-1")
		r.Header.Set("X-Amz-Security-Token", creds.SessionToken+"x")
		_, err := v.Verify(context.Background(), r, body)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("Verify = %v, want ErrSignatureMismatch", err)
		}
		if strings.Contains(e.Debug, creds.SessionToken) || !strings.Contains(e.Debug, "x-amz-security-token:REDACTED") {
			t.Errorf("debug text does not redact the token:\n%s", e.Debug)
		}
	})
}

func TestUnknownAccessKey(t *testing.T) {
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"secretsmanager"}, Now: fixedClock(signedAt)})
	r, body := signedGetSecret(t, aws.Credentials{AccessKeyID: "AKIDNOBODY", SecretAccessKey: "s"}, signedAt, "us-east-1")
	_, err := v.Verify(context.Background(), r, body)
	if !errors.Is(err, ErrUnknownAccessKey) {
		t.Fatalf("Verify = %v, want ErrUnknownAccessKey", err)
	}
}

type failingCreds struct{ err error }

func (f failingCreds) SecretKey(context.Context, string) (string, error) { return "", f.err }

func TestCredentialsFailureIsNotAnAuthFailure(t *testing.T) {
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	storeDown := errors.New("store: unavailable")
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"secretsmanager"}, Now: fixedClock(signedAt),
		Credentials: failingCreds{storeDown}})
	r, body := signedGetSecret(t, exampleAWSCreds, signedAt, "us-east-1")
	_, err := v.Verify(context.Background(), r, body)
	var e *Error
	if !errors.Is(err, storeDown) || errors.As(err, &e) {
		t.Fatalf("Verify = %v, want the wrapped store error and no *Error", err)
	}
}

func TestScope(t *testing.T) {
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"secretsmanager"}, Now: fixedClock(signedAt)})
	r, body := signedGetSecret(t, exampleAWSCreds, signedAt, "eu-west-1")
	_, err := v.Verify(context.Background(), r, body)
	if !errors.Is(err, ErrScope) {
		t.Fatalf("Verify = %v, want ErrScope", err)
	}
	if msg := err.(*Error).Message; !strings.Contains(msg, "'eu-west-1'") || !strings.Contains(msg, "'us-east-1'") {
		t.Errorf("scope message %q names neither the given nor the expected region", msg)
	}
}

func TestDateHeader(t *testing.T) {
	// The request carries Date, not X-Amz-Date; the string to sign uses
	// its ISO 8601 basic form. The signature is computed here the long way
	// (hmac.New) as an independent reference.
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	canon := "GET\n/\n\ndate:" + signedAt.Format(http.TimeFormat) + "\nhost:sigil.example\n\ndate;host\n" + hashHex(nil)
	sig := referenceSignature(exampleSecret, "20261204", "us-east-1", "sts",
		"AWS4-HMAC-SHA256\n20261204T101500Z\n20261204/us-east-1/sts/aws4_request\n"+hashHex([]byte(canon)))
	wire := "GET / HTTP/1.1\r\nHost: sigil.example\r\nDate: " + signedAt.Format(http.TimeFormat) + "\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/us-east-1/sts/aws4_request, SignedHeaders=date;host, Signature=" + sig + "\r\n\r\n"
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"sts"}, Now: fixedClock(signedAt)})
	r, body := readServer(t, []byte(wire))
	if _, err := v.Verify(context.Background(), r, body); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	r.Header.Set("Date", signedAt.Add(time.Second).Format(http.TimeFormat))
	if _, err := v.Verify(context.Background(), r, body); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("changed Date: %v", err)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	good := Options{Region: "us-east-1", Services: []string{"sts"}, Credentials: exampleCreds()}
	tests := []struct {
		name   string
		change func(*Options)
	}{
		{"no region", func(o *Options) { o.Region = "" }},
		{"no services", func(o *Options) { o.Services = nil }},
		{"empty service", func(o *Options) { o.Services = []string{"sts", ""} }},
		{"no credentials", func(o *Options) { o.Credentials = nil }},
		{"negative skew", func(o *Options) { o.MaxSkew = -time.Second }},
		{"negative cache", func(o *Options) { o.CacheSize = -1 }},
	}
	if _, err := New(good); err != nil {
		t.Fatalf("New(good) = %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.change(&o)
			if v, err := New(o); err == nil || v != nil {
				t.Fatalf("New = %v, %v; want an error", v, err)
			}
		})
	}
}

// rotatingCreds serves one key whose secret the test can change.
type rotatingCreds struct {
	mu     sync.Mutex
	secret string
	calls  int
}

func (c *rotatingCreds) SecretKey(_ context.Context, id string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if id != exampleKeyID {
		return "", ErrUnknownAccessKey
	}
	return c.secret, nil
}

func TestKeyCacheRotation(t *testing.T) {
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	creds := &rotatingCreds{secret: exampleSecret}
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"secretsmanager"}, Now: fixedClock(signedAt), Credentials: creds})
	r, body := signedGetSecret(t, exampleAWSCreds, signedAt, "us-east-1")
	if _, err := v.Verify(context.Background(), r, body); err != nil {
		t.Fatal(err)
	}
	if v.cache.len() != 1 {
		t.Fatalf("cache holds %d keys, want 1", v.cache.len())
	}
	// After rotation the old signature must fail even though a key for the
	// same scope is cached, and a request signed with the new secret passes.
	creds.mu.Lock()
	creds.secret = "newSecretAfterRotationEXAMPLEKEY"
	creds.mu.Unlock()
	if _, err := v.Verify(context.Background(), r, body); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("old secret after rotation: %v", err)
	}
	r2, body2 := signedGetSecret(t, aws.Credentials{AccessKeyID: exampleKeyID, SecretAccessKey: "newSecretAfterRotationEXAMPLEKEY"}, signedAt, "us-east-1")
	if _, err := v.Verify(context.Background(), r2, body2); err != nil {
		t.Fatalf("new secret: %v", err)
	}
}

func TestKeyCacheBounded(t *testing.T) {
	c := newKeyCache(8)
	for i := 0; i < 100; i++ {
		c.get(fmt.Sprintf("AKID%d", i), "secret", "20261204", "us-east-1", "sts")
		if n := c.len(); n > 8 {
			t.Fatalf("cache holds %d keys after %d inserts, cap 8", n, i+1)
		}
	}
	// A key in steady use survives churn.
	hot := c.get("HOT", "secret", "20261204", "us-east-1", "sts")
	for i := 0; i < 100; i++ {
		c.get(fmt.Sprintf("COLD%d", i), "secret", "20261204", "us-east-1", "sts")
		if got := c.get("HOT", "secret", "20261204", "us-east-1", "sts"); got != hot {
			t.Fatalf("hot key was evicted after %d cold inserts", i+1)
		}
	}
	if s := fmt.Sprintf("%v|%#v", hot, hot); strings.Count(s, "REDACTED") != 2 {
		t.Errorf("signing key formats as %q", s)
	}
}

func TestKeyCacheMatchesReference(t *testing.T) {
	// The AWS documentation's derived key for the IAM example.
	k := deriveSigningKey(exampleSecret, "20150830", "us-east-1", "iam")
	var key [32]byte
	for i := range key {
		key[i] = k.ipad[i] ^ 0x36
	}
	const want = "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
	if got := fmt.Sprintf("%x", key); got != want {
		t.Fatalf("derived key %s, want %s", got, want)
	}
}

func TestConcurrentVerify(t *testing.T) {
	// Eight keys through a cache of four, from eight goroutines: run with
	// -race; every request must verify throughout the churn.
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	creds := staticCreds{}
	type req struct {
		r    *http.Request
		body []byte
	}
	var reqs []req
	for i := 0; i < 8; i++ {
		id := fmt.Sprintf("AKIDCONCURRENT%d", i)
		creds[id] = fmt.Sprintf("secret-%d-EXAMPLEKEY", i)
		r, body := signedGetSecret(t, aws.Credentials{AccessKeyID: id, SecretAccessKey: creds[id]}, signedAt, "us-east-1")
		reqs = append(reqs, req{r, body})
	}
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"secretsmanager"}, Now: fixedClock(signedAt),
		CacheSize: 4, Credentials: creds})
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				q := reqs[(g+i)%len(reqs)]
				if _, err := v.Verify(context.Background(), q.r, q.body); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := v.cache.len(); n > 4 {
		t.Fatalf("cache holds %d keys, cap 4", n)
	}
}

func TestMissingAuth(t *testing.T) {
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"sts"}})
	r, body := readServer(t, []byte("GET /?Action=GetCallerIdentity HTTP/1.1\r\nHost: sigil.example\r\n\r\n"))
	_, err := v.Verify(context.Background(), r, body)
	if !errors.Is(err, ErrMissingAuth) || err.(*Error).Message != "Request is missing Authentication Token" {
		t.Fatalf("Verify = %v", err)
	}
}

func TestErrorTextHasNoSecrets(t *testing.T) {
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"secretsmanager"}, Now: fixedClock(signedAt)})
	r, body := signedGetSecret(t, exampleAWSCreds, signedAt, "us-east-1")
	body = append([]byte(nil), body...)
	body[3] ^= 1
	_, err := v.Verify(context.Background(), r, body)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Verify = %v", err)
	}
	for _, s := range []string{e.Error(), e.Message, e.Debug} {
		if strings.Contains(s, exampleSecret) {
			t.Errorf("error text contains the secret: %q", s)
		}
	}
	if !strings.Contains(e.Debug, "canonical request") || !strings.Contains(e.Debug, "x-amz-target:secretsmanager.GetSecretValue") {
		t.Errorf("debug text lacks the canonical request:\n%s", e.Debug)
	}
	if strings.Contains(e.Error(), "canonical") || strings.Contains(e.Message, "x-amz-target") {
		t.Errorf("client text includes the canonical request: %q", e.Error())
	}
	// The client's signature is its own; what must not leak is the one the
	// server computed.
	if got := computedSignature(t, v, r, body); strings.Contains(e.Debug, got) || strings.Contains(e.Message, got) {
		t.Errorf("error text contains the computed signature %s", got)
	}
}

// computedSignature is the signature the server computes for r and body.
func computedSignature(t *testing.T, v *Verifier, r *http.Request, body []byte) string {
	t.Helper()
	a, perr := parseAuthorization(r.Header.Get("Authorization"))
	if perr != nil {
		t.Fatal(perr)
	}
	st := &state{}
	path, _ := requestTarget(r)
	st.norm = appendNormalizedURI(st.norm[:0], path)
	st.pairs = st.pairs[:0]
	st.buildCanonical(r, &canonicalInput{uri: st.norm, signedHeaders: a.signedHeaders, payloadHash: []byte(hashHex(body))})
	return referenceSignature(exampleSecret, a.date, a.region, a.service,
		"AWS4-HMAC-SHA256\n"+r.Header.Get("X-Amz-Date")+"\n"+a.scope+"\n"+hashHex(st.canon))
}

func TestPresignedToken(t *testing.T) {
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"sts"}, Now: fixedClock(signedAt)})
	req, _ := http.NewRequest("GET", "https://sigil.example/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Expires=60", nil)
	creds := exampleAWSCreds
	creds.SessionToken = "presigned-session-token"
	uri, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, hashHex(nil), "sts", "us-east-1", signedAt)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := http.NewRequest("GET", uri, nil)
	r, body := toServer(t, out)
	res, verr := v.Verify(context.Background(), r, body)
	if verr != nil || res.SessionToken != creds.SessionToken || !res.Presigned {
		t.Fatalf("Verify = %+v, %v", res, verr)
	}
	// The same token also as an (unsigned) header is refused.
	r.Header.Set("X-Amz-Security-Token", creds.SessionToken)
	if _, err := v.Verify(context.Background(), r, body); !errors.Is(err, ErrIncompleteSignature) {
		t.Fatalf("token twice: %v", err)
	}
}

func TestHeaderCanonicalisationUnits(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a", "a"},
		{"  a  ", "a"},
		{"a   b    c", "a b c"},
		{"\ta\t", "a"},
		{"a\t\tb", "a\t\tb"},
		{"", ""},
		{"   ", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			if got := string(appendHeaderValue(nil, tt.in)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPathForms(t *testing.T) {
	tests := []struct{ path, norm, literal string }{
		{"", "/", "/"},
		{"/", "/", "/"},
		{"//", "/", "//"},
		{"/a/./b/../c/", "/a/c/", "/a/./b/../c/"},
		{"/a/..", "/", "/a/.."},
		{"/a/../", "/", "/a/../"},
		{"/..", "/", "/.."},
		{"/a b", "/a%20b", "/a%20b"},
		{"/a%20b", "/a%2520b", "/a%2520b"},
		{"/%2E%2E/x", "/%252E%252E/x", "/%252E%252E/x"},
		{"/~a-b_c.d", "/~a-b_c.d", "/~a-b_c.d"},
		{"/ü", "/%C3%BC", "/%C3%BC"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := string(appendNormalizedURI(nil, tt.path)); got != tt.norm {
				t.Errorf("normalised %q, want %q", got, tt.norm)
			}
			if got := string(appendLiteralURI(nil, tt.path)); got != tt.literal {
				t.Errorf("literal %q, want %q", got, tt.literal)
			}
			if got := string(appendNormalizedURI(nil, tt.path)); got != string(appendLiteralURI(nil, botocorePath(tt.path))) {
				t.Errorf("normalised %q disagrees with the botocore reference", got)
			}
		})
	}
}

func TestQueryCanonicalisationUnits(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{"", "", true},
		{"b=2&a=1", "a=1&b=2", true},
		{"a=2&a=1&a=10", "a=1&a=10&a=2", true},
		{"a&b=", "a=&b=", true},
		{"a=1&&b=2", "a=1&b=2", true},
		{"sp=a+b%20c", "sp=a%20b%20c", true},
		{"%7e=%c3%bc", "~=%C3%BC", true},
		{"a-b=1&a%2Fb=2", "a%2Fb=2&a-b=1", true},
		{"=v", "=v", true},
		{"a=%zz", "", false},
		{"a=%4", "", false},
		{"a=%", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			st := &state{}
			if ok := st.parseQuery(tt.raw); ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !tt.ok {
				return
			}
			var parts []string
			for _, p := range st.pairs {
				parts = append(parts, string(st.scratch[p.k0:p.k1])+"="+string(st.scratch[p.v0:p.v1]))
			}
			if got := strings.Join(parts, "&"); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	v := newTestVerifier(t, Options{Region: "us-east-1", Services: []string{"secretsmanager"}, Now: fixedClock(signedAt)})
	names := []string{"host", "x-amz-date"}
	for i := 0; i < 127; i++ {
		names = append(names, fmt.Sprintf("x-h%03d", i))
	}
	auth := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/us-east-1/secretsmanager/aws4_request, SignedHeaders=" +
		strings.Join(names, ";") + ", Signature=" + strings.Repeat("ab", 32)
	if _, err := parseAuthorization(auth); !errors.Is(err, ErrIncompleteSignature) {
		t.Fatalf("129 signed headers: %v, want ErrIncompleteSignature", err)
	}
	if _, err := parseAuthorization(strings.Replace(auth, ";x-h126", "", 1)); err != nil {
		t.Fatalf("128 signed headers: %v", err)
	}
	r, body := signedGetSecret(t, exampleAWSCreds, signedAt, "us-east-1")
	for i := 0; i < 200; i++ {
		r.Header.Set(fmt.Sprintf("X-Amz-Filler-%d", i), "x")
	}
	if _, err := v.Verify(context.Background(), r, body); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("200 unsigned X-Amz-* headers: %v, want ErrSignatureMismatch", err)
	}
}
