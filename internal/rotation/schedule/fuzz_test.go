package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseExpression feeds arbitrary expressions (seeded from
// testdata/expressions) to Parse, with and without a window: it must never
// panic, every error must match ErrInvalid with a client-facing message, and
// every accepted schedule must produce windows that open on the hour, after
// the given instant, no longer than a day, and inside one UTC day for
// schedules that open at fixed hours.
func FuzzParseExpression(f *testing.F) {
	for _, expr := range readCases(f, "expressions") {
		f.Add(expr, "", int64(1741964966))
		f.Add(expr, "2h", int64(951782400)) // 2000-02-29
	}
	f.Fuzz(func(t *testing.T, expr, dur string, unix int64) {
		s, err := Parse(Rules{ScheduleExpression: expr, Duration: dur})
		if err != nil {
			if !errors.Is(err, ErrInvalid) || err.Error() == "" {
				t.Fatalf("Parse(%q, %q) = %v, not an ErrInvalid message", expr, dur, err)
			}
			return
		}
		after := time.Unix(unix%(1<<36), 0).UTC() // years 1970..4147
		w := s.Next(after)
		if w.IsZero() {
			if s.kind != kindCron {
				t.Fatalf("%q: no window after %s", expr, after)
			}
			return
		}
		if !w.Start.After(after) || w.Start.Minute() != 0 || w.Start.Second() != 0 || w.Start.Nanosecond() != 0 {
			t.Fatalf("%q: window opens at %s after %s", expr, w.Start, after)
		}
		if d := w.End.Sub(w.Start); d < time.Hour || d > 24*time.Hour || d != s.Window() {
			t.Fatalf("%q: window of %v", expr, d)
		}
		if s.kind == kindCron && w.End.After(w.Start.Truncate(24*time.Hour).Add(24*time.Hour)) {
			t.Fatalf("%q: window [%s, %s) crosses midnight", expr, w.Start, w.End)
		}
		if strings.HasPrefix(expr, "cron(") && !s.cron.matchDay(w.Start.Truncate(24*time.Hour)) {
			t.Fatalf("%q: window opens on a day the expression does not name", expr)
		}
	})
}

// FuzzParseDuration checks ParseDuration on arbitrary input (seeded from
// testdata/durations): whole hours from 1 to 24 or an ErrInvalid.
func FuzzParseDuration(f *testing.F) {
	for _, in := range readCases(f, "durations") {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d, err := ParseDuration(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseDuration(%q) = %v", in, err)
			}
			return
		}
		if d < time.Hour || d > 24*time.Hour || d%time.Hour != 0 {
			t.Fatalf("ParseDuration(%q) = %v", in, d)
		}
	})
}
