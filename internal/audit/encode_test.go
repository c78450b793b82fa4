package audit

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// awkwardStrings exercise every escaping rule of encoding/json: quotes,
// backslashes, short and \u00XX control escapes, HTML characters (not
// escaped with SetEscapeHTML(false)), U+2028/U+2029, invalid UTF-8 and
// multi-byte runes.
var awkwardStrings = []string{
	"", "plain", `quote"d`, `back\slash`, "\b\f\n\r\t", "\x00\x01\x1f\x7f", "<a href='x'>&amp;</a>",
	"line\u2028sep\u2029para", "bad\xffutf8\xc3", "trunc\xe2\x82", "héllo wörld ✓ 🎉", "\ufffd", "arn:aws:iam::123456789012:role/x",
}

// genString returns a random string mixing awkward fragments.
func genString(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(4) {
		b.WriteString(awkwardStrings[r.IntN(len(awkwardStrings))])
	}
	return b.String()
}

// genOpt returns an empty string half the time, to exercise omitempty.
func genOpt(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		return ""
	}
	return genString(r)
}

// genRecord builds a Record with every optional part present or absent at
// random. Payloads are what redact produces, as in encodeEvent.
func genRecord(t testing.TB, r *rand.Rand) *Record {
	t.Helper()
	rec := &Record{
		EventVersion: genString(r), EventTime: genString(r), EventSource: genString(r), EventName: genString(r),
		AWSRegion: genString(r), SourceIPAddress: genString(r), UserAgent: genString(r),
		ErrorCode: genOpt(r), ErrorMessage: genOpt(r), RequestID: genOpt(r), EventID: genString(r),
		ReadOnly: r.IntN(2) == 0, EventType: genString(r), ManagementEvent: r.IntN(2) == 0,
		RecipientAccountID: genString(r), EventCategory: genString(r),
	}
	if r.IntN(4) != 0 {
		u := &UserIdentity{Type: genString(r), PrincipalID: genOpt(r), ARN: genOpt(r), AccountID: genOpt(r),
			AccessKeyID: genOpt(r), UserName: genOpt(r), IdentityProvider: genOpt(r)}
		if r.IntN(2) == 0 {
			sc := &SessionContext{}
			if r.IntN(2) == 0 {
				sc.SessionIssuer = &SessionIssuer{Type: genString(r), PrincipalID: genOpt(r), ARN: genOpt(r), AccountID: genOpt(r), UserName: genOpt(r)}
			}
			if r.IntN(2) == 0 {
				w := &WebIDFederationData{FederatedProvider: genOpt(r)}
				switch r.IntN(3) {
				case 1:
					w.Attributes = map[string]string{}
				case 2:
					w.Attributes = map[string]string{}
					for range 1 + r.IntN(20) {
						w.Attributes[genString(r)] = genString(r)
					}
				}
				sc.WebIDFederationData = w
			}
			if r.IntN(2) == 0 {
				sc.Attributes = &SessionAttributes{CreationDate: genOpt(r), MFAAuthenticated: genOpt(r)}
			}
			u.SessionContext = sc
		}
		rec.UserIdentity = u
	}
	for range r.IntN(3) {
		rec.Resources = append(rec.Resources, Resource{ARN: genString(r), AccountID: genOpt(r), Type: genOpt(r)})
	}
	if r.IntN(5) == 0 {
		rec.Resources = []Resource{}
	}
	payload := func() json.RawMessage {
		if r.IntN(3) == 0 {
			return nil
		}
		m := map[string]any{genString(r): genString(r), "SecretString": genString(r), "n": r.IntN(1000) - 500,
			"nested": map[string]any{"Password": genString(r), "list": []any{genString(r), 1.5, true, nil}}}
		out, err := redact(m, bytes.Repeat([]byte{3}, 32))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	rec.RequestParameters, rec.ResponseElements = payload(), payload()
	a := &rec.AdditionalEventData
	a.Decision, a.Reason, a.Policy, a.Statement = genOpt(r), genOpt(r), genOpt(r), genOpt(r)
	a.ReturnsSecret = r.IntN(2) == 0
	a.ImageDigest = genOpt(r)
	if r.IntN(2) == 0 {
		a.Kubernetes = &Kubernetes{Namespace: genOpt(r), ServiceAccount: genOpt(r), Pod: genOpt(r)}
	}
	ints := []int64{0, 1, -1, 42, 1 << 40, -1 << 62}
	a.LatencyMicros = ints[r.IntN(len(ints))]
	a.Segment = int(ints[r.IntN(len(ints))])
	a.StartReason, a.PreviousSegment = genOpt(r), genOpt(r)
	a.PreviousSegmentBytes = ints[r.IntN(len(ints))]
	a.Final = r.IntN(2) == 0
	a.KeyID, a.Signature = genOpt(r), genOpt(r)
	seqs := []uint64{0, 1, 1 << 63, ^uint64(0)}
	a.Sequence = seqs[r.IntN(len(seqs))]
	a.PreviousHash = genOpt(r)
	return rec
}

// checkAppendRecord fails unless appendRecord and encoding/json agree on rec.
func checkAppendRecord(t testing.TB, rec *Record) {
	t.Helper()
	want, err := marshalCompact(rec)
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("prefix")
	got := appendRecord(bytes.Clone(prefix), rec)
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("appendRecord differs from encoding/json:\n got %q\nwant %q", got[len(prefix):], want)
	}
}

// TestAppendRecordMatchesEncodingJSON proves the hand-written encoder
// byte-identical to encoding/json over many generated records.
func TestAppendRecordMatchesEncodingJSON(t *testing.T) {
	t.Run("zero", func(t *testing.T) { checkAppendRecord(t, &Record{}) })
	t.Run("golden", func(t *testing.T) {
		body, err := goldenEncoder().encodeEvent(goldenEvent())
		if err != nil {
			t.Fatal(err)
		}
		var rec Record
		if err := json.Unmarshal(append(body, "}}"...), &rec); err != nil {
			t.Fatal(err)
		}
		checkAppendRecord(t, &rec)
	})
	t.Run("generated", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for range 5000 {
			checkAppendRecord(t, genRecord(t, r))
		}
	})
}

// TestEncodeEventMatchesEncodingJSON runs whole events through encodeEvent
// and checks the body against encoding/json of the same Record.
func TestEncodeEventMatchesEncodingJSON(t *testing.T) {
	enc := goldenEncoder()
	evs := []*Event{goldenEvent(), sampleEvent(7), {Source: "sigil", Action: "X"},
		{Source: "s", Action: "a", Identity: &UserIdentity{Type: "WebIdentityUser", IdentityProvider: "https://issuer"}, Resources: []string{"*", ""}}}
	for i, ev := range evs {
		body, err := enc.encodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		var rec Record
		if err := json.Unmarshal(append(bytes.Clone(body), "}}"...), &rec); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		want, err := marshalCompact(&rec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(append(body, "}}"...), want) {
			t.Fatalf("event %d:\n got %s}}\nwant %s", i, body, want)
		}
	}
}

// TestAppendJSONString checks string escaping against encoding/json on
// every single byte and on the awkward strings.
func TestAppendJSONString(t *testing.T) {
	cases := append([]string{}, awkwardStrings...)
	for b := range 256 {
		cases = append(cases, string([]byte{byte(b)}), "a"+string([]byte{byte(b)})+"z")
	}
	for _, s := range cases {
		want, err := marshalCompact(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

// FuzzAppendRecord compares appendRecord with encoding/json on records
// whose strings come from the fuzzer.
func FuzzAppendRecord(f *testing.F) {
	for _, s := range awkwardStrings {
		f.Add(s, "GetSecretValue", uint64(7), int64(-3), uint8(0xff))
	}
	f.Add("", "", uint64(0), int64(0), uint8(0))
	f.Fuzz(func(t *testing.T, a, b string, seq uint64, n int64, flags uint8) {
		on := func(bit uint) bool { return flags&(1<<bit) != 0 }
		opt := func(bit uint, s string) string {
			if on(bit) {
				return s
			}
			return ""
		}
		rec := &Record{EventVersion: a, EventTime: b, EventSource: a + b, EventName: b, AWSRegion: a,
			ErrorCode: opt(0, a), ErrorMessage: opt(1, b), RequestID: opt(2, a), EventID: b, ReadOnly: on(3), ManagementEvent: on(4)}
		if on(5) {
			rec.UserIdentity = &UserIdentity{Type: a, ARN: opt(6, b), SessionContext: &SessionContext{
				WebIDFederationData: &WebIDFederationData{Attributes: map[string]string{a: b, b: a, a + b: ""}}}}
		}
		if on(6) {
			rec.Resources = []Resource{{ARN: a, Type: opt(7, b)}, {ARN: b}}
		}
		rec.AdditionalEventData = AdditionalEventData{Decision: opt(0, b), ReturnsSecret: on(1), LatencyMicros: n,
			Segment: int(int32(n)), PreviousSegmentBytes: -n, Final: on(2), Sequence: seq, PreviousHash: opt(3, a)}
		if on(7) {
			rec.AdditionalEventData.Kubernetes = &Kubernetes{Namespace: a, Pod: opt(4, b)}
		}
		if raw, err := redact(json.RawMessage(`{"`+string(appendJSONString(nil, a))[1:]+`:1}`), []byte("k")); err == nil {
			rec.RequestParameters = raw
		}
		checkAppendRecord(t, rec)
	})
}
