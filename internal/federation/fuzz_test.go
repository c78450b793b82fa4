package federation_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/testutil"
)

var update = flag.Bool("update", false, "mint fresh tokens and keys into testdata/")

// fixture is the known-answer set in testdata/: a provider with a static
// JWKS (no network), the instant the tokens are judged at, and the tokens.
type fixture struct {
	v      *federation.Verifier
	p      *federation.Provider
	tokens map[string]string // file name -> token
}

// fixtureProvider is testdata/provider.json.
type fixtureProvider struct {
	URL       string   `json:"url"`
	ClientIDs []string `json:"client_ids"`
	Now       int64    `json:"now"`
}

const fixtureIssuer = "https://oidc.test.example/id/FIXTURE"

func loadFixture(t testing.TB) *fixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "provider.json"))
	if err != nil {
		t.Fatalf("reading testdata: %v (regenerate with go test -run TestOIDCTestdata -update)", err)
	}
	var fp fixtureProvider
	if err := json.Unmarshal(raw, &fp); err != nil {
		t.Fatalf("parsing provider.json: %v", err)
	}
	jwks, err := os.ReadFile(filepath.Join("testdata", "jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.jwt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata tokens: %v", err)
	}
	fx := &fixture{
		v:      federation.NewVerifier(federation.Options{Now: func() time.Time { return time.Unix(fp.Now, 0) }}),
		p:      &federation.Provider{URL: fp.URL, ClientIDs: fp.ClientIDs, JWKS: string(jwks)},
		tokens: map[string]string{},
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fx.tokens[filepath.Base(f)] = strings.TrimSpace(string(b))
	}
	return fx
}

// TestOIDCTestdata checks the known answers: every valid_*.jwt verifies,
// every bad_*.jwt fails, bad_expired* as expired and the rest as invalid.
func TestOIDCTestdata(t *testing.T) {
	if *update {
		writeFixture(t)
	}
	fx := loadFixture(t)
	var valid, bad int
	for name, tok := range fx.tokens {
		t.Run(name, func(t *testing.T) {
			id, err := fx.v.Verify(context.Background(), fx.p, tok)
			switch {
			case strings.HasPrefix(name, "valid_"):
				valid++
				if err != nil {
					t.Fatalf("rejected: %v (%s)", err, detail(err))
				}
				if id.Issuer != fixtureIssuer || id.Subject == "" {
					t.Fatalf("identity %+v", id)
				}
			case strings.HasPrefix(name, "bad_expired"):
				bad++
				assertKind(t, err, federation.ErrExpiredToken, tok)
			case strings.HasPrefix(name, "bad_"):
				bad++
				assertKind(t, err, federation.ErrInvalidToken, tok)
			default:
				t.Fatalf("testdata file %s is neither valid_ nor bad_", name)
			}
		})
	}
	if valid < 3 || bad < 10 {
		t.Fatalf("%d valid and %d bad tokens in testdata", valid, bad)
	}
}

// writeFixture mints the testdata with three fresh issuers (RS256, ES256,
// EdDSA) sharing one issuer URL and one JWKS.
func writeFixture(t *testing.T) {
	t.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	algs := []string{testutil.OIDCAlgRS256, testutil.OIDCAlgES256, testutil.OIDCAlgEdDSA}
	var keys []json.RawMessage
	issuers := map[string]*testutil.OIDCIssuer{}
	for _, alg := range algs {
		iss := testutil.StartOIDCIssuer(t, testutil.WithOIDCAlgorithm(alg), testutil.WithOIDCClock(clock))
		issuers[alg] = iss
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal([]byte(iss.JWKS()), &set); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, set.Keys...)
	}
	jwks, err := json.MarshalIndent(map[string]any{"keys": keys}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	prov, err := json.MarshalIndent(fixtureProvider{URL: fixtureIssuer, ClientIDs: []string{testutil.DefaultOIDCAudience}, Now: now.Unix()}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	at := testutil.TokenIssuer(fixtureIssuer)
	rs := issuers[testutil.OIDCAlgRS256]
	valid := rs.MintToken(at)
	parts := strings.Split(valid, ".")
	files := map[string]string{
		"provider.json":                   string(prov),
		"jwks.json":                       string(jwks),
		"valid_rs256.jwt":                 valid,
		"valid_es256.jwt":                 issuers[testutil.OIDCAlgES256].MintToken(at, testutil.TokenNamespace("prod"), testutil.TokenServiceAccount("web")),
		"valid_eddsa.jwt":                 issuers[testutil.OIDCAlgEdDSA].MintToken(at, testutil.TokenPod("")),
		"valid_session_tags.jwt":          rs.MintToken(at, tagsClaim(map[string][]string{"Project": {"Automation"}}, "Project")),
		"valid_not_kubernetes.jwt":        rs.MintToken(at, testutil.TokenClaim("kubernetes.io", nil), testutil.TokenSubject("user-1"), testutil.TokenClaim("aud", testutil.DefaultOIDCAudience)),
		"bad_alg_none.jwt":                rs.MintUnsignedToken(at),
		"bad_hs256_public_key.jwt":        rs.MintHS256WithPublicKey(at),
		"bad_foreign_key.jwt":             rs.MintTokenWithForeignKey(t, at),
		"bad_tampered_payload.jwt":        testutil.TamperToken(t, valid, func(c map[string]any) { c["sub"] = "system:serviceaccount:kube-system:admin" }),
		"bad_expired.jwt":                 rs.MintToken(at, testutil.TokenExpiry(now.Add(-time.Minute)), testutil.TokenIssuedAt(now.Add(-time.Hour)), testutil.TokenNotBefore(now.Add(-time.Hour))),
		"bad_wrong_aud.jwt":               rs.MintToken(at, testutil.TokenAudience("someone-else")),
		"bad_wrong_iss.jwt":               rs.MintToken(testutil.TokenIssuer("https://evil.example/id/FIXTURE")),
		"bad_nbf_future.jwt":              rs.MintToken(at, testutil.TokenNotBefore(now.Add(10*time.Minute))),
		"bad_iat_future.jwt":              rs.MintToken(at, testutil.TokenIssuedAt(now.Add(10*time.Minute))),
		"bad_no_exp.jwt":                  rs.MintToken(at, testutil.TokenClaim("exp", nil)),
		"bad_unknown_kid.jwt":             rs.MintToken(at, testutil.TokenKeyID("not-in-the-jwks")),
		"bad_no_kid_several_keys.jwt":     rs.MintToken(at, testutil.TokenKeyID("")),
		"bad_json_serialization.jwt":      `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`,
		"bad_truncated_signature.jwt":     valid[:len(valid)-10],
		"bad_four_segments.jwt":           valid + ".AAAA",
		"bad_session_tags_two_values.jwt": rs.MintToken(at, tagsClaim(map[string][]string{"Project": {"a", "b"}})),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join("testdata", name), []byte(content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// canonical decodes and re-encodes each segment of a compact token, so
// that tokens differing only in ignored base64 padding bits compare equal.
func canonical(token string) string {
	parts := strings.Split(token, ".")
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			return token
		}
		parts[i] = base64.RawURLEncoding.EncodeToString(b)
	}
	return strings.Join(parts, ".")
}

// FuzzVerifyToken feeds arbitrary strings, seeded with the testdata
// tokens, to Verify and IssuerOf against the fixture provider. Neither may
// panic; every failure must be an *Error of a package kind with its
// client message; and Verify may accept only a valid seed token (up to
// base64 padding bits, which the encoding ignores).
func FuzzVerifyToken(f *testing.F) {
	fx := loadFixture(f)
	var validCanon []string
	for name, tok := range fx.tokens {
		f.Add(tok)
		if strings.HasPrefix(name, "valid_") {
			validCanon = append(validCanon, canonical(tok))
		}
	}
	kinds := []error{federation.ErrInvalidToken, federation.ErrExpiredToken}
	f.Fuzz(func(t *testing.T, token string) {
		if _, err := federation.IssuerOf(token); err != nil {
			var fe *federation.Error
			if !errors.As(err, &fe) || fe.Kind != federation.ErrInvalidToken {
				t.Fatalf("IssuerOf error %v", err)
			}
		}
		id, err := fx.v.Verify(context.Background(), fx.p, token)
		if err != nil {
			var fe *federation.Error
			if !errors.As(err, &fe) || !slices.Contains(kinds, fe.Kind) || fe.Message == "" {
				t.Fatalf("Verify error %T %v", err, err)
			}
			if id != nil {
				t.Fatal("identity returned with an error")
			}
			return
		}
		if !slices.Contains(validCanon, canonical(token)) {
			t.Fatalf("accepted a token that is not a valid seed: %q", token)
		}
	})
}
