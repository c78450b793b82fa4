package federation_test

import (
	"errors"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/testutil"
)

func TestOIDCProviderARNAndKeyPrefix(t *testing.T) {
	tests := []struct {
		url, prefix string
	}{
		{"https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF", "oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF"},
		{"https://token.actions.githubusercontent.com", "token.actions.githubusercontent.com"},
		{"https://issuer.example/", "issuer.example"},
		{"https://127.0.0.1:8443/k8s", "127.0.0.1:8443/k8s"},
		{"http://lab.local/x", "lab.local/x"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			if got := federation.ConditionKeyPrefix(tt.url); got != tt.prefix {
				t.Fatalf("ConditionKeyPrefix = %q, want %q", got, tt.prefix)
			}
			p := &federation.Provider{URL: tt.url}
			if p.KeyPrefix() != tt.prefix {
				t.Fatalf("KeyPrefix = %q", p.KeyPrefix())
			}
			want := "arn:aws:iam::123456789012:oidc-provider/" + tt.prefix
			if got := federation.ProviderARN("123456789012", tt.url); got != want {
				t.Fatalf("ProviderARN = %q, want %q", got, want)
			}
		})
	}
}

func TestOIDCProviderValidate(t *testing.T) {
	iss := testutil.StartOIDCIssuer(t)
	tp := strings.Repeat("a1", 20)
	ok := func() federation.Provider {
		return federation.Provider{URL: "https://issuer.example/id/1", ClientIDs: []string{"sts.amazonaws.com"}, Thumbprints: []string{tp}}
	}
	tests := []struct {
		name   string
		change func(p *federation.Provider)
		valid  bool
	}{
		{"minimal", func(*federation.Provider) {}, true},
		{"no client IDs", func(p *federation.Provider) { p.ClientIDs = nil }, true},
		{"CA bundle", func(p *federation.Provider) { p.CABundle = iss.CAPEM }, true},
		{"static JWKS", func(p *federation.Provider) { p.JWKS = iss.JWKS() }, true},
		{"http allowed", func(p *federation.Provider) { p.URL, p.AllowHTTP = "http://lab.local", true }, true},
		{"five thumbprints", func(p *federation.Provider) { p.Thumbprints = []string{tp, tp, tp, tp, tp} }, true},
		{"empty URL", func(p *federation.Provider) { p.URL = "" }, false},
		{"http not allowed", func(p *federation.Provider) { p.URL = "http://lab.local" }, false},
		{"other scheme", func(p *federation.Provider) { p.URL = "ftp://issuer.example" }, false},
		{"no scheme", func(p *federation.Provider) { p.URL = "issuer.example" }, false},
		{"no host", func(p *federation.Provider) { p.URL = "https:///path" }, false},
		{"query", func(p *federation.Provider) { p.URL = "https://issuer.example/?a=b" }, false},
		{"empty query", func(p *federation.Provider) { p.URL = "https://issuer.example/?" }, false},
		{"fragment", func(p *federation.Provider) { p.URL = "https://issuer.example/#x" }, false},
		{"user info", func(p *federation.Provider) { p.URL = "https://u@issuer.example" }, false},
		{"URL too long", func(p *federation.Provider) { p.URL = "https://issuer.example/" + strings.Repeat("p", 240) }, false},
		{"six thumbprints", func(p *federation.Provider) { p.Thumbprints = []string{tp, tp, tp, tp, tp, tp} }, false},
		{"short thumbprint", func(p *federation.Provider) { p.Thumbprints = []string{tp[:38]} }, false},
		{"non-hex thumbprint", func(p *federation.Provider) { p.Thumbprints = []string{strings.Repeat("zz", 20)} }, false},
		{"empty client ID", func(p *federation.Provider) { p.ClientIDs = []string{""} }, false},
		{"client ID too long", func(p *federation.Provider) { p.ClientIDs = []string{strings.Repeat("c", 256)} }, false},
		{"too many client IDs", func(p *federation.Provider) { p.ClientIDs = make([]string, 101) }, false},
		{"CA bundle without certificates", func(p *federation.Provider) { p.CABundle = "not pem" }, false},
		{"static JWKS not JSON", func(p *federation.Provider) { p.JWKS = "{" }, false},
		{"static JWKS with only a private key", func(p *federation.Provider) {
			p.JWKS = `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`
		}, false},
		{"static JWKS with an HMAC key", func(p *federation.Provider) {
			p.JWKS = `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok()
			tt.change(&p)
			err := p.Validate()
			if tt.valid {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, federation.ErrInvalidProvider) {
				t.Fatalf("Validate = %v, want ErrInvalidProvider", err)
			}
		})
	}
}
