package secrets

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// listAll pages through ListSecrets with req, returning names in order.
func (e *env) listAll(req map[string]any) []string {
	e.t.Helper()
	req = cloneMap(req)
	var names []string
	for page := 0; ; page++ {
		if page > 10_000 {
			e.t.Fatal("ListSecrets pagination does not end")
		}
		out := okAs[listSecretsOutput](e, "ListSecrets", req)
		for _, s := range out.SecretList {
			names = append(names, s.Name)
		}
		if out.NextToken == nil {
			return names
		}
		req["NextToken"] = *out.NextToken
	}
}

func cloneMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestListSecretsPaginationAndSorting(t *testing.T) {
	e := newEnv(t)
	const n = 57
	var created []string // creation order
	for i := range n {
		// Names not in creation order, some sharing prefixes.
		name := fmt.Sprintf("s%02d", (i*37)%n)
		if i%5 == 0 {
			name += "/child"
		}
		e.create(name, "v")
		created = append(created, name)
		e.clock.Advance(time.Second)
	}
	// Change some secrets so last-changed differs from creation order.
	changedOrder := slices.Clone(created)
	for _, i := range []int{3, 10, 0} {
		e.ok("UpdateSecret", map[string]any{"SecretId": created[i], "Description": "touched"})
		e.clock.Advance(time.Second)
		changedOrder = append(slices.DeleteFunc(changedOrder, func(s string) bool { return s == created[i] }), created[i])
	}
	byName := slices.Clone(created)
	sort.Strings(byName)
	reversed := func(l []string) []string { r := slices.Clone(l); slices.Reverse(r); return r }

	tests := []struct {
		name string
		req  map[string]any
		want []string
	}{
		{"default is created ascending", map[string]any{}, created},
		{"created descending", map[string]any{"SortOrder": "desc"}, reversed(created)},
		{"name ascending", map[string]any{"SortBy": "name", "SortOrder": "asc"}, byName},
		{"name descending", map[string]any{"SortBy": "name", "SortOrder": "desc"}, reversed(byName)},
		{"last changed", map[string]any{"SortBy": "last-changed-date"}, changedOrder},
		{"last changed descending", map[string]any{"SortBy": "last-changed-date", "SortOrder": "desc"}, reversed(changedOrder)},
	}
	for _, tc := range tests {
		for _, max := range []int{1, 7, 100} {
			t.Run(fmt.Sprintf("%s/max%d", tc.name, max), func(t *testing.T) {
				req := cloneMap(tc.req)
				req["MaxResults"] = max
				got := e.listAll(req)
				if !slices.Equal(got, tc.want) {
					t.Fatalf("got %v\nwant %v", got, tc.want)
				}
			})
		}
	}
	// last-accessed: reading a secret today moves it after the never-read.
	e.value(created[5])
	got := e.listAll(map[string]any{"SortBy": "last-accessed-date"})
	if len(got) != n || got[n-1] != created[5] {
		t.Fatalf("last-accessed order ends with %q, want %q", got[len(got)-1], created[5])
	}
}

func TestListSecretsSeesNewSecretsDuringWalk(t *testing.T) {
	e := newEnv(t)
	for i := range 10 {
		e.create(fmt.Sprintf("a%d", i), "v")
	}
	out := okAs[listSecretsOutput](e, "ListSecrets", map[string]any{"MaxResults": 4})
	e.clock.Advance(time.Second)
	e.create("late", "v")
	if _, err := e.call("DeleteSecret", map[string]any{"SecretId": "a9", "ForceDeleteWithoutRecovery": true}); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, s := range out.SecretList {
		names = append(names, s.Name)
	}
	names = append(names, e.listAll(map[string]any{"MaxResults": 4, "NextToken": *out.NextToken})...)
	want := []string{"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "late"}
	if !slices.Equal(names, want) {
		t.Fatalf("walk = %v, want %v", names, want)
	}
}

func TestListSecretsTokens(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.ok("CreateSecret", map[string]any{"Name": fmt.Sprintf("t%d", i), "SecretString": "v", "Description": "tok"})
	}
	out := okAs[listSecretsOutput](e, "ListSecrets", map[string]any{"MaxResults": 2})
	if out.NextToken == nil {
		t.Fatal("no NextToken")
	}
	tok := *out.NextToken
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatalf("token is not base64url: %v", err)
	}
	if strings.Contains(string(raw), "t1") {
		t.Fatalf("token exposes the cursor in clear: %q", raw)
	}
	flip := func(i int) string {
		b := slices.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name string
		req  map[string]any
	}{
		{"garbage", map[string]any{"NextToken": "not a token"}},
		{"empty", map[string]any{"NextToken": ""}},
		{"flipped nonce bit", map[string]any{"NextToken": flip(0)}},
		{"flipped ciphertext bit", map[string]any{"NextToken": flip(len(raw) / 2)}},
		{"flipped tag bit", map[string]any{"NextToken": flip(len(raw) - 1)}},
		{"truncated", map[string]any{"NextToken": tok[:len(tok)-4]}},
		{"other sort order", map[string]any{"NextToken": tok, "SortOrder": "desc"}},
		{"other filters", map[string]any{"NextToken": tok, "Filters": []map[string]any{{"Key": "name", "Values": []string{"t"}}}}},
		{"other planned deletion", map[string]any{"NextToken": tok, "IncludePlannedDeletion": true}},
		{"too long", map[string]any{"NextToken": strings.Repeat("A", 4097)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { e.fail("ListSecrets", tc.req, codeInvalidNextToken) })
	}
	// Another operation's token is refused too.
	vs := okAs[listSecretVersionIdsOutput](e, "ListSecretVersionIds", map[string]any{"SecretId": "t0", "MaxResults": 1})
	if vs.NextToken != nil {
		t.Fatalf("one version but a NextToken")
	}
	e.fail("ListSecretVersionIds", map[string]any{"SecretId": "t0", "NextToken": tok}, codeInvalidNextToken)
	e.fail("BatchGetSecretValue", map[string]any{"Filters": []map[string]any{{"Key": "all", "Values": []string{"tok"}}}, "NextToken": tok}, codeInvalidNextToken)
	// The genuine token still works, and on a new Service over the same
	// store (another replica) too.
	e.ok("ListSecrets", map[string]any{"NextToken": tok, "MaxResults": 2})
	other := newEnvOn(t, e.store)
	if got := other.listAll(map[string]any{"NextToken": tok, "MaxResults": 2}); !slices.Equal(got, []string{"t2", "t3", "t4"}) {
		t.Fatalf("another replica continued with %v", got)
	}
}

func TestListSecretsFilters(t *testing.T) {
	e := newEnv(t)
	secrets := []struct {
		name, desc string
		tags       map[string]string
	}{
		{"prod/db/main", "Primary database credentials", map[string]string{"env": "prod", "team": "payments"}},
		{"prod/api-key", "Stripe key", map[string]string{"env": "prod"}},
		{"dev/db/main", "", map[string]string{"env": "dev", "owner": "alice"}},
		{"DevOps/token", "CI token for deploys", nil},
	}
	for _, s := range secrets {
		req := map[string]any{"Name": s.name, "SecretString": "v"}
		if s.desc != "" {
			req["Description"] = s.desc
		}
		var tags []map[string]string
		for k, v := range s.tags {
			tags = append(tags, map[string]string{"Key": k, "Value": v})
		}
		if tags != nil {
			req["Tags"] = tags
		}
		e.ok("CreateSecret", req)
	}
	f := func(kv ...string) map[string]any {
		var fs []map[string]any
		for i := 0; i < len(kv); i += 2 {
			fs = append(fs, map[string]any{"Key": kv[i], "Values": strings.Split(kv[i+1], "|")})
		}
		return map[string]any{"Filters": fs, "SortBy": "name"}
	}
	tests := []struct {
		name string
		req  map[string]any
		want string
	}{
		{"name prefix", f("name", "prod/"), "prod/api-key,prod/db/main"},
		{"name is case-sensitive", f("name", "devops"), ""},
		{"name values are OR-ed", f("name", "dev/|DevOps"), "DevOps/token,dev/db/main"},
		{"negated name", f("name", "!prod"), "DevOps/token,dev/db/main"},
		{"description prefix ignores case", f("description", "primary"), "prod/db/main"},
		{"description is a prefix match", f("description", "database"), ""},
		{"negated description includes secrets without one", f("description", "!stripe"), "DevOps/token,dev/db/main,prod/db/main"},
		{"tag key", f("tag-key", "own"), "dev/db/main"},
		{"negated tag key", f("tag-key", "!team"), "DevOps/token,dev/db/main,prod/api-key"},
		{"tag value", f("tag-value", "prod"), "prod/api-key,prod/db/main"},
		{"filters are AND-ed", f("tag-value", "prod", "name", "prod/db"), "prod/db/main"},
		{"primary region", f("primary-region", "us-east"), "DevOps/token,dev/db/main,prod/api-key,prod/db/main"},
		{"other region", f("primary-region", "eu-"), ""},
		{"owning service never matches", f("owning-service", "rds"), ""},
		{"negated owning service always matches", f("owning-service", "!rds"), "DevOps/token,dev/db/main,prod/api-key,prod/db/main"},
		{"all matches words in any attribute", f("all", "stripe"), "prod/api-key"},
		{"all ignores case and splits words", f("all", "ALICE"), "dev/db/main"},
		{"all splits camel case", f("all", "ops"), "DevOps/token"},
		{"all matches word prefixes", f("all", "cred"), "prod/db/main"},
		{"all: any word", f("all", "deploys stripe"), "DevOps/token,prod/api-key"},
		{"negated all", f("all", "!db"), "DevOps/token,prod/api-key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(e.listAll(tc.req), ","); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	bad := []struct {
		name string
		req  map[string]any
	}{
		{"unknown key", f("colour", "red")},
		{"bad characters", f("name", "a*b")},
		{"no values", map[string]any{"Filters": []map[string]any{{"Key": "name", "Values": []string{}}}}},
		{"too many values", f("name", strings.Repeat("a|", 10)+"a")},
		{"too many filters", f("name", "a", "name", "a", "name", "a", "name", "a", "name", "a", "name", "a", "name", "a", "name", "a", "name", "a", "name", "a", "name", "a")},
		{"long value", f("name", strings.Repeat("a", 513))},
		{"bad sort", map[string]any{"SortBy": "size"}},
		{"bad order", map[string]any{"SortOrder": "up"}},
		{"max results 0", map[string]any{"MaxResults": 0}},
		{"max results 101", map[string]any{"MaxResults": 101}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) { e.fail("ListSecrets", tc.req, codeInvalidParameter) })
	}
}

func TestListSecretsScanBudget(t *testing.T) {
	e := newEnv(t)
	for i := range scanBudget + 50 {
		e.create(fmt.Sprintf("noise-%04d", i), "v")
	}
	e.create("zz-needle", "v")
	req := map[string]any{"Filters": []map[string]any{{"Key": "name", "Values": []string{"zz-"}}}}
	first := okAs[listSecretsOutput](e, "ListSecrets", req)
	if len(first.SecretList) != 0 || first.NextToken == nil {
		t.Fatalf("first page = %d secrets, token %v; want an empty page with a token", len(first.SecretList), first.NextToken)
	}
	if got := e.listAll(req); !slices.Equal(got, []string{"zz-needle"}) {
		t.Fatalf("walk = %v", got)
	}
}

func TestListSecretVersionIdsPagination(t *testing.T) {
	e := newEnv(t)
	e.ok("CreateSecret", map[string]any{"Name": "s", "SecretString": "0", "ClientRequestToken": token("v00")})
	for i := 1; i < 12; i++ {
		if i%4 != 0 {
			e.clock.Advance(time.Second) // some versions share a creation time
		}
		e.ok("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": fmt.Sprint(i), "ClientRequestToken": token(fmt.Sprintf("v%02d", i))})
	}
	for _, max := range []int{1, 3, 5, 100} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			var ids []string
			req := map[string]any{"SecretId": "s", "IncludeDeprecated": true, "MaxResults": max}
			for {
				out := okAs[listSecretVersionIdsOutput](e, "ListSecretVersionIds", req)
				if len(out.Versions) > max {
					t.Fatalf("page of %d > MaxResults %d", len(out.Versions), max)
				}
				for _, v := range out.Versions {
					ids = append(ids, v.VersionId[:3])
				}
				if out.NextToken == nil {
					break
				}
				req["NextToken"] = *out.NextToken
			}
			want := []string{"v11", "v10", "v09", "v08", "v07", "v06", "v05", "v04", "v03", "v02", "v01", "v00"}
			if !slices.Equal(ids, want) {
				t.Fatalf("versions %v, want newest first %v", ids, want)
			}
		})
	}
	labelled := okAs[listSecretVersionIdsOutput](e, "ListSecretVersionIds", map[string]any{"SecretId": "s"})
	if len(labelled.Versions) != 2 || labelled.Versions[0].VersionStages[0] != "AWSCURRENT" {
		t.Fatalf("labelled versions = %+v", labelled.Versions)
	}
	out := okAs[listSecretVersionIdsOutput](e, "ListSecretVersionIds", map[string]any{"SecretId": "s", "MaxResults": 1})
	e.fail("ListSecretVersionIds", map[string]any{"SecretId": "s", "MaxResults": 1, "IncludeDeprecated": true, "NextToken": *out.NextToken}, codeInvalidNextToken)
	e.create("t", "v")
	e.fail("ListSecretVersionIds", map[string]any{"SecretId": "t", "MaxResults": 1, "NextToken": *out.NextToken}, codeInvalidNextToken)
	e.fail("ListSecretVersionIds", map[string]any{"SecretId": "s", "MaxResults": 101}, codeInvalidParameter)
	e.fail("ListSecretVersionIds", map[string]any{"SecretId": "nope"}, codeResourceNotFound)
}
