package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var redactKey = bytes.Repeat([]byte{9}, 32)

func TestCamelName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SecretId", "secretId"},
		{"ARN", "arn"},
		{"KMSKeyId", "kmsKeyId"},
		{"KmsKeyId", "kmsKeyId"},
		{"VersionStages", "versionStages"},
		{"secretId", "secretId"},
		{"A", "a"},
		{"ID2", "id2"},
		{"X509Cert", "x509Cert"},
		{"", ""},
		{"_Private", "_Private"},
		{"Élan", "Élan"},
		{"URLs", "urLs"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			b := []byte(tt.in)
			camelName(b)
			if string(b) != tt.want {
				t.Fatalf("camelName(%q) = %q, want %q", tt.in, b, tt.want)
			}
		})
	}
}

// TestRedact pins the output of the streaming redactor: compact, member
// order kept, names in lower camel case at every depth, sensitive values
// hashed (strings by content, other values by sorted compact encoding),
// null kept, everything else copied as written.
func TestRedact(t *testing.T) {
	h := func(v string) string { return HashValue(redactKey, []byte(v)) }
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"nil", nil, ""},
		{"null", json.RawMessage(" null "), ""},
		{"empty", json.RawMessage(`{ }`), `{}`},
		{"get", json.RawMessage(`{"SecretId":"bench/db"}`), `{"secretId":"bench/db"}`},
		{"response", json.RawMessage(`{"ARN":"arn:x","Name":"db","SecretString":"{\"password\":\"hunter2\"}","VersionStages":["AWSCURRENT"],"CreatedDate":1.7e9}`),
			`{"arn":"arn:x","name":"db","secretString":"` + h(`{"password":"hunter2"}`) + `","versionStages":["AWSCURRENT"],"createdDate":1.7e9}`},
		{"order kept", json.RawMessage(`{"b":1,"a":2}`), `{"b":1,"a":2}`},
		{"nested", json.RawMessage(`{"Tags":[{"Key":"k","Value":"v"}],"Engine":{"Password":"p","Port":5432}}`),
			`{"tags":[{"key":"k","value":"v"}],"engine":{"password":"` + h("p") + `","port":5432}}`},
		{"null kept", json.RawMessage(`{"SecretString":null}`), `{"secretString":null}`},
		{"non-string", json.RawMessage(`{"Password":{"b":1,"a":"x"}}`), `{"password":"` + h(`{"a":"x","b":1}`) + `"}`},
		{"number", json.RawMessage(`{"token":12.50}`), `{"token":"` + h(`12.50`) + `"}`},
		{"escaped name", json.RawMessage(`{"Secret\u0053tring":"s","N\u0061me":"x"}`), `{"secretString":"` + h("s") + `","name":"x"}`},
		{"escaped value", json.RawMessage(`{"Password":"a\"b\u00e9"}`), `{"password":"` + h(`a"bé`) + `"}`},
		{"escapes copied", json.RawMessage(`{"Name":"\u003cb\u003e \/ \n"}`), `{"name":"\u003cb\u003e \/ \n"}`},
		{"invalid utf8", json.RawMessage("{\"Name\":\"a\xffb\"}"), `{"name":"a` + "\ufffd" + `b"}`},
		{"exceptions", json.RawMessage(`{"NextToken":"n","ClientRequestToken":"c"}`), `{"nextToken":"n","clientRequestToken":"c"}`},
		{"kelvin", json.RawMessage(`{"\u212aEK":"s"}`), `{"` + "\u212a" + `EK":"` + h("s") + `"}`},
		{"struct", struct {
			SecretId string
			Tags     []string
		}{"a<b", nil}, `{"secretId":"a\u003cb","tags":null}`},
		{"whitespace", json.RawMessage(" {\n \"a\" : [ 1 , true , null ] }\n"), `{"a":[1,true,null]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := redact(tt.in, redactKey)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("redact =\n %s\nwant\n %s", got, tt.want)
			}
			if tt.want == "" && got != nil {
				t.Fatalf("redact = %q, want nil", got)
			}
		})
	}
}

// badPayloads returns the testdata/bad_payload_*.json documents, each
// malformed in its own way.
func badPayloads(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "bad_payload_*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no bad payloads: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func TestRedactRejectsBadPayloads(t *testing.T) {
	for name, b := range badPayloads(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := redact(json.RawMessage(b), redactKey); !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("redact(%q) = %v, want ErrInvalidEvent", b, err)
			}
		})
	}
}

func TestRedactRejects(t *testing.T) {
	for _, in := range []string{`[1]`, `"s"`, `{`, `{"a":}`, `{"a":1}}`, `{"password":1}]`, `{"a":1} {}`, `{"a":01}`, `{"a":"\x"}`,
		"{\"a\":\"\x01\"}", `{"a":tru}`, `{"a":1,}`, `{a:1}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":"\u12"}`, strings.Repeat("[", 10) + "{"} {
		t.Run(in, func(t *testing.T) {
			if _, err := redact(json.RawMessage(in), redactKey); err == nil {
				t.Fatalf("redact accepted %q", in)
			}
		})
	}
	deep := `{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`
	if _, err := redact(json.RawMessage(deep), redactKey); err == nil || json.Valid([]byte(deep)) {
		t.Fatalf("redact accepted %d levels (json.Valid %v): %v", maxDepth+1, json.Valid([]byte(deep)), err)
	}
}

// camelKeys returns v with every object key camel-cased, and false when
// two keys of one object collide.
func camelKeys(v any) (any, bool) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			b := []byte(k)
			camelName(b)
			if _, dup := out[string(b)]; dup {
				return nil, false
			}
			c, ok := camelKeys(val)
			if !ok {
				return nil, false
			}
			out[string(b)] = c
		}
		return out, true
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			c, ok := camelKeys(e)
			if !ok {
				return nil, false
			}
			out[i] = c
		}
		return out, true
	}
	return v, true
}

func decodeNumbers(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return v
}

// checkRedactAgainstReference fails unless redact accepts exactly the
// documents json.Valid accepts and, where it does, means what the previous
// implementation produced with its member names camel-cased: the same
// values, the same hashes.
func checkRedactAgainstReference(t testing.TB, b []byte) {
	t.Helper()
	got, err := redact(json.RawMessage(b), redactKey)
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		if got != nil || err != nil {
			t.Fatalf("redact(%q) = %q, %v; want nil", b, got, err)
		}
		return
	}
	if valid := json.Valid(trimmed) && trimmed[0] == '{'; valid != (err == nil) {
		t.Fatalf("redact(%q): err %v, but json.Valid says %v", b, err, valid)
	}
	if err != nil {
		return
	}
	if !utf8.Valid(got) {
		t.Fatalf("redact(%q) is not UTF-8: %q", b, got)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, got); err != nil || !bytes.Equal(compact.Bytes(), got) {
		t.Fatalf("redact(%q) = %q is not compact JSON: %v", b, got, err)
	}
	want, err := redactReference(json.RawMessage(b), redactKey)
	if err != nil {
		t.Fatalf("the reference rejects %q: %v", b, err)
	}
	wantDoc, ok := camelKeys(decodeNumbers(t, want))
	if !ok {
		return // camel case merges two names; the comparison is moot
	}
	if gotDoc := decodeNumbers(t, got); !reflect.DeepEqual(gotDoc, wantDoc) {
		t.Fatalf("redact(%q)\n = %s\nreference (camel-cased) means %v", b, got, wantDoc)
	}
}

// redactCorpus is the seed corpus: realistic payloads and edge cases.
func redactCorpus(t testing.TB) [][]byte {
	t.Helper()
	docs := [][]byte{
		[]byte(`{"SecretId":"bench/db"}`),
		[]byte(`{"ARN":"arn:x","Name":"db","VersionId":"v1","SecretString":"{\"password\":\"hunter2\"}","VersionStages":["AWSCURRENT"],"CreatedDate":1.7e9}`),
		[]byte(`{"SecretString":"x","a":[{"Password":"y"}],"b":{"sessionToken":1}}`),
		[]byte(`{"Secret\u0053tring":"x","\ud83d\ude00":"\ud800","k\u00e9":"\udc00\u0041"}`),
		[]byte(`{"Credentials":{"AccessKeyId":"ASIA","SecretAccessKey":"k","SessionToken":"t","Expiration":"2026"}}`),
		[]byte(`{"password":null,"token":[1,{"a":2}],"kek":true,"Shares":["a","b"],"x":-0.5e+10}`),
		[]byte("{\"a\xff\":\"b\xfe\",\"SecretString\":\"c\xfd\"}"),
		[]byte(`{"a":1,"a":2,"Password":"x","password":"y"}`),
		[]byte(" \t{\n}\r\n"),
		[]byte(`{"NextToken":"n","ClientRequestToken":"c","AssumeRoleAssertion":"s"}`),
	}
	for _, name := range []string{"event_v1.jsonl"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, bytes.TrimSpace(b))
	}
	return docs
}

func TestRedactMatchesReference(t *testing.T) {
	for i, b := range redactCorpus(t) {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkRedactAgainstReference(t, b) })
	}
	t.Run("generated", func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for range 2000 {
			b, _ := plantedDoc(r)
			checkRedactAgainstReference(t, b)
		}
	})
}

// FuzzRedactReference: on arbitrary input, redact agrees with json.Valid
// and with the previous implementation (see checkRedactAgainstReference).
func FuzzRedactReference(f *testing.F) {
	for _, b := range redactCorpus(f) {
		f.Add(b)
	}
	for _, b := range badPayloads(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkRedactAgainstReference(t, b) })
}

// plantMarker starts every planted secret value.
const plantMarker = "PLANTED"

// sensitiveSpellings are names SensitiveKey accepts, spelled as emitters
// and attackers might: any case, escapes, a Kelvin sign for K.
var sensitiveSpellings = []string{
	"SecretString", "secretString", "SECRETBINARY", "SecretAccessKey", "SessionToken", "WebIdentityToken", "token",
	"Password", "dbPassword", "ClientSecret", "PrivateKey", "SAMLAssertion", "Passphrase", "Share", "shares", "UnsealKey", "webhookKey", "HmacKey",
	"kek", `Secret\u0053tring`, `\u0070assword`, `\u212aEK`, `pass\u0057ORD`, "RandomPassword", "SecretKey",
}

// plantedDoc builds a random document, with random spacing, that holds
// planted secret values under sensitive names at random depths, and
// returns it with the plain string values planted.
func plantedDoc(r *rand.Rand) ([]byte, []string) {
	var b bytes.Buffer
	var plain []string
	n := 0
	space := func() {
		if r.IntN(4) == 0 {
			b.WriteString([]string{" ", "\n", "\t ", "\r\n  "}[r.IntN(4)])
		}
	}
	plant := func() {
		n++
		v := fmt.Sprintf("%s-%d", plantMarker, n)
		switch r.IntN(5) {
		case 0:
			fmt.Fprintf(&b, `{"inner":"%s","n":[1,"%s"]}`, v, v)
		case 1:
			fmt.Fprintf(&b, `["%s",{"Name":"%s"}]`, v, v)
		case 2:
			fmt.Fprintf(&b, `"\u0050LANTED-%d"`, n) // escaped spelling
			plain = append(plain, v)
		default:
			fmt.Fprintf(&b, `"%s"`, v)
			plain = append(plain, v)
		}
	}
	var value func(depth int)
	value = func(depth int) {
		space()
		switch k := r.IntN(8); {
		case depth < 6 && k < 3:
			b.WriteByte('{')
			for i := range r.IntN(4) {
				if i > 0 {
					b.WriteByte(',')
				}
				space()
				if r.IntN(2) == 0 {
					fmt.Fprintf(&b, `"%s"`, sensitiveSpellings[r.IntN(len(sensitiveSpellings))])
					space()
					b.WriteByte(':')
					space()
					plant()
				} else {
					fmt.Fprintf(&b, `"%s"`, []string{"Name", "ARN", "Tags", "x", "NextToken", "Value"}[r.IntN(6)])
					space()
					b.WriteByte(':')
					value(depth + 1)
				}
				space()
			}
			b.WriteByte('}')
		case depth < 6 && k < 5:
			b.WriteByte('[')
			for i := range r.IntN(4) {
				if i > 0 {
					b.WriteByte(',')
				}
				value(depth + 1)
			}
			b.WriteByte(']')
		default:
			b.WriteString([]string{`"v"`, `1`, `-2.5e3`, `true`, `null`, `"a\"b"`, `"\u00e9"`}[r.IntN(7)])
		}
		space()
	}
	b.WriteByte('{')
	for i := range 1 + r.IntN(3) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%s":`, sensitiveSpellings[r.IntN(len(sensitiveSpellings))])
		plant()
		b.WriteString(`,"Nested":`)
		value(0)
	}
	b.WriteByte('}')
	return b.Bytes(), plain
}

// checkNoPlantSurvives fails if any planted value, in any spelling, is in
// the redacted document, or a plain planted string's HMAC is missing.
func checkNoPlantSurvives(t testing.TB, doc []byte, plain []string) {
	t.Helper()
	out, err := redact(json.RawMessage(doc), redactKey)
	if err != nil {
		t.Fatalf("redact(%s): %v", doc, err)
	}
	if bytes.Contains(out, []byte(plantMarker)) || bytes.Contains(out, []byte("LANTED")) {
		t.Fatalf("a planted value survived:\n in %s\nout %s", doc, out)
	}
	var walk func(v any)
	walk = func(v any) {
		switch t2 := v.(type) {
		case map[string]any:
			for _, e := range t2 {
				walk(e)
			}
		case []any:
			for _, e := range t2 {
				walk(e)
			}
		case string:
			if strings.Contains(t2, plantMarker) {
				t.Fatalf("a planted value survived (decoded): %q in %s", t2, out)
			}
		}
	}
	walk(decodeNumbers(t, out))
	for _, v := range plain {
		if !bytes.Contains(out, []byte(HashValue(redactKey, []byte(v)))) {
			t.Fatalf("the HMAC of %s is missing from %s (input %s)", v, out, doc)
		}
	}
}

func TestRedactPlanted(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		doc, plain := plantedDoc(r)
		checkNoPlantSurvives(t, doc, plain)
	}
}

// FuzzRedactPlanted plants secret values under sensitive names at depths
// and spellings the fuzzer picks; none may survive redaction.
func FuzzRedactPlanted(f *testing.F) {
	for i := range 8 {
		f.Add(uint64(i), uint64(i*7919))
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		doc, plain := plantedDoc(rand.New(rand.NewPCG(a, b)))
		checkNoPlantSurvives(t, doc, plain)
	})
}

// FuzzUnquote: unquote decodes every valid string token as encoding/json.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\n\"\\\/"`, `"\ud83d\ude00"`, `"\ud800x"`, `"\udc00\ud800"`, "\"\xff\xc3\"", `"\ud800\u0041"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, tok []byte) {
		r := redactor{src: tok}
		if len(tok) == 0 || tok[0] != '"' {
			return
		}
		escaped, _, err := r.scanString()
		if err != nil {
			if json.Valid(tok) {
				t.Fatalf("scanString rejects the valid string %q", tok)
			}
			return
		}
		if r.pos != len(tok) {
			return // more than one token
		}
		var want string
		if err := json.Unmarshal(tok, &want); err != nil {
			t.Fatalf("scanString accepts %q, encoding/json does not: %v", tok, err)
		}
		if got := unquote(nil, tok, escaped); string(got) != want {
			t.Fatalf("unquote(%q) = %q, want %q", tok, got, want)
		}
	})
}

// FuzzSensitiveKeyBytes: the allocation-free check agrees with
// SensitiveKey on every name.
func FuzzSensitiveKeyBytes(f *testing.F) {
	for _, k := range append([]string{"SecretString", "NextToken", "x", "\u212aEK", "İtoken", strings.Repeat("a", 60) + "Token"}, sensitiveSpellings...) {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, k string) {
		if got, want := sensitiveKeyBytes([]byte(k)), SensitiveKey(k); got != want {
			t.Fatalf("sensitiveKeyBytes(%q) = %v, SensitiveKey = %v", k, got, want)
		}
	})
}

// TestPooledHMACMatchesHashValue checks that reused HMAC states give the
// same digests as fresh ones, value after value: a state that kept
// anything of the previous value would give a different one.
func TestPooledHMACMatchesHashValue(t *testing.T) {
	var pool macPool
	for i, v := range []string{"", "a", "hunter2", strings.Repeat("x", 1000), "a", ""} {
		for range 3 {
			got := string(appendHashValue([]byte("pre:"), redactKey, []byte(v), &pool))
			if want := "pre:" + HashValue(redactKey, []byte(v)); got != want {
				t.Fatalf("value %d: pooled %s, fresh %s", i, got, want)
			}
		}
	}
	// put resets a state before pooling it, so what waits in the pool
	// holds nothing of the last value: checked on the state itself, not
	// on whatever the pool hands out next (which may be a new one).
	m := pool.get(redactKey)
	m.Write([]byte("a secret tail"))
	m.Sum(nil)
	pool.put(m)
	if got, want := HashPrefix+hex.EncodeToString(m.Sum(nil)), HashValue(redactKey, nil); got != want {
		t.Fatalf("a state put in the pool hashes nothing as %s, a fresh one as %s", got, want)
	}
}
