package iam

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/authn"
)

// decisionFile is the layout of testdata/decisions.json.
type decisionFile struct {
	Principals  map[string]*authn.Principal `json:"principals"`
	Policies    map[string]policySpec       `json:"policies"`
	Suites      []decisionSuite             `json:"suites"`
	TrustSuites []decisionSuite             `json:"trust_suites"`
}

type policySpec struct {
	Kind string          `json:"kind"`
	File string          `json:"file"`
	Doc  json.RawMessage `json:"doc"`
}

// decisionSuite holds defaults for its cases; a case overrides any of them.
type decisionSuite struct {
	Name           string                     `json:"name"`
	Principal      string                     `json:"principal"`
	Identity       *[]string                  `json:"identity"`
	ResourcePolicy *string                    `json:"resource_policy"`
	Session        *[]string                  `json:"session"`
	Boundary       *string                    `json:"boundary"`
	Trust          string                     `json:"trust"`
	Who            *PrincipalRef              `json:"who"`
	Action         string                     `json:"action"`
	Resource       string                     `json:"resource"`
	ResourcePrefix string                     `json:"resource_prefix"`
	Context        map[string]json.RawMessage `json:"context"`
	Cases          []decisionCase             `json:"cases"`
}

type decisionCase struct {
	Principal      string                     `json:"principal"`
	Identity       *[]string                  `json:"identity"`
	ResourcePolicy *string                    `json:"resource_policy"`
	Session        *[]string                  `json:"session"`
	Boundary       *string                    `json:"boundary"`
	Who            *PrincipalRef              `json:"who"`
	Action         string                     `json:"action"`
	Resource       string                     `json:"resource"`
	Context        map[string]json.RawMessage `json:"context"`
	Want           string                     `json:"want"`
	By             string                     `json:"by"`
	Note           string                     `json:"note"`
}

// loadDecisions reads the decision table and compiles its policies.
func loadDecisions(t testing.TB) (*decisionFile, map[string]*Policy) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "decisions.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var df struct {
		About string `json:"about"`
		decisionFile
	}
	if err := dec.Decode(&df); err != nil {
		t.Fatalf("decoding decisions.json: %v", err)
	}
	policies := map[string]*Policy{}
	for name, spec := range df.Policies {
		doc := string(spec.Doc)
		if spec.File != "" {
			b, err := os.ReadFile(filepath.Join("testdata", spec.File))
			if err != nil {
				t.Fatal(err)
			}
			doc = string(b)
		}
		p, err := ParsePolicy(doc, kindByName(t, spec.Kind))
		if err != nil {
			t.Fatalf("policy %q: %v", name, err)
		}
		policies[name] = p
	}
	return &df.decisionFile, policies
}

func kindByName(t testing.TB, s string) PolicyKind {
	t.Helper()
	switch s {
	case "identity":
		return IdentityPolicy
	case "resource":
		return ResourcePolicy
	case "trust":
		return TrustPolicy
	}
	t.Fatalf("unknown policy kind %q", s)
	return 0
}

// mergeContext overlays a case's context on its suite's: null removes a
// key, a string is one value, a list is the values (possibly none).
func mergeContext(t *testing.T, layers ...map[string]json.RawMessage) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, layer := range layers {
		for k, v := range layer {
			switch {
			case string(v) == "null":
				delete(out, k)
			case strings.HasPrefix(string(v), "["):
				list := []string{}
				if err := json.Unmarshal(v, &list); err != nil {
					t.Fatalf("context %q: %v", k, err)
				}
				out[k] = list
			default:
				var s string
				if err := json.Unmarshal(v, &s); err != nil {
					t.Fatalf("context %q: %v", k, err)
				}
				out[k] = []string{s}
			}
		}
	}
	return out
}

func pick[T any](override, def *T) *T {
	if override != nil {
		return override
	}
	return def
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func named(t *testing.T, policies map[string]*Policy, name string) NamedPolicy {
	t.Helper()
	p, ok := policies[name]
	if !ok {
		t.Fatalf("unknown policy %q", name)
	}
	return NamedPolicy{Name: name, Policy: p}
}

// decisionString renders a decision in the table's terms.
func decisionString(d Decision) string {
	s := d.Reason
	if d.Policy != "" || d.Statement != "" {
		s += " by " + d.Policy + "#" + d.Statement
	}
	if d.Allowed != (d.Reason == reasonAllow) {
		s += fmt.Sprintf(" (Allowed=%v contradicts the reason)", d.Allowed)
	}
	return s
}

func wantString(c decisionCase) string {
	if c.By == "" {
		return c.Want
	}
	return c.Want + " by " + c.By
}

func TestDecisionTable(t *testing.T) {
	df, policies := loadDecisions(t)
	total := 0
	for _, s := range df.Suites {
		t.Run(s.Name, func(t *testing.T) {
			for i, c := range s.Cases {
				total++
				principal := or(c.Principal, s.Principal)
				resource := or(c.Resource, s.Resource)
				if resource != "*" && !strings.HasPrefix(resource, "arn:") && !strings.HasPrefix(resource, "ARN:") {
					resource = s.ResourcePrefix + resource
				}
				action := or(c.Action, s.Action)
				name := fmt.Sprintf("%03d %s %s %s", i, principal, action, resource)
				t.Run(name, func(t *testing.T) {
					p, ok := df.Principals[principal]
					if !ok {
						t.Fatalf("unknown principal %q", principal)
					}
					set := &PolicySet{}
					if ids := pick(c.Identity, s.Identity); ids != nil {
						for _, n := range *ids {
							set.Identity = append(set.Identity, named(t, policies, n))
						}
					}
					if rp := pick(c.ResourcePolicy, s.ResourcePolicy); rp != nil && *rp != "" {
						np := named(t, policies, *rp)
						set.Resource = &np
					}
					if ss := pick(c.Session, s.Session); ss != nil {
						for _, n := range *ss {
							set.Session = append(set.Session, named(t, policies, n))
						}
					}
					if b := pick(c.Boundary, s.Boundary); b != nil && *b != "" {
						np := named(t, policies, *b)
						set.Boundary = &np
					}
					req := &Request{Principal: p, Action: action, Resource: resource, Context: mergeContext(t, s.Context, c.Context)}
					got := Evaluate(req, set)
					if decisionString(got) != wantString(c) {
						t.Errorf("got %s, want %s (%s)", decisionString(got), wantString(c), c.Note)
					}
					// Evaluation is a pure function of its inputs.
					if again := Evaluate(req, set); again != got {
						t.Errorf("second evaluation gave %+v, first %+v", again, got)
					}
				})
			}
		})
	}
	for _, s := range df.TrustSuites {
		t.Run(s.Name, func(t *testing.T) {
			for i, c := range s.Cases {
				total++
				action := or(c.Action, s.Action)
				principal := or(c.Principal, s.Principal)
				t.Run(fmt.Sprintf("%03d %s %s", i, principal, action), func(t *testing.T) {
					var p *authn.Principal
					if principal != "" {
						p = df.Principals[principal]
						if p == nil {
							t.Fatalf("unknown principal %q", principal)
						}
					}
					who := pick(c.Who, s.Who)
					if who == nil {
						ref := AWSPrincipal(p)
						who = &ref
					}
					req := &Request{Principal: p, Action: action, Context: mergeContext(t, s.Context, c.Context)}
					got := policies[s.Trust].AllowsPrincipal(req, *who)
					if decisionString(got) != wantString(c) {
						t.Errorf("got %s, want %s (%s)", decisionString(got), wantString(c), c.Note)
					}
				})
			}
		})
	}
	if total < 300 {
		t.Errorf("the decision table has %d cases; keep at least 300", total)
	}
}
