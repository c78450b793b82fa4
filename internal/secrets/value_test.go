package secrets

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/iam"
)

// stagesByVersion returns DescribeSecret's VersionIdsToStages.
func (e *env) stagesByVersion(id string) map[string][]string {
	e.t.Helper()
	return okAs[describeSecretOutput](e, "DescribeSecret", map[string]any{"SecretId": id}).VersionIdsToStages
}

// allVersions pages through ListSecretVersionIds.
func (e *env) allVersions(id string, deprecated bool) []secretVersionsListEntry {
	e.t.Helper()
	var all []secretVersionsListEntry
	req := map[string]any{"SecretId": id, "IncludeDeprecated": deprecated}
	for {
		out := okAs[listSecretVersionIdsOutput](e, "ListSecretVersionIds", req)
		all = append(all, out.Versions...)
		if out.NextToken == nil {
			return all
		}
		req["NextToken"] = *out.NextToken
	}
}

func TestGetSecretValueSelectors(t *testing.T) {
	e := newEnv(t)
	v1, v2, v3 := token("1"), token("2"), token("3")
	e.ok("CreateSecret", map[string]any{"Name": "s", "SecretString": "one", "ClientRequestToken": v1})
	e.ok("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "two", "ClientRequestToken": v2})
	e.ok("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "three", "ClientRequestToken": v3})
	// v1 is now deprecated (no labels) but still readable by id.
	tests := []struct {
		name       string
		req        map[string]any
		wantValue  string
		wantStages []string
		code       string
	}{
		{"default is AWSCURRENT", map[string]any{}, "three", []string{"AWSCURRENT"}, ""},
		{"by stage", map[string]any{"VersionStage": "AWSPREVIOUS"}, "two", []string{"AWSPREVIOUS"}, ""},
		{"by id", map[string]any{"VersionId": v2}, "two", []string{"AWSPREVIOUS"}, ""},
		{"id and matching stage", map[string]any{"VersionId": v3, "VersionStage": "AWSCURRENT"}, "three", []string{"AWSCURRENT"}, ""},
		{"deprecated by id", map[string]any{"VersionId": v1}, "one", []string{}, ""},
		{"id and other stage", map[string]any{"VersionId": v2, "VersionStage": "AWSCURRENT"}, "", nil, codeInvalidRequest},
		{"unknown id", map[string]any{"VersionId": token("9")}, "", nil, codeResourceNotFound},
		{"unknown stage", map[string]any{"VersionStage": "AWSPENDING"}, "", nil, codeResourceNotFound},
		{"malformed id", map[string]any{"VersionId": "short"}, "", nil, codeInvalidParameter},
		{"empty stage", map[string]any{"VersionStage": ""}, "", nil, codeInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req["SecretId"] = "s"
			if tc.code != "" {
				e.fail("GetSecretValue", tc.req, tc.code)
				return
			}
			out := okAs[getSecretValueOutput](e, "GetSecretValue", tc.req)
			if deref(out.SecretString) != tc.wantValue || !slices.Equal(out.VersionStages, tc.wantStages) {
				t.Fatalf("got %q %v, want %q %v", deref(out.SecretString), out.VersionStages, tc.wantValue, tc.wantStages)
			}
		})
	}
}

func TestSecretBinary(t *testing.T) {
	e := newEnv(t)
	raw := []byte{0, 0xff, 'a', 0x80}
	e.ok("CreateSecret", map[string]any{"Name": "b", "SecretBinary": base64.StdEncoding.EncodeToString(raw)})
	out := e.ok("GetSecretValue", map[string]any{"SecretId": "b"})
	if out["SecretBinary"] != base64.StdEncoding.EncodeToString(raw) {
		t.Fatalf("SecretBinary = %v", out["SecretBinary"])
	}
	if _, ok := out["SecretString"]; ok {
		t.Fatalf("binary secret returned a SecretString: %v", out)
	}
	e.fail("PutSecretValue", map[string]any{"SecretId": "b", "SecretBinary": base64.StdEncoding.EncodeToString(make([]byte, 65537))}, codeInvalidParameter)
	e.ok("PutSecretValue", map[string]any{"SecretId": "b", "SecretBinary": base64.StdEncoding.EncodeToString(make([]byte, 65536))})
	e.ok("PutSecretValue", map[string]any{"SecretId": "b", "SecretString": strings.Repeat("é", 32768)}) // 65,536 bytes
	e.fail("PutSecretValue", map[string]any{"SecretId": "b", "SecretString": strings.Repeat("é", 32768) + "x"}, codeInvalidParameter)
}

func TestPutSecretValueStages(t *testing.T) {
	e := newEnv(t)
	v1, v2, v3, v4 := token("1"), token("2"), token("3"), token("4")
	e.ok("CreateSecret", map[string]any{"Name": "s", "SecretString": "1", "ClientRequestToken": v1})
	steps := []struct {
		name   string
		req    map[string]any
		want   map[string][]string
		stages []string // labels the response reports for the new version
	}{
		{"new version becomes current", map[string]any{"SecretString": "2", "ClientRequestToken": v2},
			map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}}, []string{"AWSCURRENT"}},
		{"pending leaves current alone", map[string]any{"SecretString": "3", "ClientRequestToken": v3, "VersionStages": []string{"AWSPENDING"}},
			map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}, v3: {"AWSPENDING"}}, []string{"AWSPENDING"}},
		{"current and a custom label move", map[string]any{"SecretString": "4", "ClientRequestToken": v4, "VersionStages": []string{"AWSCURRENT", "AWSPENDING", "blue"}},
			map[string][]string{v2: {"AWSPREVIOUS"}, v4: {"AWSCURRENT", "AWSPENDING", "blue"}}, []string{"AWSCURRENT", "AWSPENDING", "blue"}},
	}
	for _, st := range steps {
		st.req["SecretId"] = "s"
		out := okAs[putSecretValueOutput](e, "PutSecretValue", st.req)
		if !slices.Equal(out.VersionStages, st.stages) {
			t.Fatalf("%s: response stages %v, want %v", st.name, out.VersionStages, st.stages)
		}
		if got := e.stagesByVersion("s"); fmt.Sprint(got) != fmt.Sprint(st.want) {
			t.Fatalf("%s: stages %v, want %v", st.name, got, st.want)
		}
	}
	// Every version is still listed with IncludeDeprecated.
	vs := okAs[listSecretVersionIdsOutput](e, "ListSecretVersionIds", map[string]any{"SecretId": "s", "IncludeDeprecated": true})
	if len(vs.Versions) != 4 {
		t.Fatalf("%d versions, want 4", len(vs.Versions))
	}
	if vs := okAs[listSecretVersionIdsOutput](e, "ListSecretVersionIds", map[string]any{"SecretId": "s"}); len(vs.Versions) != 2 {
		t.Fatalf("%d labelled versions, want 2", len(vs.Versions))
	}
}

func TestPutSecretValueIdempotency(t *testing.T) {
	e := newEnv(t)
	e.create("s", "orig")
	tok := token("p")
	req := map[string]any{"SecretId": "s", "SecretString": "next", "ClientRequestToken": tok}
	first := e.ok("PutSecretValue", req)
	e.clock.Advance(time.Minute)
	again := e.ok("PutSecretValue", req)
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Fatalf("retry response %v differs from %v", again, first)
	}
	for _, bad := range []map[string]any{
		{"SecretId": "s", "SecretString": "different", "ClientRequestToken": tok},
		{"SecretId": "s", "SecretBinary": base64.StdEncoding.EncodeToString([]byte("next")), "ClientRequestToken": tok},
	} {
		e.fail("PutSecretValue", bad, codeResourceExists)
	}
	out := okAs[getSecretValueOutput](e, "GetSecretValue", map[string]any{"SecretId": "s", "VersionId": tok})
	if deref(out.SecretString) != "next" {
		t.Fatalf("version %s changed to %q", tok, deref(out.SecretString))
	}
	if vs := okAs[listSecretVersionIdsOutput](e, "ListSecretVersionIds", map[string]any{"SecretId": "s", "IncludeDeprecated": true}); len(vs.Versions) != 2 {
		t.Fatalf("%d versions after retries, want 2", len(vs.Versions))
	}
}

func TestPutSecretValueValidation(t *testing.T) {
	e := newEnv(t)
	e.create("s", "v")
	many := make([]string, 21)
	for i := range many {
		many[i] = fmt.Sprintf("l%d", i)
	}
	tests := []struct {
		name string
		req  map[string]any
		code string
	}{
		{"no secret id", map[string]any{"SecretString": "x"}, codeInvalidParameter},
		{"no value", map[string]any{"SecretId": "s"}, codeInvalidParameter},
		{"both values", map[string]any{"SecretId": "s", "SecretString": "x", "SecretBinary": "eA=="}, codeInvalidParameter},
		{"too many stages", map[string]any{"SecretId": "s", "SecretString": "x", "VersionStages": many}, codeInvalidParameter},
		{"duplicate stage", map[string]any{"SecretId": "s", "SecretString": "x", "VersionStages": []string{"a", "a"}}, codeInvalidParameter},
		{"empty stage", map[string]any{"SecretId": "s", "SecretString": "x", "VersionStages": []string{""}}, codeInvalidParameter},
		{"long stage", map[string]any{"SecretId": "s", "SecretString": "x", "VersionStages": []string{strings.Repeat("s", 257)}}, codeInvalidParameter},
		{"long token", map[string]any{"SecretId": "s", "SecretString": "x", "ClientRequestToken": strings.Repeat("t", 65)}, codeInvalidParameter},
		{"missing secret", map[string]any{"SecretId": "nope", "SecretString": "x"}, codeResourceNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.fail("PutSecretValue", tc.req, tc.code)
			if got := e.value("s"); got != "v" {
				t.Fatalf("value changed to %q", got)
			}
		})
	}
}

func TestStagingLabelQuota(t *testing.T) {
	e := newEnv(t)
	e.create("s", "v") // AWSCURRENT
	labels := make([]string, 19)
	for i := range labels {
		labels[i] = fmt.Sprintf("label-%02d", i)
	}
	// 19 custom labels + AWSCURRENT + AWSPREVIOUS would be 21.
	e.fail("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "w", "VersionStages": append([]string{"AWSCURRENT"}, labels...)}, codeLimitExceeded)
	e.ok("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "w", "VersionStages": append([]string{"AWSCURRENT"}, labels[:18]...)})
	if n := len(e.stagesByVersion("s")); n != 2 {
		t.Fatalf("%d labelled versions, want 2", n)
	}
}

func TestVersionPruning(t *testing.T) {
	e := newEnv(t)
	first := token("first")
	e.ok("CreateSecret", map[string]any{"Name": "s", "SecretString": "v0", "ClientRequestToken": first})
	old := token("old")
	e.ok("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "keep", "ClientRequestToken": old, "VersionStages": []string{"keeper"}})
	for i := range 99 {
		e.clock.Advance(time.Second)
		e.ok("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": fmt.Sprint(i)})
	}
	count := func() int { return len(e.allVersions("s", true)) }
	if n := count(); n != 101 {
		t.Fatalf("%d versions, want 101 (nothing is pruned within 24 hours)", n)
	}
	e.clock.Advance(25 * time.Hour)
	e.ok("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "latest"})
	if n := count(); n != 100 {
		t.Fatalf("%d versions after pruning, want 100", n)
	}
	// The oldest unlabelled version went; the labelled old one stayed.
	e.fail("GetSecretValue", map[string]any{"SecretId": "s", "VersionId": first}, codeResourceNotFound)
	if out := okAs[getSecretValueOutput](e, "GetSecretValue", map[string]any{"SecretId": "s", "VersionStage": "keeper"}); deref(out.SecretString) != "keep" {
		t.Fatalf("labelled version = %q", deref(out.SecretString))
	}
	if e.value("s") != "latest" {
		t.Fatal("AWSCURRENT is not the newest version")
	}
}

func TestVersionQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 500 versions")
	}
	e := newEnv(t)
	e.create("s", "v")
	for i := 1; i < maxVersions; i++ {
		e.ok("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": fmt.Sprint(i)})
	}
	e.fail("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "one too many"}, codeLimitExceeded)
	e.clock.Advance(24 * time.Hour)
	e.ok("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "after a day"})
	// Everything was older than a day, so pruning went back to 100.
	if n := len(e.allVersions("s", true)); n != retainVersions {
		t.Fatalf("%d versions after a day, want %d", n, retainVersions)
	}
}

func TestUpdateSecretVersionStage(t *testing.T) {
	v1, v2, v3 := token("1"), token("2"), token("3")
	setup := func(t *testing.T) *env {
		e := newEnv(t)
		e.ok("CreateSecret", map[string]any{"Name": "s", "SecretString": "1", "ClientRequestToken": v1})
		e.ok("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "2", "ClientRequestToken": v2})
		e.ok("PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "3", "ClientRequestToken": v3, "VersionStages": []string{"AWSPENDING"}})
		return e // v1 AWSPREVIOUS, v2 AWSCURRENT, v3 AWSPENDING
	}
	tests := []struct {
		name string
		req  map[string]any
		code string
		want map[string][]string
	}{
		{"roll back current", map[string]any{"VersionStage": "AWSCURRENT", "MoveToVersionId": v1, "RemoveFromVersionId": v2}, "",
			map[string][]string{v1: {"AWSCURRENT"}, v2: {"AWSPREVIOUS"}, v3: {"AWSPENDING"}}},
		{"promote pending", map[string]any{"VersionStage": "AWSCURRENT", "MoveToVersionId": v3, "RemoveFromVersionId": v2}, "",
			map[string][]string{v2: {"AWSPREVIOUS"}, v3: {"AWSCURRENT", "AWSPENDING"}}},
		{"remove a custom label", map[string]any{"VersionStage": "AWSPENDING", "RemoveFromVersionId": v3}, "",
			map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}}},
		{"add a new label", map[string]any{"VersionStage": "blue", "MoveToVersionId": v1}, "",
			map[string][]string{v1: {"AWSPREVIOUS", "blue"}, v2: {"AWSCURRENT"}, v3: {"AWSPENDING"}}},
		{"move to the holder is a no-op", map[string]any{"VersionStage": "AWSCURRENT", "MoveToVersionId": v2}, "",
			map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}, v3: {"AWSPENDING"}}},
		{"move without RemoveFromVersionId", map[string]any{"VersionStage": "AWSCURRENT", "MoveToVersionId": v1}, codeInvalidParameter, nil},
		{"remove AWSCURRENT without moving", map[string]any{"VersionStage": "AWSCURRENT", "RemoveFromVersionId": v2}, codeInvalidParameter, nil},
		{"remove from the wrong version", map[string]any{"VersionStage": "AWSPENDING", "RemoveFromVersionId": v1}, codeInvalidParameter, nil},
		{"move to a missing version", map[string]any{"VersionStage": "blue", "MoveToVersionId": token("9")}, codeInvalidParameter, nil},
		{"remove from a missing version", map[string]any{"VersionStage": "blue", "RemoveFromVersionId": token("9")}, codeInvalidParameter, nil},
		{"neither version", map[string]any{"VersionStage": "AWSPENDING"}, codeInvalidParameter, nil},
		{"no stage", map[string]any{"MoveToVersionId": v1}, codeInvalidParameter, nil},
		{"malformed version", map[string]any{"VersionStage": "x", "MoveToVersionId": "short"}, codeInvalidParameter, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			before := e.stagesByVersion("s")
			tc.req["SecretId"] = "s"
			if tc.code != "" {
				e.fail("UpdateSecretVersionStage", tc.req, tc.code)
				if after := e.stagesByVersion("s"); fmt.Sprint(after) != fmt.Sprint(before) {
					t.Fatalf("failed call changed stages from %v to %v", before, after)
				}
				return
			}
			out := e.ok("UpdateSecretVersionStage", tc.req)
			if out["Name"] != "s" {
				t.Fatalf("response %v", out)
			}
			if got := e.stagesByVersion("s"); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("stages %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBatchGetSecretValue(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.ok("CreateSecret", map[string]any{"Name": fmt.Sprintf("batch/%d", i), "SecretString": fmt.Sprintf("value-%d", i),
			"Tags": []map[string]string{{"Key": "group", "Value": "batch"}}})
	}
	e.create("other", "o")
	e.create("scheduled", "s")
	e.ok("DeleteSecret", map[string]any{"SecretId": "scheduled"})

	out := okAs[batchGetSecretValueOutput](e, "BatchGetSecretValue", map[string]any{"SecretIdList": []string{"batch/0", "other", "missing", "scheduled"}})
	if len(out.SecretValues) != 2 || deref(out.SecretValues[1].SecretString) != "o" {
		t.Fatalf("values = %+v", out.SecretValues)
	}
	codes := map[string]string{}
	for _, er := range out.Errors {
		codes[er.SecretId] = er.ErrorCode
	}
	if codes["missing"] != codeResourceNotFound || codes["scheduled"] != codeInvalidRequest || len(codes) != 2 {
		t.Fatalf("errors = %+v", out.Errors)
	}

	// Filters page through matching secrets.
	var got []string
	req := map[string]any{"Filters": []map[string]any{{"Key": "tag-value", "Values": []string{"batch"}}}, "MaxResults": 2}
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("pagination does not end")
		}
		out := okAs[batchGetSecretValueOutput](e, "BatchGetSecretValue", req)
		for _, v := range out.SecretValues {
			got = append(got, deref(v.SecretString))
		}
		if out.NextToken == nil {
			break
		}
		req["NextToken"] = *out.NextToken
	}
	if strings.Join(got, ",") != "value-0,value-1,value-2,value-3,value-4" {
		t.Fatalf("filtered batch = %v", got)
	}

	for name, req := range map[string]map[string]any{
		"neither":            {},
		"both":               {"SecretIdList": []string{"a"}, "Filters": []map[string]any{{"Key": "name", "Values": []string{"a"}}}},
		"max without filter": {"SecretIdList": []string{"a"}, "MaxResults": 2},
		"too many ids":       {"SecretIdList": make([]string, 21)},
		"bad max":            {"Filters": []map[string]any{{"Key": "name", "Values": []string{"a"}}}, "MaxResults": 21},
		"bad filter":         {"Filters": []map[string]any{{"Key": "colour", "Values": []string{"a"}}}},
	} {
		t.Run(name, func(t *testing.T) { e.fail("BatchGetSecretValue", req, codeInvalidParameter) })
	}
}

func TestBatchGetSecretValueAuthorizesEachSecret(t *testing.T) {
	var asked []string
	authz := authorizerFunc(func(_ context.Context, r iam.Request) iam.Decision {
		asked = append(asked, r.Action+" "+r.Resource)
		if r.Action == "secretsmanager:GetSecretValue" && strings.Contains(r.Resource, ":secret:private-") {
			return iam.Decision{Reason: "explicit deny", Policy: "p", Statement: "NoPrivate"}
		}
		return iam.Decision{Allowed: true, Reason: "allow"}
	})
	e := newEnv(t, withAuthorizer(authz))
	e.create("public", "pub")
	privateARN := e.create("private", "priv")
	asked = nil
	e.audit.reset()
	out := okAs[batchGetSecretValueOutput](e, "BatchGetSecretValue", map[string]any{"SecretIdList": []string{"public", "private"}})
	if len(out.SecretValues) != 1 || deref(out.SecretValues[0].SecretString) != "pub" {
		t.Fatalf("values = %+v", out.SecretValues)
	}
	if len(out.Errors) != 1 || out.Errors[0].ErrorCode != codeAccessDenied || !strings.Contains(out.Errors[0].Message, privateARN) {
		t.Fatalf("errors = %+v", out.Errors)
	}
	if len(asked) != 3 || asked[0] != "secretsmanager:BatchGetSecretValue *" {
		t.Fatalf("authorizer asked %v", asked)
	}
	evs := e.audit.all()
	if len(evs) != 3 {
		t.Fatalf("%d audit events, want 3", len(evs))
	}
	if evs[0].Action != "GetSecretValue" || !evs[0].Allowed || !evs[0].ReturnsSecret ||
		evs[1].Action != "GetSecretValue" || evs[1].Allowed || evs[1].ErrorCode != codeAccessDenied || evs[1].ReturnsSecret || evs[1].Statement != "NoPrivate" ||
		evs[2].Action != "BatchGetSecretValue" || !evs[2].ReturnsSecret {
		t.Fatalf("audit events = %+v %+v %+v", *evs[0], *evs[1], *evs[2])
	}
}
