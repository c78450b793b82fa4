package sigv4

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseAuthorization feeds arbitrary Authorization headers to the
// parser. It must not panic; what it accepts must be well formed, and must
// re-parse identically after being written out in canonical form.
func FuzzParseAuthorization(f *testing.F) {
	for _, vec := range loadVectors(f, "*.txt") {
		r, _ := readServer(f, vec.wire)
		if a := r.Header.Get("Authorization"); a != "" {
			f.Add(a)
		}
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			if a.accessKeyID != "" && err.Kind != ErrIncompleteSignature {
				t.Fatalf("error of kind %v", err.Kind)
			}
			if len(err.Message) > 400+len(h) {
				t.Fatalf("message of %d bytes", len(err.Message))
			}
			return
		}
		if a.accessKeyID == "" || strings.Contains(a.accessKeyID, "/") || a.scope != a.date+"/"+a.region+"/"+a.service+"/"+a.terminator {
			t.Fatalf("accepted a malformed credential: %+v", a)
		}
		if checkSignedHeaders(a.signedHeaders) != nil {
			t.Fatalf("accepted malformed signed headers %q", a.signedHeaders)
		}
		again := Algorithm + " Credential=" + a.accessKeyID + "/" + a.scope + ", SignedHeaders=" + a.signedHeaders +
			", Signature=" + hexString(a.signature[:])
		b, err := parseAuthorization(again)
		if err != nil || b != a {
			t.Fatalf("re-parse of %q: %+v, %v; want %+v", again, b, err, a)
		}
	})
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// FuzzVerify mutates a valid signed request from testdata (a header, the
// body, the path, the query, the method, the host, or the Authorization
// header) and verifies it. Verify must not panic, and must accept the result
// only when the mutation left the signed content unchanged: aws-sdk-go-v2,
// signing the mutated request, must reproduce the original signature (over
// the path as sent or normalised), or, for an Authorization mutation, the
// header must parse to the same claim.
func FuzzVerify(f *testing.F) {
	vecs := loadVectors(f, "sdk_*.txt")
	for i := range vecs {
		for op := 0; op < 8; op++ {
			f.Add(uint8(i), uint8(op), uint8(0), "")
			f.Add(uint8(i), uint8(op), uint8(1), " x  y ")
		}
	}
	f.Fuzz(func(t *testing.T, vi, op, pos uint8, data string) {
		vec := vecs[int(vi)%len(vecs)]
		r, body := readServer(t, vec.wire)
		orig, perr := parseAuthorization(r.Header.Get("Authorization"))
		if perr != nil {
			t.Fatal(perr)
		}
		signed := strings.Split(orig.signedHeaders, ";")
		authMutated := false
		switch op % 8 {
		case 0: // replace a signed header's value
			name := signed[int(pos)%len(signed)]
			if name == "host" {
				r.Host = data
			} else {
				r.Header[http.CanonicalHeaderKey(name)] = []string{data}
			}
		case 1: // add a value to a signed header
			name := http.CanonicalHeaderKey(signed[int(pos)%len(signed)])
			r.Header[name] = append(r.Header[name], data)
		case 2: // replace the body
			body = []byte(data)
		case 3: // replace the path
			_, q := requestTarget(r)
			setTarget(r, "/"+data, q)
		case 4: // replace the query
			p, _ := requestTarget(r)
			setTarget(r, p, data)
		case 5: // replace the method
			r.Method = data
		case 6: // splice the Authorization header
			a := r.Header.Get("Authorization")
			i := int(pos) % (len(a) + 1)
			r.Header.Set("Authorization", a[:i]+data+a[min(len(a), i+len(data)):])
			authMutated = true
		case 7: // add an unsigned or a security-token header
			if pos%2 == 0 {
				r.Header.Set("X-Unsigned-"+strconv.Itoa(int(pos)), data)
			} else {
				r.Header.Set("X-Amz-Security-Token", data)
			}
		}
		res, err := vec.verifier(t).Verify(context.Background(), r, body)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("non-authentication error %v", err)
			}
			return
		}
		if res.AccessKeyID != exampleKeyID {
			t.Fatalf("verified as %q", res.AccessKeyID)
		}
		if authMutated {
			now, _ := parseAuthorization(r.Header.Get("Authorization"))
			if now != orig {
				t.Fatalf("mutated Authorization %q verified", r.Header.Get("Authorization"))
			}
			return
		}
		if !sameSignature(t, r, body, orig) {
			t.Fatalf("mutation %d verified but changes the signed request", op%8)
		}
	})
}

// sameSignature reports whether aws-sdk-go-v2 signs the (mutated) request
// with the original signature, over its path as sent or normalised.
func sameSignature(t *testing.T, r *http.Request, body []byte, orig authorization) bool {
	t.Helper()
	keep := strings.Split(orig.signedHeaders, ";")
	path, query := requestTarget(r)
	for _, p := range []string{path, botocorePath(path)} {
		c := r.Clone(context.Background())
		setTarget(c, p, query)
		if cl := c.Header["Content-Length"]; len(cl) == 1 {
			n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
			if err != nil {
				return false
			}
			c.ContentLength = n
		} else {
			c.ContentLength = -1
		}
		auth, err := sdkSignServer(t, c, body, orig.region, orig.service, keep)
		if err != nil {
			return false
		}
		a, perr := parseAuthorization(auth)
		if perr == nil && a.signature == orig.signature {
			return true
		}
	}
	return false
}
