package sigv4

import (
	"context"
	"errors"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "re-sign testdata vectors marked \"# sign: sdk\" with aws-sdk-go-v2")

// TestVectors verifies every testdata request and checks the outcome its
// "# expect:" line names: ok, or the sentinel error.
func TestVectors(t *testing.T) {
	for _, vec := range loadVectors(t, "*.txt") {
		t.Run(vec.name(), func(t *testing.T) {
			if *update && vec.meta["sign"] == "sdk" {
				resign(t, vec)
				vec = loadVector(t, vec.path)
			}
			expect := vec.meta["expect"]
			if expect == "" {
				t.Fatal("vector has no # expect: line")
			}
			r, body := readServer(t, vec.wire)
			res, err := vec.verifier(t).Verify(context.Background(), r, body)
			if expect == "ok" {
				if err != nil {
					var e *Error
					if errors.As(err, &e) {
						t.Fatalf("Verify: %v\n%s", err, e.Debug)
					}
					t.Fatalf("Verify: %v", err)
				}
				if res.AccessKeyID != exampleKeyID || res.Region != vec.meta["region"] {
					t.Errorf("result %+v", res)
				}
				if tok := r.Header.Get("X-Amz-Security-Token"); res.SessionToken != tok && !res.Presigned {
					t.Errorf("session token %q, want %q", res.SessionToken, tok)
				}
				return
			}
			want, ok := sentinels[expect]
			if !ok {
				t.Fatalf("unknown expectation %q", expect)
			}
			if !errors.Is(err, want) {
				t.Fatalf("Verify error = %v, want %v", err, want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Message == "" || e.Debug == "" {
				t.Fatalf("error %#v lacks a message or debug text", err)
			}
			if strings.Contains(e.Message, exampleSecret) || strings.Contains(e.Debug, exampleSecret) {
				t.Fatal("error text contains the secret key")
			}
		})
	}
}

var authLine = regexp.MustCompile(`(?m)^Authorization: .*$`)

// resign rewrites a vector's Authorization line with the signature
// aws-sdk-go-v2 computes for the request, so the file records the SDK's
// answer. The scope's service is the one the placeholder names.
func resign(t *testing.T, vec vector) {
	t.Helper()
	r, body := readServer(t, vec.wire)
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatalf("placeholder Authorization: %v", err)
	}
	r.Header.Del("Authorization")
	auth, serr := sdkSignServer(t, r, body, a.region, a.service, nil)
	if serr != nil {
		t.Fatal(serr)
	}
	data, rerr := os.ReadFile(vec.path)
	if rerr != nil {
		t.Fatal(rerr)
	}
	out := authLine.ReplaceAllLiteralString(string(data), "Authorization: "+auth)
	if err := os.WriteFile(vec.path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKnownAnswerIAM is the worked example of the AWS documentation, spelled
// out: the canonical request and the signature are the published ones.
func TestKnownAnswerIAM(t *testing.T) {
	vec := loadVector(t, "testdata/aws_doc_iam_listusers.txt")
	r, body := readServer(t, vec.wire)
	v := vec.verifier(t)
	res, err := v.Verify(context.Background(), r, body)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Service != "iam" || res.SignedAt.Format(amzDateLayout) != "20150830T123600Z" {
		t.Errorf("result %+v", res)
	}
	const wantCanonical = "GET\n/\nAction=ListUsers&Version=2010-05-08\n" +
		"content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n" +
		"content-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	st := &state{}
	path, query := requestTarget(r)
	if !st.parseQuery(query) {
		t.Fatal("parseQuery failed")
	}
	st.norm = appendNormalizedURI(st.norm[:0], path)
	st.buildCanonical(r, &canonicalInput{uri: st.norm, signedHeaders: "content-type;host;x-amz-date",
		payloadHash: []byte("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")})
	if got := string(st.canon); got != wantCanonical {
		t.Errorf("canonical request\n%s\nwant\n%s", got, wantCanonical)
	}
	// Flip the last signature digit: the published signature is the only
	// one that verifies.
	auth := r.Header.Get("Authorization")
	r.Header.Set("Authorization", auth[:len(auth)-1]+"8")
	if _, err := v.Verify(context.Background(), r, body); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("altered signature: %v, want ErrSignatureMismatch", err)
	}
}
