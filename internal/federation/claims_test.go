package federation_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/testutil"
)

func tagsClaim(tags map[string][]string, transitive ...string) testutil.TokenOption {
	body := map[string]any{"principal_tags": tags}
	if transitive != nil {
		body["transitive_tag_keys"] = transitive
	}
	return testutil.TokenClaim(federation.TagsClaim, body)
}

func TestOIDCSessionTags(t *testing.T) {
	e := newEnv(t, nil)
	id := e.mustVerify(t, e.iss.MintToken(tagsClaim(map[string][]string{
		"Project":    {"Automation"},
		"CostCenter": {"987654"},
		"team":       {"payments @ eu/west:1 = a+b_c.d-e"},
	}, "Project", "CostCenter", "Project")))

	want := []federation.SessionTag{{Key: "CostCenter", Value: "987654"}, {Key: "Project", Value: "Automation"}, {Key: "team", Value: "payments @ eu/west:1 = a+b_c.d-e"}}
	if !slices.Equal(id.SessionTags, want) {
		t.Fatalf("SessionTags = %v", id.SessionTags)
	}
	if !slices.Equal(id.TransitiveTagKeys, []string{"CostCenter", "Project"}) {
		t.Fatalf("TransitiveTagKeys = %v", id.TransitiveTagKeys)
	}
	ctx := id.ConditionContext()
	for k, v := range map[string][]string{
		"aws:RequestTag/Project":    {"Automation"},
		"aws:RequestTag/CostCenter": {"987654"},
		"aws:TagKeys":               {"CostCenter", "Project", "team"},
	} {
		if !slices.Equal(ctx[k], v) {
			t.Errorf("%s = %v, want %v", k, ctx[k], v)
		}
	}

	plain := e.mustVerify(t, e.iss.MintToken())
	if plain.SessionTags != nil || plain.TransitiveTagKeys != nil {
		t.Fatalf("tags on a token without the claim: %v", plain.SessionTags)
	}
	if _, ok := plain.ConditionContext()["aws:TagKeys"]; ok {
		t.Fatal("aws:TagKeys without tags")
	}
}

func TestOIDCSessionTagsRejected(t *testing.T) {
	e := newEnv(t, nil)
	many := map[string][]string{}
	for i := range federation.MaxSessionTags + 1 {
		many[fmt.Sprintf("k%d", i)] = []string{"v"}
	}
	tests := []struct {
		name string
		opt  testutil.TokenOption
	}{
		{"two values", tagsClaim(map[string][]string{"a": {"1", "2"}})},
		{"no value", tagsClaim(map[string][]string{"a": {}})},
		{"reserved prefix", tagsClaim(map[string][]string{"AWS:thing": {"1"}})},
		{"keys differing in case", tagsClaim(map[string][]string{"Team": {"1"}, "team": {"2"}})},
		{"transitive key not a tag", tagsClaim(map[string][]string{"a": {"1"}}, "b")},
		{"too many", tagsClaim(many)},
		{"key too long", tagsClaim(map[string][]string{strings.Repeat("k", federation.MaxTagKeyLength+1): {"1"}})},
		{"value too long", tagsClaim(map[string][]string{"k": {strings.Repeat("v", federation.MaxTagValueLength+1)}})},
		{"empty key", tagsClaim(map[string][]string{"": {"1"}})},
		{"forbidden character", tagsClaim(map[string][]string{"k": {"a;b"}})},
		{"not an object", testutil.TokenClaim(federation.TagsClaim, []string{"x"})},
		{"value not an array", testutil.TokenClaim(federation.TagsClaim, map[string]any{"principal_tags": map[string]string{"a": "1"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.verify(t, e.iss.MintToken(tt.opt))
			assertKind(t, err, federation.ErrInvalidToken, "")
		})
	}
	// Limits themselves are allowed.
	limit := map[string][]string{strings.Repeat("k", federation.MaxTagKeyLength): {strings.Repeat("é", federation.MaxTagValueLength)}}
	for i := range federation.MaxSessionTags - 1 {
		limit[fmt.Sprintf("k%d", i)] = []string{""}
	}
	if id := e.mustVerify(t, e.iss.MintToken(tagsClaim(limit))); len(id.SessionTags) != federation.MaxSessionTags {
		t.Fatalf("%d tags", len(id.SessionTags))
	}
}

func TestOIDCKubernetesClaims(t *testing.T) {
	e := newEnv(t, nil)
	prefix := federation.ConditionKeyPrefix(e.iss.URL)

	t.Run("not a Kubernetes token", func(t *testing.T) {
		id := e.mustVerify(t, e.iss.MintToken(testutil.TokenClaim("kubernetes.io", nil), testutil.TokenSubject("user-42")))
		if id.Kubernetes != nil {
			t.Fatalf("Kubernetes = %+v", id.Kubernetes)
		}
		want := map[string][]string{prefix + ":sub": {"user-42"}, prefix + ":aud": {testutil.DefaultOIDCAudience}}
		if got := id.ConditionContext(); !maps.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("ConditionContext = %v", got)
		}
	})
	t.Run("token not bound to a pod", func(t *testing.T) {
		id := e.mustVerify(t, e.iss.MintToken(testutil.TokenPod("")))
		ctx := id.ConditionContext()
		if id.Kubernetes.Pod != "" || ctx["sigil:k8s/pod"] != nil || ctx["sigil:k8s/pod-uid"] != nil {
			t.Fatalf("pod keys on an unbound token: %v", ctx)
		}
		if ctx["sigil:k8s/namespace"][0] != "default" || ctx["sigil:k8s/serviceaccount"][0] != "default" {
			t.Fatalf("ConditionContext = %v", ctx)
		}
	})
	t.Run("without UIDs", func(t *testing.T) {
		id := e.mustVerify(t, e.iss.MintToken(testutil.TokenClaim("kubernetes.io", map[string]any{
			"namespace":      "ns",
			"serviceaccount": map[string]string{"name": "sa"},
		})))
		ctx := id.ConditionContext()
		if _, ok := ctx["sigil:k8s/serviceaccount-uid"]; ok {
			t.Fatalf("empty UID key present: %v", ctx)
		}
	})
	for name, claim := range map[string]any{
		"no namespace":            map[string]any{"serviceaccount": map[string]string{"name": "sa"}},
		"no service account":      map[string]any{"namespace": "ns"},
		"service account unnamed": map[string]any{"namespace": "ns", "serviceaccount": map[string]string{"uid": "u"}},
		"pod unnamed":             map[string]any{"namespace": "ns", "serviceaccount": map[string]string{"name": "sa"}, "pod": map[string]string{"uid": "u"}},
		"namespace not a string":  map[string]any{"namespace": 3, "serviceaccount": map[string]string{"name": "sa"}},
		"claim not an object":     "kube",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.verify(t, e.iss.MintToken(testutil.TokenClaim("kubernetes.io", claim)))
			assertKind(t, err, federation.ErrInvalidToken, "")
		})
	}
}

func TestOIDCAudienceMatching(t *testing.T) {
	e := newEnv(t, nil)
	e.p.ClientIDs = []string{"app-b", "app-a"}
	id := e.mustVerify(t, e.iss.MintToken(testutil.TokenAudience("unregistered", "app-a", "app-b", "app-a")))
	if id.Audience != "app-a" || !slices.Equal(id.Audiences, []string{"app-a", "app-b"}) {
		t.Fatalf("Audience %q, Audiences %v", id.Audience, id.Audiences)
	}
	if got := id.ConditionContext()[federation.ConditionKeyPrefix(e.iss.URL)+":aud"]; !slices.Equal(got, []string{"app-a", "app-b"}) {
		t.Fatalf(":aud = %v", got)
	}
	id = e.mustVerify(t, e.iss.MintToken(testutil.TokenClaim("aud", "app-b")))
	if id.Audience != "app-b" {
		t.Fatalf("string aud: %q", id.Audience)
	}
	e.p.ClientIDs = nil
	_, err := e.verify(t, e.iss.MintToken(testutil.TokenAudience("app-a")))
	assertKind(t, err, federation.ErrInvalidToken, "")
}
