package secrets

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/store/bolt"
)

// testRotator is a well-formed RotationLambdaARN.
const testRotator = "arn:aws:lambda:us-east-1:123456789012:function:sigil-random"

// rotate calls RotateSecret with AutomaticallyAfterDays 30 and the given
// token, rotating immediately.
func (e *env) rotate(name, tok string) map[string]any {
	e.t.Helper()
	return e.ok("RotateSecret", map[string]any{"SecretId": name, "ClientRequestToken": tok,
		"RotationLambdaARN": testRotator, "RotationRules": map[string]any{"AutomaticallyAfterDays": 30}})
}

// describe returns DescribeSecret as a client decodes it.
func (e *env) describe(name string) map[string]any {
	e.t.Helper()
	return e.ok("DescribeSecret", map[string]any{"SecretId": name})
}

// stagesOf returns VersionIdsToStages of a DescribeSecret response as
// version -> labels.
func stagesOf(d map[string]any) map[string][]string {
	out := map[string][]string{}
	m, _ := d["VersionIdsToStages"].(map[string]any)
	for id, l := range m {
		for _, st := range l.([]any) {
			out[id] = append(out[id], st.(string))
		}
	}
	return out
}

// epochAt converts a wire timestamp (seconds, as JSON decodes it) to time.
func epochAt(t *testing.T, v any) time.Time {
	t.Helper()
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("timestamp %v (%T) is not a number", v, v)
	}
	return time.UnixMilli(int64(f*1000 + 0.5)).UTC()
}

// rotationKeys lists the schedule index.
func rotationKeys(t *testing.T, st store.Store) []string {
	t.Helper()
	es, _, err := st.List(context.Background(), prefixRotation, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, len(es))
	for i, e := range es {
		keys[i] = e.Key
	}
	return keys
}

func TestRotateSecretValidation(t *testing.T) {
	days := func(n any) map[string]any { return map[string]any{"AutomaticallyAfterDays": n} }
	expr := func(s string) map[string]any { return map[string]any{"ScheduleExpression": s} }
	tests := []struct {
		name string
		req  map[string]any
		code string
		msg  string // substring of the message
	}{
		{"no SecretId", map[string]any{"RotationLambdaARN": testRotator, "RotationRules": days(30)}, codeInvalidParameter, "SecretId"},
		{"short token", map[string]any{"SecretId": "s", "ClientRequestToken": "short", "RotationLambdaARN": testRotator, "RotationRules": days(30)}, codeInvalidParameter, "ClientRequestToken"},
		{"not a lambda ARN", map[string]any{"SecretId": "s", "RotationLambdaARN": "arn:aws:iam::123456789012:role/x", "RotationRules": days(30)}, codeInvalidParameter, "RotationLambdaARN"},
		{"lambda ARN with a space", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator + " x", "RotationRules": days(30)}, codeInvalidParameter, "RotationLambdaARN"},
		{"both schedules", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotationRules": map[string]any{"AutomaticallyAfterDays": 3, "ScheduleExpression": "rate(3 days)"}}, codeInvalidParameter, "You cannot specify both rotation frequency and schedule expression together."},
		{"zero days", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotationRules": days(0)}, codeInvalidParameter, "between 1 and 1000"},
		{"too many days", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotationRules": days(1001)}, codeInvalidParameter, "between 1 and 1000"},
		{"rate too often", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotationRules": expr("rate(3 hours)")}, codeInvalidParameter, "four hours"},
		{"cron minutes", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotationRules": expr("cron(30 4 * * ? *)")}, codeInvalidParameter, "Minutes"},
		{"empty expression", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotationRules": expr("")}, codeInvalidParameter, "ScheduleExpression"},
		{"window too long", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotationRules": map[string]any{"ScheduleExpression": "rate(4 hours)", "Duration": "5h"}}, codeInvalidParameter, "Duration"},
		{"bad window", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotationRules": map[string]any{"AutomaticallyAfterDays": 2, "Duration": "25h"}}, codeInvalidParameter, "Duration"},
		{"window alone", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotationRules": map[string]any{"Duration": "2h"}}, codeInvalidParameter, "AutomaticallyAfterDays or ScheduleExpression"},
		{"days as a string", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotationRules": days("30")}, "SerializationException", ""},
		{"missing secret", map[string]any{"SecretId": "missing", "RotationLambdaARN": testRotator, "RotationRules": days(30)}, codeResourceNotFound, ""},
		{"no rotator yet", map[string]any{"SecretId": "s", "RotationRules": days(30)}, codeInvalidRequest, "RotationLambdaARN"},
		{"no rules yet", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator}, codeInvalidRequest, "RotationRules"},
		{"scheduled for deletion", map[string]any{"SecretId": "gone", "RotationLambdaARN": testRotator, "RotationRules": days(30)}, codeInvalidRequest, "marked for deletion"},
		{"dynamic secret", map[string]any{"SecretId": "dyn", "RotationLambdaARN": testRotator, "RotationRules": days(30)}, codeInvalidRequest, "dynamic"},
		{"unknown rotator", map[string]any{"SecretId": "s", "RotationLambdaARN": "arn:aws:lambda:us-east-1:123456789012:function:nobody", "RotationRules": days(30)}, codeInvalidParameter, "function:nobody"},
	}
	kicks := atomic.Int32{}
	e := newEnv(t, func(c *Config) {
		c.OnRotate = func() { kicks.Add(1) }
		c.Rotators = func(_ context.Context, arn string) error {
			if strings.HasSuffix(arn, ":function:nobody") {
				return fmt.Errorf("rotator %q: %w", arn, ErrUnknownRotator)
			}
			return nil
		}
	})
	e.create("s", "v")
	e.create("gone", "v")
	e.ok("DeleteSecret", map[string]any{"SecretId": "gone"})
	if _, _, err := e.svc.PutDynamic(context.Background(), DynamicSecret{Name: "dyn"}); err != nil {
		t.Fatalf("PutDynamic: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := storeState(t, e)
			ae := e.fail("RotateSecret", tc.req, tc.code)
			if !strings.Contains(ae.Message, tc.msg) {
				t.Fatalf("message %q does not contain %q", ae.Message, tc.msg)
			}
			if after := storeState(t, e); after != before {
				t.Fatal("a refused RotateSecret changed the store")
			}
		})
	}
	if n := kicks.Load(); n != 0 {
		t.Fatalf("OnRotate called %d times for refused calls", n)
	}
	if _, ok := e.describe("s")["RotationEnabled"]; ok {
		t.Fatal("refused calls left rotation state")
	}
}

func TestRotatorCheckFailure(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Rotators = func(context.Context, string) error { return errors.New("registry unreadable") }
	})
	e.create("s", "v")
	_, err := e.call("RotateSecret", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotationRules": map[string]any{"AutomaticallyAfterDays": 30}})
	if err == nil || !strings.Contains(err.Error(), "registry unreadable") {
		t.Fatalf("RotateSecret = %v, want the internal failure", err)
	}
	if _, ok := err.(interface{ Unwrap() error }); !ok {
		t.Fatalf("internal failure %T is not wrapped", err)
	}
	if len(rotationKeys(t, e.store)) != 0 {
		t.Fatal("a failed check scheduled a rotation")
	}
}

func TestRotateSecretImmediately(t *testing.T) {
	kicks := atomic.Int32{}
	e := newEnv(t, func(c *Config) { c.OnRotate = func() { kicks.Add(1) } })
	arn := e.create("app/db", "v1")
	now := e.clock.Now()
	out := e.rotate("app/db", token("rot1"))
	if out["ARN"] != arn || out["Name"] != "app/db" || out["VersionId"] != token("rot1") {
		t.Fatalf("RotateSecret = %v", out)
	}
	if kicks.Load() != 1 {
		t.Fatalf("OnRotate called %d times, want 1", kicks.Load())
	}
	d := e.describe("app/db")
	rules, _ := d["RotationRules"].(map[string]any)
	if d["RotationEnabled"] != true || d["RotationLambdaARN"] != testRotator || rules["AutomaticallyAfterDays"] != float64(30) || len(rules) != 1 {
		t.Fatalf("DescribeSecret = %v", d)
	}
	if next := epochAt(t, d["NextRotationDate"]); !next.Equal(now.Truncate(time.Millisecond)) {
		t.Fatalf("NextRotationDate = %s, want now (%s)", next, now)
	}
	if _, ok := d["LastRotatedDate"]; ok {
		t.Fatal("LastRotatedDate before any rotation")
	}
	if _, ok := d["SigilRotationStatus"]; ok {
		t.Fatal("SigilRotationStatus without a failure")
	}
	list := e.ok("ListSecrets", map[string]any{})["SecretList"].([]any)[0].(map[string]any)
	if list["RotationEnabled"] != true || list["RotationLambdaARN"] != testRotator || list["NextRotationDate"] != d["NextRotationDate"] {
		t.Fatalf("ListSecrets entry = %v", list)
	}
	due, err := e.svc.DueRotations(context.Background(), now, 10)
	if err != nil || len(due) != 1 || due[0].Name != "app/db" || due[0].ARN != arn || due[0].Token != token("rot1") ||
		due[0].Rotator != testRotator || !due[0].Due.Equal(now) || due[0].Attempts != 0 {
		t.Fatalf("DueRotations = %+v, %v", due, err)
	}
	// The same call again (an SDK retry) changes nothing and is accepted.
	before := storeState(t, e)
	e.rotate("app/db", token("rot1"))
	if storeState(t, e) != before {
		t.Fatal("a repeated RotateSecret changed the store")
	}
	// Another token while the rotation is pending is AWS's error.
	ae := e.fail("RotateSecret", map[string]any{"SecretId": "app/db", "ClientRequestToken": token("rot2")}, codeInvalidRequest)
	if ae.Message != "A previous rotation isn't complete. That rotation will be continued." {
		t.Fatalf("message %q", ae.Message)
	}
	// Audit: RotateSecret is an ordinary audited write.
	evs := e.audit.all()
	last := evs[len(evs)-2] // before the refused call's own event
	if last.Action != "RotateSecret" || last.ReadOnly || !last.Allowed || last.Resources[0] != arn {
		t.Fatalf("audit event %+v", last)
	}
	if refused := evs[len(evs)-1]; refused.Action != "RotateSecret" || refused.ErrorCode != codeInvalidRequest {
		t.Fatalf("audit event of the refused call %+v", refused)
	}
}

func TestRotateSecretAtNextWindow(t *testing.T) {
	kicks := atomic.Int32{}
	e := newEnv(t, func(c *Config) { c.OnRotate = func() { kicks.Add(1) } })
	e.create("s", "v")
	// 2025-03-14 15:09 UTC; the next 02:00-06:00 window opens tomorrow.
	out := e.ok("RotateSecret", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotateImmediately": false,
		"RotationRules": map[string]any{"ScheduleExpression": "cron(0 2 * * ? *)", "Duration": "4h"}})
	if _, ok := out["VersionId"]; ok || kicks.Load() != 0 {
		t.Fatalf("RotateSecret without rotating = %v, %d kicks", out, kicks.Load())
	}
	d := e.describe("s")
	next := epochAt(t, d["NextRotationDate"])
	start := time.Date(2025, 3, 15, 2, 0, 0, 0, time.UTC)
	if next.Before(start) || !next.Before(start.Add(4*time.Hour)) {
		t.Fatalf("NextRotationDate = %s, want in [%s, +4h)", next, start)
	}
	rules := d["RotationRules"].(map[string]any)
	if rules["ScheduleExpression"] != "cron(0 2 * * ? *)" || rules["Duration"] != "4h" {
		t.Fatalf("RotationRules = %v", rules)
	}
	if due, _ := e.svc.DueRotations(context.Background(), e.clock.Now(), 0); len(due) != 0 {
		t.Fatalf("due before its window: %+v", due)
	}
	if due, _ := e.svc.DueRotations(context.Background(), next, 0); len(due) != 1 || due[0].Token != "" {
		t.Fatalf("due in its window: %+v", due)
	}
	// rate(N days) is reported as AutomaticallyAfterDays too, as AWS does.
	e.ok("RotateSecret", map[string]any{"SecretId": "s", "RotateImmediately": false, "RotationRules": map[string]any{"ScheduleExpression": "rate(10 days)"}})
	rules = e.describe("s")["RotationRules"].(map[string]any)
	if rules["ScheduleExpression"] != "rate(10 days)" || rules["AutomaticallyAfterDays"] != float64(10) {
		t.Fatalf("RotationRules = %v", rules)
	}
}

func TestFullRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create("app/db", "v1")
	first := e.describe("app/db")
	var v1 string
	for id := range stagesOf(first) {
		v1 = id
	}
	tok := token("rot1")
	e.rotate("app/db", tok)
	now := e.clock.Now()

	claim, err := e.svc.ClaimRotation(ctx, "app/db", "runner-a", now, now.Add(time.Minute))
	if err != nil || claim.Token != tok || claim.Rotator != testRotator {
		t.Fatalf("ClaimRotation = %+v, %v", claim, err)
	}
	if due, _ := e.svc.DueRotations(ctx, now, 0); len(due) != 0 {
		t.Fatalf("a claimed rotation is still listed as due: %+v", due)
	}
	cur, err := e.svc.RotationValue(ctx, "app/db", "", "AWSCURRENT")
	if err != nil || cur.VersionID != v1 || cur.String == nil || *cur.String != "v1" || !slices.Equal(cur.Stages, []string{"AWSCURRENT"}) {
		t.Fatalf("RotationValue AWSCURRENT = %+v, %v", cur, err)
	}
	if _, err := e.svc.RotationValue(ctx, "app/db", tok, "AWSPENDING"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RotationValue of the pending version before createSecret = %v, want ErrNotFound", err)
	}
	e.clock.Advance(time.Second)
	v2 := "v2-new-password"
	if err := e.svc.PutPendingValue(ctx, "app/db", tok, &v2, nil); err != nil {
		t.Fatalf("PutPendingValue: %v", err)
	}
	before := storeState(t, e)
	if err := e.svc.PutPendingValue(ctx, "app/db", tok, &v2, nil); err != nil || storeState(t, e) != before {
		t.Fatalf("repeated PutPendingValue = %v (store changed: %v)", err, storeState(t, e) != before)
	}
	other := "something else"
	if err := e.svc.PutPendingValue(ctx, "app/db", tok, &other, nil); err == nil || strings.Contains(err.Error(), other) {
		t.Fatalf("PutPendingValue with another value = %v", err)
	}
	if err := e.svc.PutPendingValue(ctx, "app/db", "short", &v2, nil); err == nil {
		t.Fatal("PutPendingValue accepted a short token")
	}
	pending, err := e.svc.RotationValue(ctx, "app/db", tok, "AWSPENDING")
	if err != nil || *pending.String != v2 || !slices.Equal(pending.Stages, []string{"AWSPENDING"}) {
		t.Fatalf("RotationValue AWSPENDING = %+v, %v", pending, err)
	}
	if s := fmt.Sprintf("%v %+v %#v %s", pending, pending, pending, pending); strings.Contains(s, v2) {
		t.Fatalf("Value prints its secret: %s", s)
	}
	if e.value("app/db") != "v1" {
		t.Fatal("AWSCURRENT moved before finishSecret")
	}

	e.clock.Advance(time.Second)
	done := e.clock.Now()
	if err := e.svc.FinishRotation(ctx, "app/db", tok, done); err != nil {
		t.Fatalf("FinishRotation: %v", err)
	}
	if e.value("app/db") != v2 {
		t.Fatal("AWSCURRENT is not the new value")
	}
	prev := e.ok("GetSecretValue", map[string]any{"SecretId": "app/db", "VersionStage": "AWSPREVIOUS"})
	if prev["SecretString"] != "v1" || prev["VersionId"] != v1 {
		t.Fatalf("AWSPREVIOUS = %v", prev)
	}
	d := e.describe("app/db")
	want := map[string][]string{v1: {"AWSPREVIOUS"}, tok: {"AWSCURRENT"}}
	if got := stagesOf(d); len(got) != 2 || !slices.Equal(got[v1], want[v1]) || !slices.Equal(got[tok], want[tok]) {
		t.Fatalf("stages after rotation = %v, want %v (no AWSPENDING)", got, want)
	}
	if last := epochAt(t, d["LastRotatedDate"]); !last.Equal(done.Truncate(time.Millisecond)) {
		t.Fatalf("LastRotatedDate = %s, want %s", last, done)
	}
	// AutomaticallyAfterDays 30 from 2025-03-14: the window is 2025-04-13.
	next := epochAt(t, d["NextRotationDate"])
	window := time.Date(2025, 4, 13, 0, 0, 0, 0, time.UTC)
	if next.Before(window) || !next.Before(window.Add(24*time.Hour)) {
		t.Fatalf("NextRotationDate = %s, want on %s", next, window.Format(time.DateOnly))
	}
	if _, ok := d["SigilRotationStatus"]; ok || d["RotationEnabled"] != true {
		t.Fatalf("DescribeSecret after success = %v", d)
	}
	if due, _ := e.svc.DueRotations(ctx, done, 0); len(due) != 0 {
		t.Fatalf("due after finishing: %+v", due)
	}
	if _, err := e.svc.ClaimRotation(ctx, "app/db", "runner-b", done, done.Add(time.Minute)); !errors.Is(err, ErrRotationClaimed) {
		t.Fatalf("ClaimRotation of a finished rotation = %v", err)
	}
	if err := e.svc.FinishRotation(ctx, "app/db", tok, done); !errors.Is(err, ErrRotationClaimed) {
		t.Fatalf("second FinishRotation = %v, want ErrRotationClaimed", err)
	}
	// The next scheduled rotation gets a new token when claimed.
	later, err := e.svc.ClaimRotation(ctx, "app/db", "runner-a", next, next.Add(time.Minute))
	if err != nil || later.Token == "" || later.Token == tok || len(later.Token) != 36 {
		t.Fatalf("scheduled ClaimRotation = %+v, %v", later, err)
	}
}

func TestFinishRotationWhenAWSCURRENTAlreadyMoved(t *testing.T) {
	// A webhook rotator does finishSecret itself with
	// UpdateSecretVersionStage; FinishRotation then only does the
	// bookkeeping.
	e := newEnv(t)
	ctx := context.Background()
	e.create("s", "v1")
	tok := token("hook")
	e.rotate("s", tok)
	v2 := "v2"
	if err := e.svc.PutPendingValue(ctx, "s", tok, &v2, nil); err != nil {
		t.Fatal(err)
	}
	var v1 string
	for id, st := range stagesOf(e.describe("s")) {
		if slices.Contains(st, "AWSCURRENT") {
			v1 = id
		}
	}
	e.ok("UpdateSecretVersionStage", map[string]any{"SecretId": "s", "VersionStage": "AWSCURRENT", "MoveToVersionId": tok, "RemoveFromVersionId": v1})
	if err := e.svc.FinishRotation(ctx, "s", tok, e.clock.Now()); err != nil {
		t.Fatalf("FinishRotation: %v", err)
	}
	got := stagesOf(e.describe("s"))
	if !slices.Equal(got[tok], []string{"AWSCURRENT"}) || !slices.Equal(got[v1], []string{"AWSPREVIOUS"}) {
		t.Fatalf("stages = %v", got)
	}
}

func TestFailedRotationKeepsStages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create("s", "v1")
	tok := token("fail")
	e.rotate("s", tok)
	now := e.clock.Now()
	if _, err := e.svc.ClaimRotation(ctx, "s", "runner-a", now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	v2 := "v2"
	if err := e.svc.PutPendingValue(ctx, "s", tok, &v2, nil); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	retryAt := e.clock.Now().Add(5 * time.Minute)
	if err := e.svc.FailRotation(ctx, "s", tok, "setSecret", "password authentication failed for user \"app\"", retryAt); err != nil {
		t.Fatalf("FailRotation: %v", err)
	}
	if err := e.svc.FailRotation(ctx, "s", token("other"), "setSecret", "x", retryAt); !errors.Is(err, ErrRotationClaimed) {
		t.Fatalf("FailRotation with another token = %v", err)
	}
	if e.value("s") != "v1" {
		t.Fatal("a failed rotation moved AWSCURRENT")
	}
	d := e.describe("s")
	if !slices.Equal(stagesOf(d)[tok], []string{"AWSPENDING"}) {
		t.Fatalf("AWSPENDING not kept: %v", stagesOf(d))
	}
	st, _ := d["SigilRotationStatus"].(map[string]any)
	if st["Step"] != "setSecret" || st["Error"] != "password authentication failed for user \"app\"" || st["Attempts"] != float64(1) ||
		!epochAt(t, st["LastAttempt"]).Equal(e.clock.Now().Truncate(time.Millisecond)) {
		t.Fatalf("SigilRotationStatus = %v", d["SigilRotationStatus"])
	}
	if next := epochAt(t, d["NextRotationDate"]); !next.Equal(retryAt.Truncate(time.Millisecond)) {
		t.Fatalf("NextRotationDate = %s, want the retry at %s", next, retryAt)
	}
	if due, _ := e.svc.DueRotations(ctx, e.clock.Now(), 0); len(due) != 0 {
		t.Fatalf("due before the retry: %+v", due)
	}
	due, err := e.svc.DueRotations(ctx, retryAt, 0)
	if err != nil || len(due) != 1 || due[0].Token != tok || due[0].Attempts != 1 || !due[0].Due.Equal(retryAt) {
		t.Fatalf("DueRotations at the retry = %+v, %v", due, err)
	}
	// The retry is claimable by anyone (the claim was released) and keeps
	// the token; it succeeds and clears the status.
	claim, err := e.svc.ClaimRotation(ctx, "s", "runner-b", retryAt, retryAt.Add(time.Minute))
	if err != nil || claim.Token != tok || claim.Attempts != 1 {
		t.Fatalf("retry claim = %+v, %v", claim, err)
	}
	if err := e.svc.FinishRotation(ctx, "s", tok, retryAt); err != nil {
		t.Fatal(err)
	}
	if d := e.describe("s"); d["SigilRotationStatus"] != nil || e.value("s") != "v2" {
		t.Fatalf("after the successful retry: %v", d)
	}
}

func TestClaimRotationOneWinner(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create("s", "v")
	e.rotate("s", token("claim"))
	now := e.clock.Now()
	const holders = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		losses  int
	)
	for i := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := fmt.Sprintf("replica-%d", i)
			_, err := e.svc.ClaimRotation(ctx, "s", holder, now, now.Add(time.Minute))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, holder)
			case errors.Is(err, ErrRotationClaimed):
				losses++
			default:
				t.Errorf("%s: %v", holder, err)
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 || losses != holders-1 {
		t.Fatalf("%d winners (%v), %d losses; want exactly one winner", len(winners), winners, losses)
	}
	winner := winners[0]
	// The winner may renew; others are refused until the claim expires.
	if _, err := e.svc.ClaimRotation(ctx, "s", winner, now.Add(30*time.Second), now.Add(2*time.Minute)); err != nil {
		t.Fatalf("renewal: %v", err)
	}
	if _, err := e.svc.ClaimRotation(ctx, "s", "late", now.Add(time.Minute), now.Add(3*time.Minute)); !errors.Is(err, ErrRotationClaimed) {
		t.Fatalf("claim before the renewed claim expired = %v", err)
	}
	if _, err := e.svc.ClaimRotation(ctx, "s", "late", now.Add(2*time.Minute), now.Add(3*time.Minute)); err != nil {
		t.Fatalf("claim after expiry: %v", err)
	}
	if _, err := e.svc.ClaimRotation(ctx, "missing", "x", now, now.Add(time.Minute)); !errors.Is(err, ErrRotationClaimed) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim of a missing secret = %v", err)
	}
	if _, err := e.svc.ClaimRotation(ctx, "s", "", now, now.Add(time.Minute)); err == nil {
		t.Fatal("claim without a holder accepted")
	}
}

func TestDueRotationsSpreadOverTheWindow(t *testing.T) {
	e := newEnv(t) // crypto/rand jitter
	ctx := context.Background()
	const n = 120
	for i := range n {
		name := fmt.Sprintf("fleet/%03d", i)
		e.create(name, "v")
		e.ok("RotateSecret", map[string]any{"SecretId": name, "RotationLambdaARN": testRotator, "RotateImmediately": false,
			"RotationRules": map[string]any{"ScheduleExpression": "cron(0 2 * * ? *)", "Duration": "4h"}})
	}
	open := time.Date(2025, 3, 15, 2, 0, 0, 0, time.UTC)
	if due, err := e.svc.DueRotations(ctx, open.Add(-time.Millisecond), 0); err != nil || len(due) != 0 {
		t.Fatalf("due before the window opens: %d, %v", len(due), err)
	}
	all, err := e.svc.DueRotations(ctx, open.Add(4*time.Hour), 1000)
	if err != nil || len(all) != n {
		t.Fatalf("due after the window: %d, %v", len(all), err)
	}
	var buckets [4]int
	distinct := map[time.Time]bool{}
	for i, d := range all {
		if d.Due.Before(open) || !d.Due.Before(open.Add(4*time.Hour)) {
			t.Fatalf("%s due at %s, outside the window", d.Name, d.Due)
		}
		if i > 0 && d.Due.Before(all[i-1].Due) {
			t.Fatalf("not in due order: %s before %s", all[i-1].Due, d.Due)
		}
		buckets[int(d.Due.Sub(open)/time.Hour)]++
		distinct[d.Due] = true
	}
	// 30 expected per hour; a uniform spread keeps each hour above 10.
	for h, c := range buckets {
		if c < 10 {
			t.Fatalf("hour %d of the window has %d of %d rotations: %v", h, c, n, buckets)
		}
	}
	if len(distinct) < n-2 {
		t.Fatalf("only %d distinct due times for %d secrets", len(distinct), n)
	}
	// A partial view: only what is due by then, the earliest first, and
	// the limit holds.
	mid := open.Add(2 * time.Hour)
	part, err := e.svc.DueRotations(ctx, mid, 1000)
	if err != nil {
		t.Fatal(err)
	}
	wantPart := 0
	for _, d := range all {
		if !d.Due.After(mid) {
			wantPart++
		}
	}
	if len(part) != wantPart {
		t.Fatalf("due by %s: %d, want %d", mid, len(part), wantPart)
	}
	few, err := e.svc.DueRotations(ctx, open.Add(4*time.Hour), 7)
	if err != nil || len(few) != 7 || few[6].Name != all[6].Name {
		t.Fatalf("limited DueRotations = %d entries, %v", len(few), err)
	}
}

func TestScheduleSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sigil.db")
	open := func() store.Store {
		db, err := bolt.Open(path, bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	st := open()
	e := newEnvOn(t, st)
	e.create("s", "v")
	e.ok("RotateSecret", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotateImmediately": false,
		"RotationRules": map[string]any{"ScheduleExpression": "rate(4 hours)"}})
	next := epochAt(t, e.describe("s")["NextRotationDate"])
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = open()
	t.Cleanup(func() { _ = st.Close() })
	svc, err := New(Config{Store: st, Authorizer: iam.RootOnly{}, Audit: audit.Discard{}, Region: testRegion, AccountID: testAccount, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	due, err := svc.DueRotations(context.Background(), next, 0)
	if err != nil || len(due) != 1 || due[0].Name != "s" || !due[0].Due.Truncate(time.Millisecond).Equal(next) {
		t.Fatalf("after reopening: %+v, %v", due, err)
	}
	// The rate(4 hours) window from 15:09 is 19:00-20:00.
	if w := time.Date(2025, 3, 14, 19, 0, 0, 0, time.UTC); next.Before(w) || !next.Before(w.Add(time.Hour)) {
		t.Fatalf("NextRotationDate = %s, want in [%s, +1h)", next, w)
	}
}

func TestDeletionKeepsScheduleIndexConsistent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create("s", "v")
	e.rotate("s", token("del"))
	now := e.clock.Now()
	if keys := rotationKeys(t, e.store); len(keys) != 1 {
		t.Fatalf("schedule index = %v", keys)
	}
	e.ok("DeleteSecret", map[string]any{"SecretId": "s", "RecoveryWindowInDays": 7})
	if keys := rotationKeys(t, e.store); len(keys) != 0 {
		t.Fatalf("a deleted secret is still scheduled: %v", keys)
	}
	if due, _ := e.svc.DueRotations(ctx, now.Add(time.Hour), 0); len(due) != 0 {
		t.Fatalf("a deleted secret came up as due: %+v", due)
	}
	if _, err := e.svc.ClaimRotation(ctx, "s", "r", now, now.Add(time.Minute)); !errors.Is(err, ErrRotationClaimed) {
		t.Fatalf("claim of a deleted secret = %v", err)
	}
	e.fail("CancelRotateSecret", map[string]any{"SecretId": "s"}, codeInvalidRequest)
	e.ok("RestoreSecret", map[string]any{"SecretId": "s"})
	if due, _ := e.svc.DueRotations(ctx, now, 0); len(due) != 1 || due[0].Token != token("del") {
		t.Fatalf("a restored secret is not due again: %+v", due)
	}
	e.ok("DeleteSecret", map[string]any{"SecretId": "s", "ForceDeleteWithoutRecovery": true})
	if keys := rotationKeys(t, e.store); len(keys) != 0 {
		t.Fatalf("a purged secret is still scheduled: %v", keys)
	}
	// Expiry of the recovery window purges the index key too.
	e.create("t", "v")
	e.rotate("t", token("exp"))
	e.ok("DeleteSecret", map[string]any{"SecretId": "t", "RecoveryWindowInDays": 7})
	e.ok("RestoreSecret", map[string]any{"SecretId": "t"})
	e.ok("DeleteSecret", map[string]any{"SecretId": "t", "RecoveryWindowInDays": 7})
	e.clock.Advance(8 * 24 * time.Hour)
	if n, err := e.svc.PurgeExpired(ctx); err != nil || n != 1 {
		t.Fatalf("PurgeExpired = %d, %v", n, err)
	}
	if keys := rotationKeys(t, e.store); len(keys) != 0 {
		t.Fatalf("an expired secret is still scheduled: %v", keys)
	}
}

func TestCancelRotateSecret(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create("s", "v1")
	// Cancelling a secret without rotation succeeds and changes nothing.
	before := storeState(t, e)
	if out := e.ok("CancelRotateSecret", map[string]any{"SecretId": "s"}); out["Name"] != "s" || out["VersionId"] != nil {
		t.Fatalf("CancelRotateSecret = %v", out)
	}
	if storeState(t, e) != before {
		t.Fatal("cancelling nothing changed the store")
	}
	tok := token("cancel")
	e.rotate("s", tok)
	v2 := "v2"
	if err := e.svc.PutPendingValue(ctx, "s", tok, &v2, nil); err != nil {
		t.Fatal(err)
	}
	out := e.ok("CancelRotateSecret", map[string]any{"SecretId": "s"})
	if out["VersionId"] != tok {
		t.Fatalf("CancelRotateSecret = %v, want the pending version", out)
	}
	d := e.describe("s")
	if d["RotationEnabled"] != false || d["RotationLambdaARN"] != testRotator || d["RotationRules"] == nil || d["NextRotationDate"] != nil {
		t.Fatalf("DescribeSecret after cancel = %v", d)
	}
	if !slices.Equal(stagesOf(d)[tok], []string{"AWSPENDING"}) {
		t.Fatalf("AWSPENDING removed by cancel: %v", stagesOf(d))
	}
	if len(rotationKeys(t, e.store)) != 0 {
		t.Fatal("a cancelled rotation is still scheduled")
	}
	if err := e.svc.FinishRotation(ctx, "s", tok, e.clock.Now()); !errors.Is(err, ErrRotationClaimed) {
		t.Fatalf("FinishRotation after cancel = %v", err)
	}
	// The leftover AWSPENDING blocks a new rotation, as in AWS, but the
	// rotation it belongs to can be resumed; no new schedule or rotator is
	// needed, as they were kept.
	e.fail("RotateSecret", map[string]any{"SecretId": "s", "ClientRequestToken": token("new")}, codeInvalidRequest)
	e.ok("RotateSecret", map[string]any{"SecretId": "s", "ClientRequestToken": tok})
	if due, _ := e.svc.DueRotations(ctx, e.clock.Now(), 0); len(due) != 1 || due[0].Token != tok {
		t.Fatalf("resumed rotation = %+v", due)
	}
}

func TestRotationAPIRefusesDynamicAndMissing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, _, err := e.svc.PutDynamic(ctx, DynamicSecret{Name: "dyn"}); err != nil {
		t.Fatal(err)
	}
	v := "x"
	if err := e.svc.PutPendingValue(ctx, "dyn", token("d"), &v, nil); err == nil {
		t.Fatal("PutPendingValue on a dynamic secret accepted")
	}
	if _, err := e.svc.RotationValue(ctx, "missing", "", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RotationValue of a missing secret = %v", err)
	}
	if err := e.svc.FinishRotation(ctx, "missing", token("d"), e.clock.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FinishRotation of a missing secret = %v", err)
	}
	e.create("s", "v")
	if _, err := e.svc.RotationValue(ctx, "s", "", "AWSPENDING"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RotationValue of a missing stage = %v", err)
	}
	if err := e.svc.FailRotation(ctx, "s", token("d"), "createSecret", "x", e.clock.Now()); !errors.Is(err, ErrRotationClaimed) {
		t.Fatalf("FailRotation without a rotation = %v", err)
	}
	e.ok("CancelRotateSecret", map[string]any{"SecretId": "dyn"})
}

func TestSDKRotation(t *testing.T) {
	e := newEnv(t)
	c := newSDKClient(t, e)
	ctx := context.Background()
	if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("sdk/db"), SecretString: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	// The SDK fills ClientRequestToken with a UUID; it becomes the pending
	// version.
	rs, err := c.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("sdk/db"), RotationLambdaARN: aws.String(testRotator),
		RotationRules: &types.RotationRulesType{ScheduleExpression: aws.String("cron(0 16 L * ? *)"), Duration: aws.String("2h")}})
	if err != nil || len(aws.ToString(rs.VersionId)) != 36 {
		t.Fatalf("RotateSecret = %+v, %v", rs, err)
	}
	tok := aws.ToString(rs.VersionId)
	_, err = c.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("sdk/db"),
		RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(3), ScheduleExpression: aws.String("rate(3 days)")}})
	if ae := wantAPIError[*types.InvalidParameterException](t, "both schedules", err); !strings.Contains(aws.ToString(ae.Message), "both rotation frequency and schedule expression") {
		t.Fatalf("message %q", aws.ToString(ae.Message))
	}
	_, err = c.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("sdk/db")})
	wantAPIError[*types.InvalidRequestException](t, "second rotation", err)

	// A failed attempt shows in DescribeSecret; sigil's extra member does
	// not disturb the SDK.
	now := e.clock.Now()
	if _, err := e.svc.ClaimRotation(ctx, "sdk/db", "r", now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.FailRotation(ctx, "sdk/db", tok, "testSecret", "login failed", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("sdk/db")})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if !aws.ToBool(d.RotationEnabled) || aws.ToString(d.RotationLambdaARN) != testRotator || d.RotationRules == nil ||
		aws.ToString(d.RotationRules.ScheduleExpression) != "cron(0 16 L * ? *)" || aws.ToString(d.RotationRules.Duration) != "2h" ||
		d.NextRotationDate == nil || !d.NextRotationDate.Equal(now.Add(time.Minute).Truncate(time.Millisecond)) || d.LastRotatedDate != nil {
		t.Fatalf("DescribeSecret = %+v", d)
	}
	if err := e.svc.FinishRotation(ctx, "sdk/db", tok, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FinishRotation without a pending version = %v, want ErrNotFound", err)
	}
	v2 := "v2"
	if err := e.svc.PutPendingValue(ctx, "sdk/db", tok, &v2, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.FinishRotation(ctx, "sdk/db", tok, now); err != nil {
		t.Fatal(err)
	}
	l, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	if err != nil || len(l.SecretList) != 1 {
		t.Fatalf("ListSecrets = %+v, %v", l, err)
	}
	entry := l.SecretList[0]
	// The last day of March 2025 at 16:00, for two hours.
	window := time.Date(2025, 3, 31, 16, 0, 0, 0, time.UTC)
	if !aws.ToBool(entry.RotationEnabled) || entry.LastRotatedDate == nil || !entry.LastRotatedDate.Equal(now.Truncate(time.Millisecond)) ||
		entry.NextRotationDate == nil || entry.NextRotationDate.Before(window) || !entry.NextRotationDate.Before(window.Add(2*time.Hour)) {
		t.Fatalf("ListSecrets entry = %+v", entry)
	}
	cr, err := c.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("sdk/db")})
	if err != nil || aws.ToString(cr.Name) != "sdk/db" || cr.VersionId != nil {
		t.Fatalf("CancelRotateSecret = %+v, %v", cr, err)
	}
	d, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("sdk/db")})
	if err != nil || aws.ToBool(d.RotationEnabled) || d.NextRotationDate != nil || d.RotationRules == nil {
		t.Fatalf("DescribeSecret after cancel = %+v, %v", d, err)
	}
	_, err = c.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("sdk/missing")})
	wantAPIError[*types.ResourceNotFoundException](t, "cancel of a missing secret", err)
}
