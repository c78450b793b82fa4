package barrier

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestKeyMaterialPrintsRedacted formats every type that holds key material
// in every way a careless log line might, and checks that neither the raw
// key nor its hex appears, and REDACTED does.
func TestKeyMaterialPrintsRedacted(t *testing.T) {
	f := newFixture(t)
	st := f.b.state.Load()
	dek := st.ring.keys[0].key
	u := &Unsealer{b: f.b, threshold: 2, shares: [][]byte{bytes.Clone(dek[:])}}
	values := map[string]any{
		"secretKey":      st.kek,
		"*secretKey":     &st.kek,
		"dataKey":        st.ring.keys[0],
		"*keyring":       st.ring,
		"keyring":        *st.ring,
		"*state":         st,
		"*Barrier":       f.b,
		"*Unsealer":      u,
		"struct-holding": struct{ K secretKey }{dek},
	}
	needles := map[string]string{
		"KEK raw": string(st.kek[:]), "KEK hex": hex.EncodeToString(st.kek[:]),
		"DEK raw": string(dek[:]), "DEK hex": hex.EncodeToString(dek[:]),
		"DEK decimal": strings.Trim(fmt.Sprint(dek[:4]), "[]"),
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			var outs []string
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d", "%08b"} {
				outs = append(outs, fmt.Sprintf(verb, v))
			}
			if s, ok := v.(fmt.Stringer); ok {
				outs = append(outs, s.String())
			}
			if s, ok := v.(fmt.GoStringer); ok {
				outs = append(outs, s.GoString())
			}
			j, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, string(j))
			var logs bytes.Buffer
			slog.New(slog.NewJSONHandler(&logs, nil)).Info("oops", "value", v)
			slog.New(slog.NewTextHandler(&logs, nil)).Info("oops", "value", v)
			outs = append(outs, logs.String())
			for _, out := range outs {
				if !strings.Contains(out, redactedText) {
					t.Errorf("output %q lacks REDACTED", out)
				}
				for what, n := range needles {
					if strings.Contains(out, n) {
						t.Errorf("output %q contains the %s", out, what)
					}
				}
			}
		})
	}
	if st := fmt.Sprint(f.b.Status()); strings.Contains(st, redactedText) {
		t.Errorf("Status is not secret and should print normally: %s", st)
	}
}
