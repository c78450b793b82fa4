package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The example credentials of the AWS documentation and test suite.
const (
	exampleKeyID  = "AKIDEXAMPLE"
	exampleSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

// staticCreds is a Credentials over a fixed map.
type staticCreds map[string]string

func (c staticCreds) SecretKey(_ context.Context, id string) (string, error) {
	s, ok := c[id]
	if !ok {
		return "", fmt.Errorf("access key %q: %w", id, ErrUnknownAccessKey)
	}
	return s, nil
}

func exampleCreds() staticCreds { return staticCreds{exampleKeyID: exampleSecret} }

func mustParseAmzDate(t testing.TB, s string) time.Time {
	t.Helper()
	tm, ok := parseAmzDate(s)
	if !ok {
		t.Fatalf("bad date %q", s)
	}
	return tm
}

func newTestVerifier(t testing.TB, opts Options) *Verifier {
	t.Helper()
	if opts.Credentials == nil {
		opts.Credentials = exampleCreds()
	}
	v, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

func fixedClock(tm time.Time) func() time.Time { return func() time.Time { return tm } }

// toServer writes a client request to the wire and reads it back as a server
// would, so Verify sees exactly what net/http hands a handler.
func toServer(t testing.TB, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatalf("writing request: %v", err)
	}
	return readServer(t, buf.Bytes())
}

func readServer(t testing.TB, wire []byte) (*http.Request, []byte) {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire)))
	if err != nil {
		t.Fatalf("reading request: %v\n%s", err, wire)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return r, body
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// vector is one testdata file: "# key: value" metadata lines, other "#"
// comment lines, then a raw HTTP/1.1 request.
type vector struct {
	path string
	meta map[string]string
	head string // the comment block, kept when -update rewrites the file
	wire []byte
}

func loadVectors(t testing.TB, pattern string) []vector {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no vectors match %q (%v)", pattern, err)
	}
	sort.Strings(paths)
	var out []vector
	for _, p := range paths {
		out = append(out, loadVector(t, p))
	}
	return out
}

func loadVector(t testing.TB, path string) vector {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := vector{path: path, meta: map[string]string{}}
	rest := string(data)
	for strings.HasPrefix(rest, "#") {
		line, tail, _ := strings.Cut(rest, "\n")
		v.head += line + "\n"
		if k, val, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": "); ok && !strings.Contains(k, " ") {
			v.meta[k] = val
		}
		rest = tail
	}
	// Vectors are written with bare LF; HTTP wants CRLF in the head.
	head, body, _ := strings.Cut(rest, "\n\n")
	v.wire = []byte(strings.ReplaceAll(head, "\n", "\r\n") + "\r\n\r\n" + body)
	return v
}

func (vec vector) name() string { return strings.TrimSuffix(filepath.Base(vec.path), ".txt") }

func (vec vector) verifier(t testing.TB) *Verifier {
	t.Helper()
	return newTestVerifier(t, Options{
		Region:               vec.meta["region"],
		Services:             strings.Fields(vec.meta["services"]),
		Now:                  fixedClock(mustParseAmzDate(t, vec.meta["now"])),
		AllowUnsignedPayload: vec.meta["unsigned"] == "allow",
	})
}

// sentinels by name, for "# expect:" lines.
var sentinels = map[string]error{
	"ErrMissingAuth":         ErrMissingAuth,
	"ErrIncompleteSignature": ErrIncompleteSignature,
	"ErrSignatureMismatch":   ErrSignatureMismatch,
	"ErrScope":               ErrScope,
	"ErrSkewed":              ErrSkewed,
	"ErrExpired":             ErrExpired,
	"ErrUnknownAccessKey":    ErrUnknownAccessKey,
}

// sdkSignServer signs a server-side request with aws-sdk-go-v2, over the
// path as sent, and returns the Authorization header it produced. Only the
// headers named in keep (all but the SDK's ignored ones when keep is nil) are
// given to the signer.
func sdkSignServer(t testing.TB, r *http.Request, body []byte, region, service string, keep []string) (string, error) {
	t.Helper()
	path, query := requestTarget(r)
	u := *r.URL
	c := &http.Request{
		Method:        r.Method,
		URL:           &u,
		Host:          r.Host,
		Header:        http.Header{},
		ContentLength: r.ContentLength,
	}
	c.URL.Opaque = "//" + r.Host + path
	c.URL.RawQuery = query
	for k, vs := range r.Header {
		if keep != nil && !containsFold(keep, k) {
			continue
		}
		c.Header[k] = append([]string(nil), vs...)
	}
	dates := c.Header["X-Amz-Date"]
	if len(dates) != 1 {
		return "", errors.New("no single X-Amz-Date")
	}
	tm, ok := parseAmzDate(dates[0])
	if !ok {
		return "", errors.New("bad X-Amz-Date")
	}
	creds := aws.Credentials{AccessKeyID: exampleKeyID, SecretAccessKey: exampleSecret}
	if tok := c.Header["X-Amz-Security-Token"]; len(tok) == 1 {
		creds.SessionToken = tok[0]
	}
	payload := hashHex(body)
	if h := c.Header["X-Amz-Content-Sha256"]; len(h) == 1 {
		payload = h[0]
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, c, payload, service, region, tm); err != nil {
		return "", err
	}
	return c.Header.Get("Authorization"), nil
}

// referenceSignature computes a SigV4 signature the long way, with
// crypto/hmac, as an independent reference.
func referenceSignature(secret, date, region, service, stringToSign string) string {
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	k := mac([]byte("AWS4"+secret), date)
	k = mac(k, region)
	k = mac(k, service)
	k = mac(k, "aws4_request")
	return hex.EncodeToString(mac(k, stringToSign))
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
