package secrets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/awsproto"
)

// refEpoch encodes a timestamp the way epoch did before it had a hand
// encoder, as the reference for the tests below.
type refEpoch time.Time

func (e refEpoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(e).UnixMilli()
	if ms < 0 {
		return strconv.AppendFloat(nil, float64(ms)/1000, 'f', 3, 64), nil
	}
	return fmt.Appendf(nil, "%d.%03d", ms/1000, ms%1000), nil
}

// refValueOutput has getSecretValueOutput's wire fields and no encoder of
// its own, so encoding/json encodes it by reflection.
type refValueOutput struct {
	ARN           string
	Name          string
	VersionId     string
	SecretBinary  []byte  `json:",omitempty"`
	SecretString  *string `json:",omitempty"`
	VersionStages []string
	CreatedDate   *refEpoch `json:",omitempty"`
}

// valueCase is one response to encode.
type valueCase struct {
	arn, name, versionID string
	value                []byte
	binary               bool
	stages               []string
	created              int64 // Unix nanoseconds; 0 means none
}

// checkValueJSON encodes c every way the package does and compares each
// with encoding/json's encoding of the reference struct.
func checkValueJSON(t *testing.T, c valueCase) {
	t.Helper()
	out := getSecretValueOutput{ARN: c.arn, Name: c.name, VersionId: c.versionID, VersionStages: c.stages}
	ref := refValueOutput{ARN: c.arn, Name: c.name, VersionId: c.versionID, VersionStages: c.stages}
	rec := &versionRecord{V: formatVersion, Secret: "id", ID: c.versionID, Created: c.created, Kind: kindString, Value: c.value}
	if c.binary {
		rec.Kind = kindBinary
		out.SecretBinary, ref.SecretBinary = c.value, c.value
	} else {
		s := string(c.value)
		out.SecretString, ref.SecretString = &s, &s
	}
	if c.created != 0 {
		e, r := epoch(time.Unix(0, c.created)), refEpoch(time.Unix(0, c.created))
		out.CreatedDate, ref.CreatedDate = &e, &r
	}
	want, err := json.Marshal(&ref)
	if err != nil {
		t.Fatalf("reference encoding: %v", err)
	}
	cached := out
	cached.valueJSON = newVersionValue(rec, true).json
	marshalled, err := json.Marshal(&out)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	for _, got := range []struct {
		how string
		b   []byte
	}{
		{"AppendJSON", out.AppendJSON(nil)},
		{"AppendJSON with the cached value encoding", cached.AppendJSON(nil)},
		{"AppendJSON onto a prefix", bytes.TrimPrefix(cached.AppendJSON([]byte("prefix")), []byte("prefix"))},
		{"json.Marshal", marshalled},
		{"secretValueEntry", mustMarshal(t, secretValueEntry(cached))},
	} {
		if !bytes.Equal(got.b, want) {
			t.Fatalf("%s:\n got %s\nwant %s", got.how, got.b, want)
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// valueSeeds reads testdata/values.
func valueSeeds(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "values", "*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no value testdata: %v", err)
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

func TestValueJSONMatchesEncodingJSON(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/app-AbCdEf"
	shapes := []struct {
		name    string
		binary  bool
		stages  []string
		created int64
	}{
		{"string", false, []string{"AWSCURRENT"}, time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC).UnixNano()},
		{"binary", true, []string{"AWSCURRENT", "AWSPREVIOUS"}, 1},
		{"no labels, no date", false, []string{}, 0},
		{"nil labels", false, nil, 0},
		{"before 1970", true, []string{"x<y>&z"}, -1_500_000_000},
		{"far future", false, []string{"AWSPENDING"}, math.MaxInt64},
	}
	for file, value := range valueSeeds(t) {
		for _, sh := range shapes {
			t.Run(file+"/"+sh.name, func(t *testing.T) {
				checkValueJSON(t, valueCase{arn: arn, name: "db/app", versionID: token("v1"),
					value: value, binary: sh.binary, stages: sh.stages, created: sh.created})
			})
		}
	}
	t.Run("empty values", func(t *testing.T) {
		checkValueJSON(t, valueCase{value: nil, stages: []string{}})
		checkValueJSON(t, valueCase{value: nil, binary: true, stages: []string{}})
	})
}

// FuzzValueJSON checks the hand encoder of value responses against
// encoding/json for arbitrary members.
func FuzzValueJSON(f *testing.F) {
	for _, v := range valueSeeds(f) {
		f.Add("arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf", "x", token("v1"), v, false, "AWSCURRENT", int64(1741964966535000000))
		f.Add(string(v), string(v), string(v), v, true, string(v)+",AWSPREVIOUS", int64(-1))
	}
	f.Fuzz(func(t *testing.T, arn, name, versionID string, value []byte, binary bool, stages string, created int64) {
		var st []string
		if stages != "" {
			st = strings.Split(stages, ",")
		}
		checkValueJSON(t, valueCase{arn: arn, name: name, versionID: versionID, value: value, binary: binary, stages: st, created: created})
	})
}

// checkGetSecretValueInput decodes b with decodeGetSecretValueInput and
// with awsproto.DecodeJSON and requires the same result or the same error.
func checkGetSecretValueInput(t *testing.T, b []byte) {
	t.Helper()
	var fast, slow getSecretValueInput
	errFast := decodeGetSecretValueInput(b, &fast)
	errSlow := awsproto.DecodeJSON(b, &slow)
	if fmt.Sprint(errFast) != fmt.Sprint(errSlow) {
		t.Fatalf("%q: error %v, encoding/json says %v", b, errFast, errSlow)
	}
	if errSlow != nil {
		return
	}
	for _, f := range []struct {
		name       string
		fast, slow *string
	}{{"SecretId", fast.SecretId, slow.SecretId}, {"VersionId", fast.VersionId, slow.VersionId}, {"VersionStage", fast.VersionStage, slow.VersionStage}} {
		if (f.fast == nil) != (f.slow == nil) || (f.fast != nil && *f.fast != *f.slow) {
			t.Fatalf("%q: %s = %v, encoding/json says %v", b, f.name, show(f.fast), show(f.slow))
		}
	}
}

func show(p *string) string {
	if p == nil {
		return "absent"
	}
	return strconv.Quote(*p)
}

func TestGetSecretValueInputTestdata(t *testing.T) {
	seeds := requestSeeds(t)
	accepted := 0
	for name, b := range seeds {
		if !strings.Contains(name, "GetSecretValue_") || strings.Contains(name, "Batch") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			checkGetSecretValueInput(t, b)
		})
		var in getSecretValueInput
		if decodeFlatStrings(b, &in) {
			accepted++
		}
	}
	// The hand decoder takes the plain requests and leaves the rest to
	// encoding/json.
	if accepted < 4 {
		t.Fatalf("the hand decoder accepted %d seed requests, want the plain ones", accepted)
	}
	for _, b := range []string{`{"SecretId":"seed"}`, " {\n\"SecretId\" :\t\"seed\" , \"VersionId\":\"v\",\"VersionStage\":\"s\"}\r\n", `{}`, `{"SecretId":"caf` + "\u00e9" + `"}`} {
		var in getSecretValueInput
		if !decodeFlatStrings([]byte(b), &in) {
			t.Errorf("the hand decoder refused %q", b)
		}
	}
	for _, b := range []string{`{"SecretId":"a\"b"}`, `{"secretid":"x"}`, `{"SecretId":"x","SecretId":"y"}`, `{"SecretId":null}`,
		`{"SecretId":"x"}{}`, "{\"SecretId\":\"\xff\"}", "{\"SecretId\":\"a\tb\"}", `{"SecretId":"x"`, ``, `null`} {
		var in getSecretValueInput
		if decodeFlatStrings([]byte(b), &in) {
			t.Errorf("the hand decoder accepted %q", b)
		}
	}
}

// FuzzGetSecretValueInput checks the GetSecretValue request decoder against
// encoding/json for arbitrary bodies.
func FuzzGetSecretValueInput(f *testing.F) {
	for name, b := range requestSeeds(f) {
		if strings.Contains(name, "GetSecretValue_") && !strings.Contains(name, "Batch") {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkGetSecretValueInput(t, b)
	})
}
