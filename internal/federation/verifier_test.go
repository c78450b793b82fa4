package federation_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/testutil"
)

func TestOIDCVerifyValidToken(t *testing.T) {
	for _, alg := range []string{testutil.OIDCAlgRS256, testutil.OIDCAlgES256, testutil.OIDCAlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, nil, testutil.WithOIDCAlgorithm(alg), testutil.WithOIDCPath("/id/CLUSTER1"))
			now := e.clock.Now()
			token := e.iss.MintToken(
				testutil.TokenNamespace("prod"),
				testutil.TokenServiceAccount("web"),
				testutil.TokenPod("web-7c9f"),
				testutil.TokenAudience("other-audience", testutil.DefaultOIDCAudience),
				testutil.TokenClaim("jti", "token-1"),
			)
			id := e.mustVerify(t, token)

			if id.ProviderURL != e.iss.URL || id.Issuer != e.iss.URL || id.ProviderARN != e.p.ARN {
				t.Errorf("provider %q, issuer %q, ARN %q", id.ProviderURL, id.Issuer, id.ProviderARN)
			}
			if id.Subject != "system:serviceaccount:prod:web" || id.Audience != testutil.DefaultOIDCAudience ||
				!slices.Equal(id.Audiences, []string{testutil.DefaultOIDCAudience}) {
				t.Errorf("subject %q, audience %q, audiences %q", id.Subject, id.Audience, id.Audiences)
			}
			if !id.ExpiresAt.Equal(now.Add(time.Hour)) || !id.IssuedAt.Equal(now) || !id.NotBefore.Equal(now) {
				t.Errorf("exp %v, iat %v, nbf %v", id.ExpiresAt, id.IssuedAt, id.NotBefore)
			}
			if id.TokenID != "token-1" || id.KeyID != e.iss.KeyID() || id.Algorithm != alg {
				t.Errorf("jti %q, kid %q, alg %q", id.TokenID, id.KeyID, id.Algorithm)
			}
			k := id.Kubernetes
			if k == nil || k.Namespace != "prod" || k.ServiceAccount != "web" || k.Pod != "web-7c9f" ||
				len(k.ServiceAccountUID) != 36 || len(k.PodUID) != 36 {
				t.Fatalf("kubernetes = %+v", k)
			}

			prefix := strings.TrimPrefix(e.iss.URL, "https://")
			if !strings.HasSuffix(prefix, "/id/CLUSTER1") || strings.Contains(prefix, "https") {
				t.Fatalf("prefix %q", prefix)
			}
			want := map[string][]string{
				prefix + ":sub":                {"system:serviceaccount:prod:web"},
				prefix + ":aud":                {testutil.DefaultOIDCAudience},
				"sigil:k8s/namespace":          {"prod"},
				"sigil:k8s/serviceaccount":     {"web"},
				"sigil:k8s/serviceaccount-uid": {k.ServiceAccountUID},
				"sigil:k8s/pod":                {"web-7c9f"},
				"sigil:k8s/pod-uid":            {k.PodUID},
			}
			got := id.ConditionContext()
			if !maps.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("ConditionContext =\n%v\nwant\n%v", got, want)
			}
			got[prefix+":sub"][0] = "changed"
			if id.ConditionContext()[prefix+":sub"][0] != "system:serviceaccount:prod:web" {
				t.Fatal("ConditionContext shares state between calls")
			}
		})
	}
}

func TestOIDCVerifyRejects(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	e.mustVerify(t, e.iss.MintToken()) // warm the key cache
	big := strings.Repeat("x", federation.MaxTokenSize)

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"expired", e.iss.MintToken(testutil.TokenExpiry(now.Add(-time.Second))), federation.ErrExpiredToken},
		{"expires now", e.iss.MintToken(testutil.TokenExpiry(now)), federation.ErrExpiredToken},
		{"not yet valid (nbf)", e.iss.MintToken(testutil.TokenNotBefore(now.Add(2 * time.Minute))), federation.ErrInvalidToken},
		{"issued in the future (iat)", e.iss.MintToken(testutil.TokenIssuedAt(now.Add(2 * time.Minute))), federation.ErrInvalidToken},
		{"wrong iss", e.iss.MintToken(testutil.TokenIssuer("https://evil.example")), federation.ErrInvalidToken},
		{"iss with trailing slash", e.iss.MintToken(testutil.TokenIssuer(e.iss.URL + "/")), federation.ErrInvalidToken},
		{"iss other case", e.iss.MintToken(testutil.TokenIssuer(strings.ToUpper(e.iss.URL))), federation.ErrInvalidToken},
		{"wrong aud", e.iss.MintToken(testutil.TokenAudience("someone-else")), federation.ErrInvalidToken},
		{"wrong aud string", e.iss.MintToken(testutil.TokenClaim("aud", "someone-else")), federation.ErrInvalidToken},
		{"aud not a string", e.iss.MintToken(testutil.TokenClaim("aud", 7)), federation.ErrInvalidToken},
		{"no aud", e.iss.MintToken(testutil.TokenClaim("aud", nil)), federation.ErrInvalidToken},
		{"no exp", e.iss.MintToken(testutil.TokenClaim("exp", nil)), federation.ErrInvalidToken},
		{"exp not a number", e.iss.MintToken(testutil.TokenClaim("exp", "tomorrow")), federation.ErrInvalidToken},
		{"no sub", e.iss.MintToken(testutil.TokenSubject("")), federation.ErrInvalidToken},
		{"alg none", e.iss.MintUnsignedToken(), federation.ErrInvalidToken},
		{"alg none without kid", e.iss.MintUnsignedToken(testutil.TokenKeyID("")), federation.ErrInvalidToken},
		{"HS256 keyed with the public key", e.iss.MintHS256WithPublicKey(), federation.ErrInvalidToken},
		{"signature from another key", e.iss.MintTokenWithForeignKey(t), federation.ErrInvalidToken},
		{"tampered payload", testutil.TamperToken(t, e.iss.MintToken(), func(c map[string]any) {
			c["kubernetes.io"].(map[string]any)["namespace"] = "kube-system"
		}), federation.ErrInvalidToken},
		{"tampered expiry", testutil.TamperToken(t, e.iss.MintToken(testutil.TokenExpiry(now.Add(-time.Hour))), func(c map[string]any) {
			c["exp"] = now.Add(time.Hour).Unix()
		}), federation.ErrInvalidToken},
		{"signature stripped", strings.TrimRight(e.iss.MintToken(), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"), federation.ErrInvalidToken},
		{"oversized", big + "." + big + ".x", federation.ErrInvalidToken},
		{"oversized by one byte", strings.Repeat("a", federation.MaxTokenSize+1), federation.ErrInvalidToken},
		{"empty", "", federation.ErrInvalidToken},
		{"garbage", "not a token", federation.ErrInvalidToken},
		{"JSON serialization", jsonSerialization(t, e.iss.MintToken()), federation.ErrInvalidToken},
		{"no kid with a single key is accepted", e.iss.MintToken(testutil.TokenKeyID("")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := e.verify(t, tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v (%s)", err, detail(err))
				}
				return
			}
			if id != nil {
				t.Fatalf("returned an identity with error %v", err)
			}
			assertKind(t, err, tt.want, tt.token)
		})
	}
	if n := e.iss.JWKSFetches(); n != 1 {
		t.Fatalf("%d JWKS fetches; none of these tokens has an unknown kid", n)
	}
}

// jsonSerialization rewrites a compact token in JWS JSON serialization.
func jsonSerialization(t *testing.T, token string) string {
	t.Helper()
	p := strings.Split(token, ".")
	return `{"protected":"` + p[0] + `","payload":"` + p[1] + `","signature":"` + p[2] + `"}`
}

func TestOIDCVerifySkew(t *testing.T) {
	tests := []struct {
		name   string
		skew   time.Duration
		ahead  time.Duration
		accept bool
	}{
		{"nbf and iat within the default skew", 0, 59 * time.Second, true},
		{"nbf and iat at the default skew", 0, 60 * time.Second, true},
		{"nbf and iat past the default skew", 0, 61 * time.Second, false},
		{"within a custom skew", 5 * time.Minute, 4 * time.Minute, true},
		{"past a custom skew", 5 * time.Second, 6 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *federation.Options) { o.Skew = tt.skew })
			at := e.clock.Now().Add(tt.ahead)
			for _, opt := range []testutil.TokenOption{testutil.TokenNotBefore(at), testutil.TokenIssuedAt(at)} {
				_, err := e.verify(t, e.iss.MintToken(opt))
				if tt.accept && err != nil {
					t.Fatalf("rejected: %v (%s)", err, detail(err))
				}
				if !tt.accept {
					assertKind(t, err, federation.ErrInvalidToken, "")
				}
			}
		})
	}
}

func TestOIDCVerifyExpiryFollowsClock(t *testing.T) {
	e := newEnv(t, nil)
	token := e.iss.MintToken(testutil.TokenExpiry(e.clock.Now().Add(10 * time.Minute)))
	e.mustVerify(t, token)
	e.clock.Advance(10 * time.Minute)
	_, err := e.verify(t, token)
	assertKind(t, err, federation.ErrExpiredToken, token)
}

func TestOIDCVerifyKidRequiredWithSeveralKeys(t *testing.T) {
	e := newEnv(t, nil)
	e.mustVerify(t, e.iss.MintToken(testutil.TokenKeyID("")))

	e.iss.RotateKeysKeepingOld(t)
	e.v.Invalidate(e.p.URL) // fetch the two-key set now
	e.mustVerify(t, e.iss.MintToken())
	_, err := e.verify(t, e.iss.MintToken(testutil.TokenKeyID("")))
	assertKind(t, err, federation.ErrInvalidToken, "")
	if !strings.Contains(detail(err), "without kid") {
		t.Fatalf("detail %q", detail(err))
	}
}

func TestOIDCVerifyErrorsAreVague(t *testing.T) {
	e := newEnv(t, nil)
	var messages []string
	for _, tok := range []string{
		e.iss.MintToken(testutil.TokenAudience("x")),
		e.iss.MintToken(testutil.TokenIssuer("https://x.example")),
		e.iss.MintUnsignedToken(),
		e.iss.MintTokenWithForeignKey(t),
		"garbage",
	} {
		_, err := e.verify(t, tok)
		assertKind(t, err, federation.ErrInvalidToken, tok)
		var fe *federation.Error
		errors.As(err, &fe)
		messages = append(messages, fe.Message)
	}
	if len(slices.Compact(slices.Clone(messages))) != 1 {
		t.Fatalf("client messages differ between failures: %q", messages)
	}
	if !strings.Contains(messages[0], "invalid") {
		t.Fatalf("message %q", messages[0])
	}
}

func TestOIDCVerifyNilProvider(t *testing.T) {
	v := federation.NewVerifier(federation.Options{})
	_, err := v.Verify(t.Context(), nil, "a.b.c")
	assertKind(t, err, federation.ErrUnknownProvider, "")
}

func TestOIDCIssuerOf(t *testing.T) {
	iss := testutil.StartOIDCIssuer(t)
	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"minted", iss.MintToken(), iss.URL},
		{"unsigned is still read", iss.MintUnsignedToken(testutil.TokenIssuer("https://x.example/p")), "https://x.example/p"},
		{"no iss", iss.MintToken(testutil.TokenClaim("iss", nil)), ""},
		{"two parts", "a.b", ""},
		{"four parts", "a.b.c.d", ""},
		{"bad base64", "a.!!!.c", ""},
		{"not JSON", "a.bm90IGpzb24.c", ""},
		{"iss not a string", iss.MintToken(testutil.TokenClaim("iss", 5)), ""},
		{"oversized", strings.Repeat("a.", federation.MaxTokenSize), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := federation.IssuerOf(tt.token)
			if tt.want == "" {
				assertKind(t, err, federation.ErrInvalidToken, tt.token)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("IssuerOf = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
