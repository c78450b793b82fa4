package apply

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"sigil.dev/sigil/internal/rotation"
	"sigil.dev/sigil/internal/rotation/schedule"
	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil"
)

// The webhook keys of testdata/rotation: webhook.key holds fileKeyB64;
// APPLY_TEST_WEBHOOK_KEY holds envKeyB64.
const (
	fileKeyRaw = "ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
	fileKeyB64 = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2A="
	envKeyRaw  = "env-webhook-key-0123456789abcdef"
)

var envKeyB64 = base64.StdEncoding.EncodeToString([]byte(envKeyRaw))

// rotationEnv is the environment testdata/rotation files are parsed with.
func rotationEnv() func(string) (string, bool) {
	return testEnv(map[string]string{
		"APPLY_TEST_VALUE":       envValue,
		"APPLY_TEST_WEBHOOK_KEY": envKeyB64,
		"APPLY_TEST_SHORT_KEY":   base64.StdEncoding.EncodeToString([]byte("8 bytes!")),
	})
}

func parseRotationTestdata(t *testing.T, name string) (*File, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "rotation", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(bytes.NewReader(b), filepath.Join("testdata", "rotation"), rotationEnv())
}

// noKey fails the test if a webhook key, raw or base64, is in any of outs.
func noKey(t *testing.T, outs ...string) {
	t.Helper()
	for _, o := range outs {
		for _, k := range []string{fileKeyRaw, fileKeyB64, envKeyRaw, envKeyB64} {
			if strings.Contains(o, k) {
				t.Fatalf("a webhook key was printed (%q)", k)
			}
		}
	}
}

func TestParseRotation(t *testing.T) {
	f, err := parseRotationTestdata(t, "rotation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Rotators) != 4 || len(f.Secrets) != 4 {
		t.Fatalf("parsed %d rotators and %d secrets", len(f.Rotators), len(f.Secrets))
	}
	apiKey, partner, envHook, plain := f.Rotators[0], f.Rotators[1], f.Rotators[2], f.Rotators[3]
	if apiKey.Name != "api-key" || apiKey.Type != rotation.TypeRandom || apiKey.Webhook != nil || apiKey.Line != 3 ||
		*apiKey.Random != (rotation.RandomSpec{Field: "apiKey", PasswordPolicy: rotation.PasswordPolicy{Length: 40, ExcludePunctuation: true}}) {
		t.Errorf("api-key: %+v", apiKey)
	}
	if partner.Type != rotation.TypeWebhook || partner.Random != nil || partner.Webhook.URL != "https://rotate.{{region}}.example.com/hook?tenant={{account}}" ||
		partner.Webhook.Timeout != 10*time.Second || partner.Webhook.KeySource != `file "webhook.key"` || string(partner.Webhook.Key.b) != fileKeyRaw {
		t.Errorf("partner-hook: %+v", partner.Webhook)
	}
	if envHook.Webhook.Timeout != 0 || envHook.Webhook.KeySource != "environment variable APPLY_TEST_WEBHOOK_KEY" || string(envHook.Webhook.Key.b) != envKeyRaw {
		t.Errorf("env-hook: %+v", envHook.Webhook)
	}
	// A random rotator without a random block has the default policy.
	if plain.Random == nil || *plain.Random != (rotation.RandomSpec{}) {
		t.Errorf("plain: %+v", plain)
	}
	want := []*Rotation{
		{Enabled: true, Rotator: "api-key", AutomaticallyAfterDays: 30, Duration: "3h", Line: 26},
		{Enabled: true, Rotator: "arn:aws:lambda:{{region}}:{{account}}:function:partner-hook", ScheduleExpression: "cron(0 4 ? * SUN *)", RotateImmediately: true, Line: 31},
		{Enabled: false, Line: 36},
		nil,
	}
	for i, s := range f.Secrets {
		switch got := s.Rotation; {
		case got == nil || want[i] == nil:
			if got != want[i] {
				t.Errorf("secret %s: rotation %+v, want %+v", s.Name, got, want[i])
			}
		case *got != *want[i]:
			t.Errorf("secret %s: rotation %+v, want %+v", s.Name, *got, *want[i])
		}
	}
}

func TestParseRotationBadFiles(t *testing.T) {
	tests := []struct {
		file string
		line int
		want string
	}{
		{"bad_rot_unknown_key.yaml", 6, `unknown key "every" in rotation (known keys: rotator, automaticallyAfterDays, scheduleExpression, duration, rotateImmediately, enabled)`},
		{"bad_rot_no_rotator.yaml", 5, "rotation needs a rotator"},
		{"bad_rot_no_schedule.yaml", 5, "rotation needs a schedule: automaticallyAfterDays: N, or scheduleExpression"},
		{"bad_rot_both_schedules.yaml", 7, "give either automaticallyAfterDays or scheduleExpression, not both"},
		{"bad_rot_days.yaml", 6, "automaticallyAfterDays must be between 1 and 1000"},
		{"bad_rot_expression.yaml", 6, `scheduleExpression "rate(2 weeks)": The unit of a rate expression must be hour, hours, day or days`},
		{"bad_rot_duration.yaml", 7, "duration must be a number of hours from 1h to 24h"},
		{"bad_rot_window.yaml", 7, "duration (8h) must not be longer than the 6 hours between rotations"},
		{"bad_rot_rotator_arn.yaml", 5, `rotator "arn:aws:lambda:us-east-1:123:function:x" is not arn:aws:lambda:REGION:ACCOUNT:function:NAME`},
		{"bad_rot_rotator_name.yaml", 5, `rotator "my rotator" is neither a RotationLambdaARN nor a rotator name`},
		{"bad_rot_not_map.yaml", 4, "rotation must be a map of keys, not a single value"},
		{"bad_rot_immediately.yaml", 7, `want true or false, not "please"`},
		{"bad_rotator_type.yaml", 4, `rotator type "lambda" is not "random" or "webhook"`},
		{"bad_rotator_no_type.yaml", 3, `a rotator needs a type ("random" or "webhook")`},
		{"bad_rotator_name.yaml", 3, `rotator name "my.rotator" must be 1 to 64 letters`},
		{"bad_rotator_reserved.yaml", 3, `names starting with "sigil-" are reserved for the built-in rotators`},
		{"bad_rotator_duplicate.yaml", 5, `rotator "mine" is declared twice (first at line 3)`},
		{"bad_rotator_no_webhook.yaml", 3, "a webhook rotator needs a webhook block"},
		{"bad_rotator_no_url.yaml", 6, "a webhook needs a url"},
		{"bad_rotator_url.yaml", 6, `url "ftp://rotate.example.com/hook" must be an absolute http or https URL`},
		{"bad_rotator_no_key.yaml", 6, "a webhook needs a keyFile or keyEnv holding its HMAC key in base64"},
		{"bad_rotator_two_keys.yaml", 8, "give either keyFile or keyEnv, not both"},
		{"bad_rotator_key_not_base64.yaml", 7, `the key from file "not-base64.key" is not base64`},
		{"bad_rotator_key_short.yaml", 7, "the key from environment variable APPLY_TEST_SHORT_KEY decodes to 8 bytes; a key must be 16 to 1024 bytes"},
		{"bad_rotator_key_missing.yaml", 7, "no-such.key"},
		{"bad_rotator_timeout.yaml", 7, `timeout "10m" must be a duration such as 10s, at most 5m0s`},
		{"bad_rotator_random_webhook.yaml", 6, "a random rotator takes no webhook block"},
		{"bad_rotator_length.yaml", 6, "length 4 must be between 8 and 4096"},
		{"bad_rotator_policy.yaml", 6, "random: the password policy leaves fewer than two characters"},
		{"bad_rotator_unknown_key.yaml", 6, `unknown key "len" in random`},
		{"bad_rotators_not_list.yaml", 3, "a list of rotators"},
		{"bad_top_key.yaml", 2, `unknown key "rotator" at the top level (known keys: version, oidcProviders, managedPolicies, roles, users, secrets, databases, dynamicSecrets, rotators)`},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			_, err := parseRotationTestdata(t, tt.file)
			checkBadFile(t, err, tt.line, tt.want, "hunter2", "OCBieXRlcyE=")
			noKey(t, err.Error())
		})
	}
	checkEveryBadFile(t, "testdata/rotation/bad_*.yaml", seen)
}

// TestWebhookKeyNeverPrints formats a parsed file every way a program
// might and searches the output for the keys.
func TestWebhookKeyNeverPrints(t *testing.T) {
	f, err := parseRotationTestdata(t, "rotation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		fmt.Fprintf(&out, verb+"\n", f)
		for _, r := range f.Rotators {
			fmt.Fprintf(&out, verb+"\n", r)
			fmt.Fprintf(&out, verb+"\n", r.Webhook)
		}
	}
	js, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(js)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("file", "file", f, "rotator", f.Rotators[1])
	noKey(t, out.String(), fmt.Sprintf("%x", fileKeyRaw), fmt.Sprintf("%x", envKeyRaw))
	if !strings.Contains(out.String(), redacted) {
		t.Fatal("keys did not print as REDACTED")
	}
}

// FuzzParseRotation checks that Parse never panics on files of the
// rotation kinds, that its errors are FileErrors that quote no key, and
// that what it accepts the server would accept too.
func FuzzParseRotation(f *testing.F) {
	files, _ := filepath.Glob("testdata/rotation/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(bytes.NewReader(data), "testdata/rotation", rotationEnv())
		if err != nil {
			if !errors.Is(err, ErrInvalidFile) {
				t.Fatalf("error %v does not wrap ErrInvalidFile", err)
			}
			noKey(t, err.Error())
			return
		}
		for _, r := range file.Rotators {
			if !rotatorNamePattern.MatchString(r.Name) || strings.HasPrefix(r.Name, rotatorReserved) {
				t.Fatalf("accepted rotator name %q", r.Name)
			}
			switch r.Type {
			case rotation.TypeRandom:
				if r.Random == nil || r.Webhook != nil || r.Random.Validate() != nil {
					t.Fatalf("accepted random rotator %+v", r)
				}
			case rotation.TypeWebhook:
				w := r.Webhook
				if w == nil || r.Random != nil || w.Key == nil || len(w.Key.b) < minWebhookKeyBytes || len(w.Key.b) > maxWebhookKeyBytes ||
					webhookURLProblem(sampleVars.expand(w.URL)) != "" || w.Timeout < 0 || w.Timeout > maxWebhookTimeout {
					t.Fatalf("accepted webhook rotator %+v", r)
				}
			default:
				t.Fatalf("accepted rotator type %q", r.Type)
			}
		}
		for _, s := range file.Secrets {
			r := s.Rotation
			if r == nil || !r.Enabled {
				continue
			}
			if r.Rotator == "" {
				t.Fatalf("accepted rotation without a rotator: %+v", r)
			}
			if strings.HasPrefix(r.Rotator, "arn:") {
				if _, err := rotation.ParseRotatorARN(sampleVars.expand(r.Rotator)); err != nil {
					t.Fatalf("accepted rotator %q: %v", r.Rotator, err)
				}
			}
			if _, err := schedule.Parse(schedule.Rules{AutomaticallyAfterDays: r.AutomaticallyAfterDays, ScheduleExpression: r.ScheduleExpression, Duration: r.Duration}); err != nil {
				t.Fatalf("accepted rotation %+v: %v", r, err)
			}
		}
	})
}

// rotEnv is an env with a native API client and a directory for value
// files.
type rotEnv struct {
	*env
	dir string
}

func newRotEnv(t *testing.T) *rotEnv {
	t.Helper()
	e := newEnv(t)
	e.c.Native = NewNative(e.srv.AWSConfig())
	return &rotEnv{env: e, dir: t.TempDir()}
}

// write writes a file in the env's directory.
func (e *rotEnv) write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *rotEnv) describe(t *testing.T, name string) *secretsmanager.DescribeSecretOutput {
	t.Helper()
	out, err := e.sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeSecret %s: %v", name, err)
	}
	return out
}

func (e *rotEnv) value(t *testing.T, name string) map[string]any {
	t.Helper()
	out, err := e.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("GetSecretValue %s: %v", name, err)
	}
	return mustJSON(t, aws.ToString(out.SecretString))
}

// onlyStep returns the one step of the change of kind and name.
func onlyStep(t *testing.T, p *PlanResult, k Kind, name string) string {
	t.Helper()
	ch := findChange(t, p, k, name)
	if ch.Action != ActionUpdate || len(ch.Steps) != 1 {
		t.Fatalf("%s %s: %s with steps %q, want an update with one step\n%s", k, name, ch.Action, ch.Steps, texts(t, p, nil))
	}
	return ch.Steps[0]
}

func TestApplyRotation(t *testing.T) {
	e := newRotEnv(t)
	ctx := context.Background()
	e.write(t, "app.json", `{"apiKey":"initial-api-key-3f9a","user":"svc"}`)
	file := func(length, rotation string) *File {
		t.Helper()
		return parse(t, `version: 1
rotators:
  - name: api-key
    type: random
    random: {field: apiKey, length: `+length+`, excludePunctuation: true}
secrets:
  - name: app/api-key
    valueFile: app.json
    rotation:
      rotator: api-key
`+rotation, e.dir, nil)
	}
	every30 := "      automaticallyAfterDays: 30\n"

	// A dry run (Plan alone) changes nothing.
	p := e.plan(t, file("40", every30), Options{})
	if got := strings.Join(actions(p), "; "); got != "rotator api-key: create; secret app/api-key: create" {
		t.Fatalf("first plan: %s", got)
	}
	rot := findChange(t, p, KindRotator, "api-key")
	wantARN := "arn:aws:lambda:us-east-1:" + p.Account + ":function:api-key"
	if rot.ARN != wantARN || len(rot.Steps) != 1 || rot.Steps[0] != "register random rotator" {
		t.Fatalf("rotator change: %+v", rot)
	}
	if ch := findChange(t, p, KindSecret, "app/api-key"); len(ch.Steps) != 2 ||
		ch.Steps[1] != "RotateSecret: enable rotation (rotator api-key, every 30 days); first rotation at the next window, not now" {
		t.Fatalf("secret steps %q", ch.Steps)
	}
	if err := e.c.Native(ctx, "/v1/rotators/get", server.NameRequest{Name: "api-key"}, nil); !isNativeNotFound(err) {
		t.Fatalf("after planning, rotators/get: %v, want ResourceNotFoundException", err)
	}
	if _, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/api-key")}); !isSecretNotFound(err) {
		t.Fatalf("after planning, the secret: %v", err)
	}

	_, r := e.apply(t, file("40", every30), Options{})
	if created, updated, unchanged, failed := r.Counts(); created != 2 || updated+unchanged+failed != 0 {
		t.Fatalf("apply: %+v", r.Objects)
	}
	var have server.RotatorResponse
	if err := e.c.Native(ctx, "/v1/rotators/get", server.NameRequest{Name: "api-key"}, &have); err != nil {
		t.Fatal(err)
	}
	if have.ARN != wantARN || have.Type != rotation.TypeRandom || have.Random == nil || have.Random.Field != "apiKey" || have.Random.Length != 40 || !have.Random.ExcludePunctuation {
		t.Fatalf("registered rotator %+v", have)
	}
	d := e.describe(t, "app/api-key")
	if !aws.ToBool(d.RotationEnabled) || aws.ToString(d.RotationLambdaARN) != wantARN || d.RotationRules == nil ||
		aws.ToInt64(d.RotationRules.AutomaticallyAfterDays) != 30 || d.RotationRules.ScheduleExpression != nil || d.NextRotationDate == nil {
		t.Fatalf("DescribeSecret after apply: enabled %v, lambda %q, rules %+v, next %v", d.RotationEnabled, aws.ToString(d.RotationLambdaARN), d.RotationRules, d.NextRotationDate)
	}
	// rotateImmediately defaults to false: nothing rotated.
	if len(d.VersionIdsToStages) != 1 || e.value(t, "app/api-key")["apiKey"] != "initial-api-key-3f9a" {
		t.Fatalf("apply rotated the secret: versions %v", d.VersionIdsToStages)
	}

	// A second run plans no change and makes no call.
	p, r = e.apply(t, file("40", every30), Options{})
	if p.HasChanges() {
		t.Fatalf("second plan: %v\n%s", actions(p), texts(t, p, nil))
	}
	if ch := findChange(t, p, KindSecret, "app/api-key"); !strings.Contains(strings.Join(ch.Notes, "; "), "rotation: unchanged (rotator api-key, every 30 days)") {
		t.Fatalf("unchanged secret notes %q", ch.Notes)
	}
	if _, _, unchanged, _ := r.Counts(); unchanged != 2 {
		t.Fatalf("second apply: %+v", r.Objects)
	}

	// Changing the schedule is one RotateSecret. DescribeSecret then
	// reports rate(10 days) as AutomaticallyAfterDays 10 too, which the
	// next plan must not take for a difference.
	rate := "      scheduleExpression: rate(10 days)\n      duration: 4h\n"
	p = e.plan(t, file("40", rate), Options{})
	if got := onlyStep(t, p, KindSecret, "app/api-key"); got != "RotateSecret: change rotation schedule and window (rotator api-key, rate(10 days), window 4h); next rotation at the schedule's next window, not now" {
		t.Fatalf("schedule change step %q", got)
	}
	if ch := findChange(t, p, KindRotator, "api-key"); ch.Action != ActionNone {
		t.Fatalf("rotator: %+v", ch)
	}
	if d := e.describe(t, "app/api-key"); aws.ToInt64(d.RotationRules.AutomaticallyAfterDays) != 30 || d.RotationRules.ScheduleExpression != nil {
		t.Fatalf("planning the schedule change changed the rules: %+v", d.RotationRules)
	}
	if _, err := Apply(ctx, e.c, p); err != nil {
		t.Fatal(err)
	}
	d = e.describe(t, "app/api-key")
	if aws.ToString(d.RotationRules.ScheduleExpression) != "rate(10 days)" || aws.ToString(d.RotationRules.Duration) != "4h" || len(d.VersionIdsToStages) != 1 {
		t.Fatalf("after the schedule change: rules %+v, versions %v", d.RotationRules, d.VersionIdsToStages)
	}
	if p := e.plan(t, file("40", rate), Options{}); p.HasChanges() {
		t.Fatalf("plan after the schedule change: %s", texts(t, p, nil))
	}

	// A changed rotator definition is one put; rotateImmediately alone,
	// with nothing else changed, does not rotate.
	p = e.plan(t, file("48", rate+"      rotateImmediately: true\n"), Options{})
	if got := onlyStep(t, p, KindRotator, "api-key"); got != "update length" {
		t.Fatalf("rotator step %q", got)
	}
	if ch := findChange(t, p, KindSecret, "app/api-key"); ch.Action != ActionNone {
		t.Fatalf("rotateImmediately alone changed the secret: %+v", ch)
	}
	if _, err := Apply(ctx, e.c, p); err != nil {
		t.Fatal(err)
	}
	if d := e.describe(t, "app/api-key"); len(d.VersionIdsToStages) != 1 {
		t.Fatalf("a rotation started: %v", d.VersionIdsToStages)
	}

	// A schedule change with rotateImmediately rotates now, with the
	// updated rotator.
	p = e.plan(t, file("48", "      automaticallyAfterDays: 7\n      rotateImmediately: true\n"), Options{})
	if got := onlyStep(t, p, KindSecret, "app/api-key"); !strings.HasSuffix(got, "; rotating now (rotateImmediately)") {
		t.Fatalf("immediate rotation step %q", got)
	}
	if _, err := Apply(ctx, e.c, p); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, func() bool {
		v := e.value(t, "app/api-key")
		k, _ := v["apiKey"].(string)
		return k != "initial-api-key-3f9a" && len(k) == 48 && v["user"] == "svc"
	})
	if d := e.describe(t, "app/api-key"); aws.ToInt64(d.RotationRules.AutomaticallyAfterDays) != 7 || d.RotationRules.ScheduleExpression != nil || d.RotationRules.Duration != nil {
		t.Fatalf("rules after the change to days: %+v", d.RotationRules)
	}

	// enabled: false is one CancelRotateSecret, then nothing.
	off := "      enabled: false\n      automaticallyAfterDays: 7\n"
	p = e.plan(t, file("48", off), Options{})
	if got := onlyStep(t, p, KindSecret, "app/api-key"); got != "CancelRotateSecret: turn rotation off (enabled: false)" {
		t.Fatalf("cancel step %q", got)
	}
	if _, err := Apply(ctx, e.c, p); err != nil {
		t.Fatal(err)
	}
	if d := e.describe(t, "app/api-key"); aws.ToBool(d.RotationEnabled) {
		t.Fatal("rotation still enabled after enabled: false")
	}
	p = e.plan(t, file("48", off), Options{})
	if ch := findChange(t, p, KindSecret, "app/api-key"); ch.Action != ActionNone || !strings.Contains(strings.Join(ch.Notes, "; "), "rotation: off") {
		t.Fatalf("plan after cancelling: %+v", ch)
	}
	// Turning it back on is one RotateSecret.
	p = e.plan(t, file("48", every30), Options{})
	if got := onlyStep(t, p, KindSecret, "app/api-key"); !strings.HasPrefix(got, "RotateSecret: enable rotation (rotator api-key, every 30 days)") {
		t.Fatalf("re-enable step %q", got)
	}
}

func TestApplyRotationUnknownRotator(t *testing.T) {
	e := newRotEnv(t)
	ctx := context.Background()
	e.write(t, "app.json", `{"apiKey":"x"}`)
	f := parse(t, `version: 1
secrets:
  - name: app/orphan
    valueFile: app.json
    rotation: {rotator: no-such-rotator, automaticallyAfterDays: 7}
`, e.dir, nil)
	p := e.plan(t, f, Options{})
	r, err := Apply(ctx, e.c, p)
	if !errors.Is(err, ErrApply) || !strings.Contains(err.Error(), "no-such-rotator") {
		t.Fatalf("Apply: %v", err)
	}
	if o := r.Objects[0]; o.Status != StatusRolledBack || !strings.HasPrefix(o.FailedStep, "RotateSecret") || !strings.Contains(o.Error, "InvalidParameterException") {
		t.Fatalf("result %+v", o)
	}
	// The secret created before the failing step was rolled back.
	if _, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/orphan")}); !isSecretNotFound(err) {
		t.Fatalf("after the rollback, DescribeSecret: %v", err)
	}
}

// hookServer is a webhook endpoint that checks each request's signature
// with key and answers 503, so that rotations stay pending.
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	verified map[string]int // path -> requests whose signature verified
	rejected map[string]int // path -> requests whose signature did not
}

func newHookServer(t *testing.T, key []byte) *hookServer {
	t.Helper()
	h := &hookServer{verified: map[string]int{}, rejected: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := rotation.VerifySignature(key, r.Header.Get(rotation.SignatureHeader), body, time.Now(), rotation.DefaultMaxSkew)
		h.mu.Lock()
		if err == nil {
			h.verified[r.URL.Path]++
		} else {
			h.rejected[r.URL.Path]++
		}
		h.mu.Unlock()
		http.Error(w, "not now", http.StatusServiceUnavailable)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) counts(path string) (verified, rejected int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.verified[path], h.rejected[path]
}

func TestApplyWebhookRotator(t *testing.T) {
	e := newRotEnv(t)
	ctx := context.Background()
	hook := newHookServer(t, []byte(fileKeyRaw))
	e.write(t, "hook.key", fileKeyB64+"\n")
	e.write(t, "app.json", `{"token":"t0"}`)
	file := func(path, timeout string) *File {
		t.Helper()
		return parse(t, `version: 1
rotators:
  - name: partner-hook
    type: webhook
    webhook:
      url: `+hook.URL+path+`
      timeout: `+timeout+`
      keyFile: hook.key
secrets:
  - name: app/partner
    valueFile: app.json
    rotation: {rotator: "arn:aws:lambda:{{region}}:{{account}}:function:partner-hook", automaticallyAfterDays: 30}
`, e.dir, nil)
	}
	var outs []string
	p, r := e.apply(t, file("/a", "10s"), Options{})
	outs = append(outs, texts(t, p, r))
	if ch := findChange(t, p, KindRotator, "partner-hook"); ch.Action != ActionCreate || ch.Notes[0] != `webhook key from file "hook.key"` {
		t.Fatalf("rotator change %+v", ch)
	}
	var have server.RotatorResponse
	if err := e.c.Native(ctx, "/v1/rotators/get", server.NameRequest{Name: "partner-hook"}, &have); err != nil {
		t.Fatal(err)
	}
	if have.Webhook == nil || have.Webhook.URL != hook.URL+"/a" || have.Webhook.Timeout != 10*time.Second || have.WebhookKey != "" {
		t.Fatalf("registered rotator %+v", have)
	}

	// The key is write-only: left as is by default, written on every
	// --update-values run.
	p = e.plan(t, file("/a", "10s"), Options{})
	outs = append(outs, texts(t, p, nil))
	if ch := findChange(t, p, KindRotator, "partner-hook"); ch.Action != ActionNone || len(ch.Notes) != 1 || ch.Notes[0] != noteKeyLeft {
		t.Fatalf("second plan: %+v", ch)
	}
	if p.HasChanges() {
		t.Fatalf("second plan: %s", texts(t, p, nil))
	}
	p = e.plan(t, file("/a", "10s"), Options{UpdateValues: true})
	outs = append(outs, texts(t, p, nil))
	if got := onlyStep(t, p, KindRotator, "partner-hook"); got != `update webhook key from file "hook.key" (write-only, so written on every --update-values run)` {
		t.Fatalf("--update-values step %q", got)
	}

	// Another setting's change sends the file's key along, so the server
	// keeps it rather than generating a new one.
	p = e.plan(t, file("/b", "5s"), Options{})
	if got := onlyStep(t, p, KindRotator, "partner-hook"); !strings.HasPrefix(got, `update url, timeout and webhook key from file "hook.key"`) {
		t.Fatalf("url change step %q", got)
	}
	r, err := Apply(ctx, e.c, p)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, texts(t, p, r))
	if err := e.c.Native(ctx, "/v1/rotators/get", server.NameRequest{Name: "partner-hook"}, &have); err != nil {
		t.Fatal(err)
	}
	if have.Webhook.URL != hook.URL+"/b" || have.Webhook.Timeout != 5*time.Second {
		t.Fatalf("updated rotator %+v", have.Webhook)
	}
	// A rotation now calls /b, signed with the file's key.
	if _, err := e.sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/partner"), RotateImmediately: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, func() bool {
		v, rej := hook.counts("/b")
		return v > 0 || rej > 0
	})
	if v, rej := hook.counts("/b"); v == 0 || rej != 0 {
		t.Fatalf("webhook /b: %d requests verified with the file's key, %d not", v, rej)
	}
	noKey(t, append(outs, e.srv.Logs.String())...)
}

// keyErrorPattern matches every message decodeWebhookKey may return.
var keyErrorPattern = regexp.MustCompile(`^(is empty|must be one line of base64|is not base64 \(standard alphabet, with padding\)|decodes to [0-9]+ bytes; a key must be 16 to 1024 bytes)$`)

// FuzzDecodeWebhookKey checks that a key file's text decodes only to a key
// of allowed size whose base64 is the text, and that errors never quote
// the text.
func FuzzDecodeWebhookKey(f *testing.F) {
	files, _ := filepath.Glob("testdata/rotation/*.key")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(envKeyB64 + "\r\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		key, err := decodeWebhookKey(text)
		if err != nil {
			// Every message is one of a fixed set, so none can quote the
			// text.
			if !keyErrorPattern.MatchString(err.Error()) {
				t.Fatalf("unexpected error %q", err)
			}
			return
		}
		if len(key) < minWebhookKeyBytes || len(key) > maxWebhookKeyBytes {
			t.Fatalf("accepted a %d-byte key", len(key))
		}
		if got := base64.StdEncoding.EncodeToString(key); got != strings.TrimSpace(string(text)) {
			t.Fatalf("key re-encodes to %q, not the file's text", got)
		}
	})
}
