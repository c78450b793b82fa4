package jsonenc

import (
	"bytes"
	"encoding/json"
	"testing"
)

// awkward exercises every escaping rule of encoding/json.
var awkward = []string{
	"", "plain", `quote"d`, `back\slash`, "\b\f\n\r\t", "\x00\x01\x1f\x7f", "<a href='x'>&amp;</a>",
	"line\u2028sep\u2029para", "bad\xffutf8\xc3", "trunc\xe2\x82", "héllo wörld ✓ 🎉", "\ufffd",
	"\xed\xa0\x80 surrogate", "arn:aws:iam::123456789012:role/x",
}

// reference is encoding/json's encoding of s, with or without HTML
// escaping, without the Encoder's newline.
func reference(t testing.TB, s string, html bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// check compares both functions, on s as a string and as bytes, with
// encoding/json.
func check(t testing.TB, s string) {
	t.Helper()
	for _, html := range []bool{true, false} {
		want := reference(t, s, html)
		var fromString, fromBytes []byte
		if html {
			fromString, fromBytes = AppendString([]byte("x"), s), AppendString([]byte("x"), []byte(s))
		} else {
			fromString, fromBytes = AppendStringNoHTML([]byte("x"), s), AppendStringNoHTML([]byte("x"), []byte(s))
		}
		for _, got := range [][]byte{fromString, fromBytes} {
			if !bytes.Equal(got[1:], want) || got[0] != 'x' {
				t.Fatalf("html=%v: %q encodes as %s, encoding/json as %s", html, s, got, want)
			}
		}
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	cases := append([]string{}, awkward...)
	for b := range 256 {
		cases = append(cases, string([]byte{byte(b)}), "a"+string([]byte{byte(b)})+"z")
	}
	for _, s := range cases {
		check(t, s)
	}
}

// TestPlain checks Plain against what AppendStringNoHTML does with each
// byte: a plain byte is copied, any other is escaped or replaced.
func TestPlain(t *testing.T) {
	for b := range 256 {
		c := byte(b)
		copied := bytes.Equal(AppendStringNoHTML(nil, []byte{c}), []byte{'"', c, '"'})
		if Plain(c) != copied {
			t.Errorf("Plain(%#x) = %v, but AppendStringNoHTML copies it: %v", c, Plain(c), copied)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range awkward {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { check(t, s) })
}
