package schedule

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// at parses an RFC 3339 time in UTC for the tables.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v.UTC()
}

func mustParse(t *testing.T, r Rules) *Schedule {
	t.Helper()
	s, err := Parse(r)
	if err != nil {
		t.Fatalf("Parse(%+v): %v", r, err)
	}
	return s
}

func TestNext(t *testing.T) {
	tests := []struct {
		name       string
		rules      Rules
		after      string
		start, end string
	}{
		{"days across a short February", Rules{AutomaticallyAfterDays: 30}, "2025-01-31T13:45:00Z", "2025-03-02T00:00:00Z", "2025-03-03T00:00:00Z"},
		{"days with a window", Rules{AutomaticallyAfterDays: 7, Duration: "3h"}, "2025-03-14T23:59:59Z", "2025-03-21T00:00:00Z", "2025-03-21T03:00:00Z"},
		{"rate day into a leap day", Rules{ScheduleExpression: "rate(1 day)"}, "2024-02-28T23:59:59Z", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"rate day in a common year", Rules{ScheduleExpression: "rate(1 day)"}, "2023-02-28T10:00:00Z", "2023-03-01T00:00:00Z", "2023-03-02T00:00:00Z"},
		{"rate days across a year end", Rules{ScheduleExpression: "rate(10 days)", Duration: "3h"}, "2024-12-25T05:00:00Z", "2025-01-04T00:00:00Z", "2025-01-04T03:00:00Z"},
		{"rate hours across midnight", Rules{ScheduleExpression: "rate(4 hours)"}, "2025-03-14T22:30:00Z", "2025-03-15T02:00:00Z", "2025-03-15T03:00:00Z"},
		{"rate hours with the longest window", Rules{ScheduleExpression: "rate(6 hours)", Duration: "6h"}, "2025-03-14T08:00:00Z", "2025-03-14T14:00:00Z", "2025-03-14T20:00:00Z"},
		{"last day of a leap February", Rules{ScheduleExpression: "cron(0 16 L * ? *)"}, "2024-02-10T00:00:00Z", "2024-02-29T16:00:00Z", "2024-03-01T00:00:00Z"},
		{"last day strictly after", Rules{ScheduleExpression: "cron(0 16 L * ? *)"}, "2024-02-29T16:00:00Z", "2024-03-31T16:00:00Z", "2024-04-01T00:00:00Z"},
		{"last day of a common February", Rules{ScheduleExpression: "cron(0 16 L * ? *)", Duration: "2h"}, "2025-02-01T00:00:00Z", "2025-02-28T16:00:00Z", "2025-02-28T18:00:00Z"},
		{"first Sunday", Rules{ScheduleExpression: "cron(0 0 ? * SUN#1 *)"}, "2025-01-01T00:00:00Z", "2025-01-05T00:00:00Z", "2025-01-06T00:00:00Z"},
		{"second Tuesday of a quarter", Rules{ScheduleExpression: "cron(0 10 ? FEB,MAY,AUG,NOV TUE#2 *)"}, "2025-01-01T00:00:00Z", "2025-02-11T10:00:00Z", "2025-02-12T00:00:00Z"},
		{"fifth Monday skips months without one", Rules{ScheduleExpression: "cron(0 0 ? * 2#5 *)"}, "2025-01-01T00:00:00Z", "2025-03-31T00:00:00Z", "2025-04-01T00:00:00Z"},
		{"W on a Saturday", Rules{ScheduleExpression: "cron(0 8 15W * ? *)"}, "2025-03-01T00:00:00Z", "2025-03-14T08:00:00Z", "2025-03-15T00:00:00Z"},
		{"W on a Sunday", Rules{ScheduleExpression: "cron(0 8 15W * ? *)"}, "2025-06-01T00:00:00Z", "2025-06-16T08:00:00Z", "2025-06-17T00:00:00Z"},
		{"W on the 1st, a Saturday", Rules{ScheduleExpression: "cron(0 0 1W * ? *)"}, "2025-02-28T12:00:00Z", "2025-03-03T00:00:00Z", "2025-03-04T00:00:00Z"},
		{"LW on a Saturday", Rules{ScheduleExpression: "cron(0 0 LW * ? *)"}, "2025-05-01T00:00:00Z", "2025-05-30T00:00:00Z", "2025-05-31T00:00:00Z"},
		{"LW on a Sunday", Rules{ScheduleExpression: "cron(0 0 LW * ? *)"}, "2025-08-01T00:00:00Z", "2025-08-29T00:00:00Z", "2025-08-30T00:00:00Z"},
		{"last Friday", Rules{ScheduleExpression: "cron(0 12 ? * 6L *)"}, "2025-01-01T00:00:00Z", "2025-01-31T12:00:00Z", "2025-02-01T00:00:00Z"},
		{"L alone is Saturday", Rules{ScheduleExpression: "cron(0 6 ? * L *)"}, "2025-03-14T00:00:00Z", "2025-03-15T06:00:00Z", "2025-03-16T00:00:00Z"},
		{"hours increment later today", Rules{ScheduleExpression: "cron(0 4/12 * * ? *)"}, "2025-03-14T05:00:00Z", "2025-03-14T16:00:00Z", "2025-03-14T17:00:00Z"},
		{"hours increment restarts tomorrow", Rules{ScheduleExpression: "cron(0 4/12 * * ? *)"}, "2025-03-14T16:30:00Z", "2025-03-15T04:00:00Z", "2025-03-15T05:00:00Z"},
		{"leap day only", Rules{ScheduleExpression: "cron(0 0 29 2 ? *)"}, "2025-01-01T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z"},
		{"31st skips a 30-day month", Rules{ScheduleExpression: "cron(0 0 31 * ? *)"}, "2025-04-01T00:00:00Z", "2025-05-31T00:00:00Z", "2025-06-01T00:00:00Z"},
		{"weekdays over a weekend", Rules{ScheduleExpression: "cron(0 0 ? * MON-FRI *)", Duration: "2h"}, "2025-03-14T01:00:00Z", "2025-03-17T00:00:00Z", "2025-03-17T02:00:00Z"},
		{"daily at 23 over a year end", Rules{ScheduleExpression: "cron(0 23 * * ? *)"}, "2024-12-31T23:00:00Z", "2025-01-01T23:00:00Z", "2025-01-02T00:00:00Z"},
		{"yearly", Rules{ScheduleExpression: "cron(0 0 1 JAN ? *)"}, "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"},
		{"lower-case names", Rules{ScheduleExpression: "cron(0 2 ? jan-mar,oct sun,wed *)"}, "2025-03-31T00:00:00Z", "2025-10-01T02:00:00Z", "2025-10-02T00:00:00Z"},
		{"stepped day range", Rules{ScheduleExpression: "cron(0 8 1-28/7 * ? *)"}, "2025-03-08T09:00:00Z", "2025-03-15T08:00:00Z", "2025-03-16T00:00:00Z"},
		{"after in another zone is read as UTC", Rules{ScheduleExpression: "rate(1 day)"}, "2025-03-14T23:30:00-05:00", "2025-03-16T00:00:00Z", "2025-03-17T00:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, tc.rules)
			after, err := time.Parse(time.RFC3339, tc.after)
			if err != nil {
				t.Fatal(err)
			}
			w := s.Next(after)
			if !w.Start.Equal(at(t, tc.start)) || !w.End.Equal(at(t, tc.end)) {
				t.Fatalf("Next(%s) = [%s, %s), want [%s, %s)", tc.after, w.Start.Format(time.RFC3339), w.End.Format(time.RFC3339), tc.start, tc.end)
			}
			if w.Start.Location() != time.UTC {
				t.Fatalf("window start in %v, want UTC", w.Start.Location())
			}
		})
	}
}

func TestNextNeverRepeatsAWindow(t *testing.T) {
	// Walking a schedule window by window moves strictly forward, keeps
	// every window inside its UTC day, and for cron never skips a matching
	// opening time (checked against a brute-force hour-by-hour scan).
	for _, expr := range []string{"cron(0 16 L * ? *)", "cron(0 0 ? * SUN#1 *)", "cron(0 8 15W * ? *)", "cron(0 0 LW * ? *)", "cron(0 12 ? * 6L *)", "cron(0 4/12 * * ? *)", "cron(0 0 29 2 ? *)"} {
		t.Run(expr, func(t *testing.T) {
			s := mustParse(t, Rules{ScheduleExpression: expr})
			cur := at(t, "2023-12-31T00:00:00Z")
			for range 12 {
				w := s.Next(cur)
				if !w.Start.After(cur) {
					t.Fatalf("Next(%s) = %s, not later", cur, w.Start)
				}
				if w.End.After(w.Start.Truncate(24 * time.Hour).Add(24 * time.Hour)) {
					t.Fatalf("window [%s, %s) crosses midnight", w.Start, w.End)
				}
				for h := cur.Truncate(time.Hour).Add(time.Hour); h.Before(w.Start); h = h.Add(time.Hour) {
					if s.cron.matchDay(h.Truncate(24*time.Hour)) && s.cron.hours&(1<<h.Hour()) != 0 {
						t.Fatalf("Next(%s) = %s skipped %s", cur, w.Start, h)
					}
				}
				cur = w.Start
			}
		})
	}
}

func TestParseRules(t *testing.T) {
	tests := []struct {
		name   string
		rules  Rules
		window time.Duration
		days   int64
		err    string // substring of the error, "" for success
	}{
		{"days", Rules{AutomaticallyAfterDays: 30}, 24 * time.Hour, 30, ""},
		{"days lowest", Rules{AutomaticallyAfterDays: 1}, 24 * time.Hour, 1, ""},
		{"days highest", Rules{AutomaticallyAfterDays: 1000}, 24 * time.Hour, 1000, ""},
		{"days too many", Rules{AutomaticallyAfterDays: 1001}, 0, 0, "between 1 and 1000"},
		{"days negative", Rules{AutomaticallyAfterDays: -1}, 0, 0, "between 1 and 1000"},
		{"both", Rules{AutomaticallyAfterDays: 3, ScheduleExpression: "rate(3 days)"}, 0, 0, "You cannot specify both rotation frequency and schedule expression together."},
		{"neither", Rules{Duration: "2h"}, 0, 0, "must set AutomaticallyAfterDays or ScheduleExpression"},
		{"rate hours default window", Rules{ScheduleExpression: "rate(12 hours)"}, time.Hour, 0, ""},
		{"rate days default window", Rules{ScheduleExpression: "rate(10 days)"}, 24 * time.Hour, 10, ""},
		{"rate hours window too long", Rules{ScheduleExpression: "rate(4 hours)", Duration: "5h"}, 0, 0, "longer than the 4 hours"},
		{"cron daily default window", Rules{ScheduleExpression: "cron(0 16 * * ? *)"}, 8 * time.Hour, 0, ""},
		{"cron hours default window", Rules{ScheduleExpression: "cron(0 4/12 * * ? *)"}, time.Hour, 0, ""},
		{"cron window into the next day", Rules{ScheduleExpression: "cron(0 20 * * ? *)", Duration: "5h"}, 0, 0, "end of the UTC day"},
		{"cron window at the end of the day", Rules{ScheduleExpression: "cron(0 20 * * ? *)", Duration: "4h"}, 4 * time.Hour, 0, ""},
		{"cron window into the next window", Rules{ScheduleExpression: "cron(0 0,6 * * ? *)", Duration: "7h"}, 0, 0, "longer than the 6 hours"},
		{"bad duration", Rules{AutomaticallyAfterDays: 2, Duration: "2d"}, 0, 0, "Duration must be"},
		{"too long expression", Rules{ScheduleExpression: "cron(0 0 " + strings.Repeat("1,", 130) + "1 * ? *)"}, 0, 0, "at most 256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.rules)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse = %v, want an ErrInvalid containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if s.Window() != tc.window || s.Days() != tc.days || s.Rules() != tc.rules {
				t.Fatalf("window %v days %d rules %+v, want %v %d %+v", s.Window(), s.Days(), s.Rules(), tc.window, tc.days, tc.rules)
			}
		})
	}
}

// readCases reads testdata/<dir>: name -> contents.
func readCases(t testing.TB, dir string) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.txt"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata in %s: %v", dir, err)
	}
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".txt")] = string(b)
	}
	return out
}

func TestExpressionTestdata(t *testing.T) {
	for name, expr := range readCases(t, "expressions") {
		t.Run(name, func(t *testing.T) {
			s, err := ParseExpression(expr)
			if strings.HasPrefix(name, "bad_") {
				if err == nil || !errors.Is(err, ErrInvalid) {
					t.Fatalf("ParseExpression(%q) = %v, want ErrInvalid", expr, err)
				}
				if msg := err.Error(); msg == "" || strings.HasPrefix(msg, "schedule:") || !strings.HasSuffix(msg, ".") {
					t.Fatalf("message %q is not a client-facing sentence", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseExpression(%q): %v", expr, err)
			}
			if w := s.Next(at(t, "2025-03-14T15:09:26Z")); w.IsZero() {
				t.Fatalf("%q has no next window", expr)
			}
		})
	}
}

func TestDurationTestdata(t *testing.T) {
	for name, in := range readCases(t, "durations") {
		t.Run(name, func(t *testing.T) {
			d, err := ParseDuration(in)
			if strings.HasPrefix(name, "bad_") {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ParseDuration(%q) = %v, %v; want ErrInvalid", in, d, err)
				}
				return
			}
			if err != nil || d < time.Hour || d > 24*time.Hour || d%time.Hour != 0 {
				t.Fatalf("ParseDuration(%q) = %v, %v", in, d, err)
			}
		})
	}
}

func TestPickSpreadsUniformly(t *testing.T) {
	w := Window{Start: at(t, "2025-03-14T00:00:00Z"), End: at(t, "2025-03-14T10:00:00Z")}
	rng := rand.NewChaCha8([32]byte{7})
	const n, buckets = 20000, 10
	var counts [buckets]int
	for range n {
		p := Pick(w, rng)
		if !w.Contains(p) {
			t.Fatalf("Pick = %s, outside [%s, %s)", p, w.Start, w.End)
		}
		if p.Sub(w.Start)%time.Millisecond != 0 {
			t.Fatalf("Pick = %s, not on a millisecond", p)
		}
		counts[int(p.Sub(w.Start)/time.Hour)]++
	}
	// Each hour expects 2000 picks; a fair source stays well within ±10%.
	for i, c := range counts {
		if c < n/buckets*9/10 || c > n/buckets*11/10 {
			t.Fatalf("hour %d got %d of %d picks: %v", i, c, n, counts)
		}
	}
}

func TestPickEdgeCases(t *testing.T) {
	start := at(t, "2025-03-14T00:00:00Z")
	tests := []struct {
		name string
		w    Window
		r    *bytes.Reader
		want time.Time
	}{
		{"empty window", Window{Start: start, End: start}, bytes.NewReader(bytes.Repeat([]byte{0xff}, 8)), start},
		{"one millisecond", Window{Start: start, End: start.Add(time.Millisecond)}, bytes.NewReader(bytes.Repeat([]byte{0xff}, 8)), start},
		{"failing source", Window{Start: start, End: start.Add(time.Hour)}, bytes.NewReader(nil), start},
		// 1000 ms: the 8 bytes 0...0 0x03 0xe9 are 1001, which lands on 1 ms.
		{"known value", Window{Start: start, End: start.Add(time.Second)}, bytes.NewReader([]byte{0, 0, 0, 0, 0, 0, 0x03, 0xe9}), start.Add(time.Millisecond)},
		// The top value is rejected (it would bias the result) and the next
		// one is used.
		{"rejected value", Window{Start: start, End: start.Add(3 * time.Millisecond)},
			bytes.NewReader(append(bytes.Repeat([]byte{0xff}, 8), 0, 0, 0, 0, 0, 0, 0, 2)), start.Add(2 * time.Millisecond)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Pick(tc.w, tc.r); !got.Equal(tc.want) {
				t.Fatalf("Pick = %s, want %s", got, tc.want)
			}
		})
	}
}
