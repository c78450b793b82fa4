package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/authn"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// goldenEncoder is deterministic: fixed key, clock and event id.
func goldenEncoder() *encoder {
	return &encoder{
		hmacKey:   bytes.Repeat([]byte{0x42}, 32),
		region:    "us-east-1",
		accountID: "123456789012",
		now:       func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
		uuid:      func() (string, error) { return "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5", nil },
	}
}

// goldenEvent is an assumed-role session from a sealed image on
// Kubernetes reading a secret: every optional field set.
func goldenEvent() *Event {
	return &Event{
		Time:      time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC),
		RequestID: "8d3f5c1e-0000-4000-8000-000000000001",
		SourceIP:  "10.1.2.3",
		UserAgent: "Boto3/1.34 md/Botocore#1.34",
		Principal: &authn.Principal{
			Kind:        authn.KindAssumedRole,
			AccountID:   "123456789012",
			ARN:         "arn:aws:sts::123456789012:assumed-role/checkout/pod-7f9",
			ID:          "AROAEXAMPLE:pod-7f9",
			AccessKeyID: "ASIAEXAMPLE",
		},
		Session: &SessionContext{
			SessionIssuer: &SessionIssuer{Type: "Role", PrincipalID: "AROAEXAMPLE", ARN: "arn:aws:iam::123456789012:role/checkout", AccountID: "123456789012", UserName: "checkout"},
			WebIDFederationData: &WebIDFederationData{
				FederatedProvider: "arn:aws:iam::123456789012:oidc-provider/kubernetes.default.svc",
				Attributes:        map[string]string{"sub": "system:serviceaccount:shop:checkout"},
			},
			Attributes: &SessionAttributes{CreationDate: "2026-01-02T03:00:00Z", MFAAuthenticated: "false"},
		},
		Source:            "secretsmanager.amazonaws.com",
		Action:            "GetSecretValue",
		Resources:         []string{"arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/db-AbCdEf"},
		Allowed:           true,
		Reason:            "allow",
		Policy:            "arn:aws:iam::123456789012:policy/checkout-read",
		Statement:         "ReadDB",
		ReadOnly:          true,
		ReturnsSecret:     true,
		Latency:           1234 * time.Microsecond,
		RequestParameters: map[string]string{"secretId": "shop/db"},
		ResponseElements:  json.RawMessage(`{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/db-AbCdEf","SecretString":"{\"password\":\"hunter2\"}","VersionId":"v1"}`),
		ImageDigest:       "sha256:" + strings.Repeat("ab", 32),
		Kubernetes:        &Kubernetes{Namespace: "shop", ServiceAccount: "checkout", Pod: "checkout-7f9"},
	}
}

// TestRecordGolden pins the exact bytes of a record: testdata/event_v1.jsonl
// is a known-answer vector of the format in FORMAT.md.
func TestRecordGolden(t *testing.T) {
	body, err := goldenEncoder().encodeEvent(goldenEvent())
	if err != nil {
		t.Fatal(err)
	}
	var zero [32]byte
	line := append(appendChainSuffix(body, 2, &zero), '\n')
	path := filepath.Join("testdata", "event_v1.jsonl")
	if *update {
		if err := os.WriteFile(path, line, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(line, want) {
		t.Fatalf("record changed:\n got %s\nwant %s", line, want)
	}
	if bytes.Contains(line, []byte("hunter2")) {
		t.Fatal("the golden record holds the secret value")
	}
}

// TestRecordCloudTrailShape decodes a written record generically and checks
// the CloudTrail fields that readers rely on.
func TestRecordCloudTrailShape(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	record(t, l, goldenEvent())
	denied := sampleEvent(2)
	denied.Principal = nil
	denied.Allowed, denied.Reason, denied.Policy, denied.Statement = false, "implicit deny", "", ""
	denied.ErrorCode, denied.ErrorMessage = "AccessDeniedException", "User is not authorized"
	denied.EventType = EventTypeService // an event sigil made by itself
	record(t, l, denied)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := allLines(t, dir)
	var docs []map[string]any
	for _, ln := range lines {
		if bytes.HasPrefix(ln, []byte(controlPrefix)) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(ln, &m); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, m)
	}
	if len(docs) != 2 {
		t.Fatalf("%d event records", len(docs))
	}
	ok := docs[0]
	str := func(m map[string]any, k string) string {
		t.Helper()
		s, _ := m[k].(string)
		return s
	}
	if got := str(docs[1], "eventType"); got != "AwsServiceEvent" {
		t.Errorf("eventType of a service event = %q", got)
	}
	for k, want := range map[string]string{
		"eventVersion": "1.09", "eventTime": "2026-01-02T03:04:05Z", "eventSource": "secretsmanager.amazonaws.com",
		"eventName": "GetSecretValue", "awsRegion": "us-east-1", "sourceIPAddress": "10.1.2.3",
		"eventType": "AwsApiCall", "eventCategory": "Management", "recipientAccountId": "123456789012",
		"requestID": "8d3f5c1e-0000-4000-8000-000000000001",
	} {
		if got := str(ok, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(str(ok, "eventID")) != 36 || ok["readOnly"] != true || ok["managementEvent"] != true {
		t.Errorf("eventID/readOnly/managementEvent: %v %v %v", ok["eventID"], ok["readOnly"], ok["managementEvent"])
	}
	uid := ok["userIdentity"].(map[string]any)
	if str(uid, "type") != "AssumedRole" || str(uid, "accessKeyId") != "ASIAEXAMPLE" || str(uid, "arn") == "" || str(uid, "principalId") == "" || str(uid, "accountId") != "123456789012" {
		t.Errorf("userIdentity %v", uid)
	}
	sc := uid["sessionContext"].(map[string]any)
	wif := sc["webIdFederationData"].(map[string]any)
	if str(wif, "federatedProvider") == "" || str(sc["sessionIssuer"].(map[string]any), "type") != "Role" {
		t.Errorf("sessionContext %v", sc)
	}
	res := ok["resources"].([]any)[0].(map[string]any)
	if str(res, "ARN") == "" || str(res, "accountId") != "123456789012" || str(res, "type") != "AWS::SecretsManager::Secret" {
		t.Errorf("resources %v", res)
	}
	add := ok["additionalEventData"].(map[string]any)
	if str(add, "decision") != "allow" || str(add, "policy") == "" || str(add, "statement") != "ReadDB" ||
		str(add, "imageDigest") == "" || add["latencyMicros"] != 1234.0 || add["sequence"] == nil || len(str(add, "previousHash")) != 64 {
		t.Errorf("additionalEventData %v", add)
	}
	if k := add["kubernetes"].(map[string]any); str(k, "namespace") != "shop" || str(k, "serviceAccount") != "checkout" || str(k, "pod") != "checkout-7f9" {
		t.Errorf("kubernetes %v", k)
	}
	deny := docs[1]
	if str(deny, "errorCode") != "AccessDeniedException" || str(deny["userIdentity"].(map[string]any), "type") != "Unknown" ||
		str(deny["additionalEventData"].(map[string]any), "decision") != "deny" || str(deny["additionalEventData"].(map[string]any), "reason") != "implicit deny" {
		t.Errorf("denied record %v", deny)
	}
	if deny["requestParameters"] == nil || deny["responseElements"] != nil {
		t.Errorf("parameters of the denied record: %v %v", deny["requestParameters"], deny["responseElements"])
	}
}

func TestARNFacts(t *testing.T) {
	tests := []struct{ arn, account, typ string }{
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", "123456789012", "AWS::SecretsManager::Secret"},
		{"arn:aws:iam::123456789012:role/app", "123456789012", "AWS::IAM::Role"},
		{"arn:aws:iam::123456789012:user/ci", "123456789012", "AWS::IAM::User"},
		{"arn:aws:iam::123456789012:oidc-provider/issuer.example", "123456789012", "AWS::IAM::OIDCProvider"},
		{"arn:aws:iam::123456789012:root", "123456789012", "AWS::IAM::Account"},
		{"arn:aws:sts::123456789012:assumed-role/app/s", "123456789012", "AWS::STS::AssumedRole"},
		{"arn:aws:sigil:us-east-1:123456789012:image/sha256:abc", "123456789012", "Sigil::Image"},
		{"arn:aws:s3:::bucket", "", ""},
		{"not-an-arn", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.arn, func(t *testing.T) {
			a, ty := arnFacts(tt.arn)
			if a != tt.account || ty != tt.typ {
				t.Fatalf("arnFacts = %q, %q; want %q, %q", a, ty, tt.account, tt.typ)
			}
		})
	}
}

func TestSensitiveKey(t *testing.T) {
	for _, k := range []string{"SecretString", "secretBinary", "Password", "password", "dbPassword", "SessionToken",
		"WebIdentityToken", "token", "IdToken", "PrivateKey", "SecretAccessKey", "ClientSecret", "SAMLAssertion", "Passphrase", "Shares", "kek"} {
		if !SensitiveKey(k) {
			t.Errorf("%s is not sensitive", k)
		}
	}
	for _, k := range []string{"SecretId", "NextToken", "ClientRequestToken", "AccessKeyId", "VersionId", "Name", "ARN", "RoleArn", "Key", "Value"} {
		if SensitiveKey(k) {
			t.Errorf("%s is sensitive", k)
		}
	}
}

// TestSecretsNeverReachTheLog plants known values in every place emitters
// put secret material, writes them, and searches the whole directory: the
// values are absent and their HMACs present, so `sigil audit hash` finds
// them.
func TestSecretsNeverReachTheLog(t *testing.T) {
	dir := t.TempDir()
	keys := testKeys(t)
	var sink bytes.Buffer
	l := openLog(t, dir, Options{Keys: keys, Exporters: []Exporter{NewWriterExporter("stdout", &sink)}})
	secrets := map[string]string{
		"string":    "planted-secret-string-9c1f",
		"binary":    "cGxhbnRlZC1iaW5hcnktN2Ex",
		"password":  "planted-password-44de",
		"token":     "planted-session-token-0b3a",
		"key":       "planted-secret-key-5e6f",
		"webid":     "planted-webidentity-jwt-1d2c",
		"nested":    "planted-nested-value-8a7b",
		"escaped":   "planted-escaped-key-3f3f",
		"private":   "planted-private-key-6c6c",
		"generated": "planted-random-password-2b2b",
	}
	evs := []*Event{
		{Source: "secretsmanager.amazonaws.com", Action: "PutSecretValue",
			RequestParameters: map[string]any{"secretId": "db", "secretString": secrets["string"], "secretBinary": secrets["binary"]}},
		{Source: "secretsmanager.amazonaws.com", Action: "GetSecretValue", ReturnsSecret: true,
			ResponseElements: map[string]any{"SecretString": secrets["string"], "ARN": "arn:x"}},
		{Source: "sts.amazonaws.com", Action: "AssumeRoleWithWebIdentity",
			RequestParameters: map[string]any{"roleArn": "arn:aws:iam::123456789012:role/app", "webIdentityToken": secrets["webid"]},
			ResponseElements: map[string]any{"credentials": map[string]any{
				"accessKeyId": "ASIAEXAMPLE", "secretAccessKey": secrets["key"], "sessionToken": secrets["token"]}}},
		{Source: "secretsmanager.amazonaws.com", Action: "BatchGetSecretValue",
			ResponseElements: map[string]any{"SecretValues": []any{map[string]any{"Name": "a", "SecretString": secrets["nested"]}}}},
		{Source: "sigil", Action: "CreateDatabaseCredentials",
			ResponseElements: json.RawMessage(`{"engine":{"Password":"` + secrets["password"] + `"},"Secret\u0053tring":"` + secrets["escaped"] + `"}`)},
		{Source: "sigil", Action: "SealImage", RequestParameters: map[string]any{"privateKey": secrets["private"]}},
		{Source: "secretsmanager.amazonaws.com", Action: "GetRandomPassword", ResponseElements: map[string]any{"RandomPassword": secrets["generated"]}},
	}
	for _, ev := range evs {
		if err := l.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for name, v := range secrets {
		if hits := filesContaining(t, dir, []byte(v)); len(hits) > 0 {
			t.Errorf("%s value found in %v", name, hits)
		}
		if bytes.Contains(sink.Bytes(), []byte(v)) {
			t.Errorf("%s value reached the stdout sink", name)
		}
		h := HashValue(keys.HMAC, []byte(v))
		if hits := filesContaining(t, dir, []byte(h)); len(hits) == 0 {
			t.Errorf("the HMAC of the %s value is not in the log", name)
		}
	}
	// Identifiers stay readable.
	if len(filesContaining(t, dir, []byte("ASIAEXAMPLE"))) == 0 || len(filesContaining(t, dir, []byte(`"roleArn":"arn:aws:iam::123456789012:role/app"`))) == 0 {
		t.Error("non-sensitive fields were redacted")
	}
}

func TestHashValueNonString(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	got, err := redact(map[string]any{"password": map[string]any{"b": 1, "a": "x"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"password":"` + HashValue(key, []byte(`{"a":"x","b":1}`)) + `"}`
	if string(got) != want {
		t.Fatalf("redact = %s, want %s", got, want)
	}
	got, err = redact(json.RawMessage(" {\n \"a\" : 1 }\n"), key)
	if err != nil || string(got) != `{"a":1}` {
		t.Fatalf("redact of plain JSON = %s, %v", got, err)
	}
}

// TestKnownTypes: the allocation-free table agrees with the general rule.
func TestKnownTypes(t *testing.T) {
	for _, sr := range [][2]string{{"secretsmanager", "secret"}, {"iam", "role"}, {"iam", "user"}, {"iam", "policy"},
		{"iam", "oidc-provider"}, {"iam", "root"}, {"sts", "assumed-role"}, {"sigil", "image"}} {
		t.Run(sr[0]+":"+sr[1], func(t *testing.T) {
			if got, want := knownType(sr[0], sr[1]), deriveType(sr[0], sr[1]); got != want || got == "" {
				t.Fatalf("knownType = %q, deriveType = %q", got, want)
			}
		})
	}
	if knownType("iam", "group") != "" || deriveType("iam", "group") != "AWS::IAM::Group" {
		t.Fatal("iam group")
	}
}

// TestEventTimeAcrossSeconds checks the encoder's shared eventTime string:
// records in one second get that second, the next second gets its own, and
// a clock that steps back is not given a later second's string.
func TestEventTimeAcrossSeconds(t *testing.T) {
	e := goldenEncoder()
	base := time.Date(2026, 12, 4, 18, 47, 33, 0, time.UTC)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{base, "2026-12-04T18:47:33Z"},
		{base.Add(999 * time.Millisecond), "2026-12-04T18:47:33Z"},
		{base.Add(time.Second), "2026-12-04T18:47:34Z"},
		{base.Add(-time.Nanosecond), "2026-12-04T18:47:32Z"},
		{base.In(time.FixedZone("X", 3600)), "2026-12-04T18:47:33Z"},
	} {
		ev := goldenEvent()
		ev.Time = tc.at
		body, err := e.encodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(body, []byte(`"eventTime":"`+tc.want+`"`)) {
			t.Errorf("event at %v: record does not carry eventTime %s: %.120s", tc.at, tc.want, body)
		}
	}
}
