// Package schedule parses the rotation schedules of AWS Secrets Manager and
// computes their rotation windows, so that sigil rotates a secret when AWS
// would.
//
// # Using it
//
// A secret's RotationRules are given to [Parse] as [Rules]. Exactly one of
// AutomaticallyAfterDays and ScheduleExpression sets the schedule:
//
//   - AutomaticallyAfterDays N (1-1000): every N days, counted from the day of
//     the last rotation; the window opens at midnight UTC.
//   - rate(N hours) (4-23) or rate(N days) (1-999): every N hours or days,
//     counted from the last rotation. Windows in days open at midnight UTC;
//     windows in hours open on the hour, N hours after the hour of the last
//     rotation.
//   - cron(Minutes Hours Day-of-month Month Day-of-week Year) in AWS's
//     six-field syntax, in UTC: Minutes must be 0 and Year must be *, because
//     rotation windows open on the hour and Secrets Manager schedules repeat
//     within a year. Hours take 0-23, Day-of-month 1-31, Month 1-12 or
//     JAN-DEC, Day-of-week 1-7 or SUN-SAT (1 is Sunday), with the wildcards
//     AWS documents: * (every value), ? (no value: exactly one of
//     Day-of-month and Day-of-week must be ?), , (lists), - (ranges), /
//     (increments, "4/12" is 4:00 and 16:00), L (Day-of-month: the last day
//     of the month; Day-of-week: alone, Saturday, after a day, the last such
//     day of the month, "6L" is the last Friday), W (Day-of-month: the
//     weekday nearest the given day within the month, "LW" the last weekday
//     of the month) and # (Day-of-week: "3#2" is the second Tuesday). Names
//     are case-insensitive.
//
// Duration ("1h" to "24h") sets the length of the window. Without it, a
// schedule in hours (a rate in hours, or a cron expression whose Hours field
// names more than one hour) has a one-hour window and a schedule in days a
// window that closes at the end of the UTC day. As AWS requires, a window
// never extends into the next UTC day, a schedule in hours never repeats
// more often than every four hours, and its window never reaches into the
// next one.
//
// [Schedule.Next] returns the next [Window] after a given instant (for rate
// and AutomaticallyAfterDays schedules, the instant of the last rotation),
// and [Pick] chooses an instant inside a window uniformly at random, so that
// thousands of secrets on the same schedule rotate spread over their window
// rather than in the same second.
//
// Errors from Parse match [ErrInvalid] and their text is written to be shown
// to clients as an InvalidParameterException message. All times are UTC;
// UTC has no daylight-saving shifts, so every day has 24 hours.
package schedule

import (
	"encoding/binary"
	"io"
	"strconv"
	"strings"
	"time"
)

// Limits of the RotationRules members, from the Secrets Manager API
// reference and user guide.
const (
	// MinDays and MaxDays bound AutomaticallyAfterDays.
	MinDays = 1
	MaxDays = 1000
	// MinRateHours and MaxRateHours bound rate(N hours); a longer period is
	// written in days.
	MinRateHours = 4
	MaxRateHours = 23
	// MaxRateDays is the longest rate(N days), the longest rotation period
	// the Secrets Manager user guide allows.
	MaxRateDays = 999
	// MaxExpressionLen is the longest ScheduleExpression.
	MaxExpressionLen = 256
	// minHoursApart is the shortest time between two rotations, in hours.
	minHoursApart = 4
)

// Rules are a secret's RotationRules as RotateSecret receives them. The zero
// value of a member means it is absent.
type Rules struct {
	// AutomaticallyAfterDays is the number of days between rotations
	// (1-1000), or 0 when ScheduleExpression sets the schedule.
	AutomaticallyAfterDays int64
	// ScheduleExpression is a rate() or cron() expression, or "".
	ScheduleExpression string
	// Duration is the length of the window, "1h" to "24h", or "" for the
	// default.
	Duration string
}

// Window is a rotation window: a rotation may run at any instant in
// [Start, End). The zero Window means there is none.
type Window struct {
	Start, End time.Time
}

// IsZero reports whether w is the zero Window.
func (w Window) IsZero() bool { return w.Start.IsZero() && w.End.IsZero() }

// Contains reports whether t lies in [w.Start, w.End).
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Start) && t.Before(w.End) }

// kind says how a Schedule computes its windows.
type kind uint8

const (
	kindDays  kind = iota + 1 // every n days from the day of the last rotation
	kindHours                 // every n hours from the hour of the last rotation
	kindCron                  // at the times a cron expression names
)

// Schedule is a parsed, valid set of rotation rules. It is immutable and
// safe for concurrent use.
type Schedule struct {
	rules  Rules
	kind   kind
	n      int // days or hours for kindDays and kindHours
	cron   *cronExpr
	window time.Duration
}

// Parse checks r and returns its Schedule. Errors match ErrInvalid.
func Parse(r Rules) (*Schedule, error) {
	var s *Schedule
	switch {
	case r.AutomaticallyAfterDays != 0 && r.ScheduleExpression != "":
		return nil, invalid("You cannot specify both rotation frequency and schedule expression together.")
	case r.AutomaticallyAfterDays != 0:
		if r.AutomaticallyAfterDays < MinDays || r.AutomaticallyAfterDays > MaxDays {
			return nil, invalid("RotationRules.AutomaticallyAfterDays must be between %d and %d.", MinDays, MaxDays)
		}
		s = &Schedule{kind: kindDays, n: int(r.AutomaticallyAfterDays)}
	case r.ScheduleExpression != "":
		var err error
		if s, err = ParseExpression(r.ScheduleExpression); err != nil {
			return nil, err
		}
	default:
		return nil, invalid("RotationRules must set AutomaticallyAfterDays or ScheduleExpression.")
	}
	s.rules = r
	s.window = s.defaultWindow()
	if r.Duration != "" {
		d, err := ParseDuration(r.Duration)
		if err != nil {
			return nil, err
		}
		if err := s.checkWindow(d); err != nil {
			return nil, err
		}
		s.window = d
	}
	return s, nil
}

// ParseExpression parses a ScheduleExpression on its own, with the default
// window. Errors match ErrInvalid.
func ParseExpression(expr string) (*Schedule, error) {
	if len(expr) > MaxExpressionLen {
		return nil, invalid("RotationRules.ScheduleExpression must be at most %d characters long.", MaxExpressionLen)
	}
	var s *Schedule
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		n, unit, err := parseRate(expr[len("rate(") : len(expr)-1])
		if err != nil {
			return nil, err
		}
		s = &Schedule{kind: unit, n: n}
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		c, err := parseCron(expr[len("cron(") : len(expr)-1])
		if err != nil {
			return nil, err
		}
		s = &Schedule{kind: kindCron, cron: c}
	default:
		return nil, invalid("RotationRules.ScheduleExpression must be a rate() or cron() expression, such as rate(10 days) or cron(0 16 1,15 * ? *).")
	}
	s.rules = Rules{ScheduleExpression: expr}
	s.window = s.defaultWindow()
	return s, nil
}

// parseRate parses the inside of rate(...): a positive integer and a unit.
func parseRate(body string) (int, kind, error) {
	fields := strings.Fields(body)
	if len(fields) != 2 {
		return 0, 0, invalid("A rate expression must have the form rate(Value Unit), such as rate(12 hours) or rate(10 days).")
	}
	n, ok := parseNumber(fields[0])
	if !ok {
		return 0, 0, invalid("The value of a rate expression must be a positive whole number.")
	}
	switch fields[1] {
	case "hour", "hours":
		if n < MinRateHours || n > MaxRateHours {
			return 0, 0, invalid("A rate expression in hours must be between rate(%d hours) and rate(%d hours); you can rotate a secret at most every four hours, and longer periods are written in days.", MinRateHours, MaxRateHours)
		}
		return n, kindHours, nil
	case "day", "days":
		if n < 1 || n > MaxRateDays {
			return 0, 0, invalid("A rate expression in days must be between rate(1 day) and rate(%d days).", MaxRateDays)
		}
		return n, kindDays, nil
	}
	return 0, 0, invalid("The unit of a rate expression must be hour, hours, day or days.")
}

// parseNumber parses a decimal number of at most 4 digits without sign.
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > 4 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// ParseDuration parses a window Duration: "1h" to "24h". Errors match
// ErrInvalid.
func ParseDuration(s string) (time.Duration, error) {
	h, ok := strings.CutSuffix(s, "h")
	n, isNum := parseNumber(h)
	if !ok || !isNum || len(h) > 2 || n < 1 || n > 24 {
		return 0, invalid("RotationRules.Duration must be a number of hours from 1h to 24h, such as 3h.")
	}
	return time.Duration(n) * time.Hour, nil
}

// inHours reports whether the schedule is in hours (more than one rotation
// a day), which sets the default window to one hour.
func (s *Schedule) inHours() bool {
	switch s.kind {
	case kindHours:
		return true
	case kindCron:
		return s.cron.hourCount() > 1
	}
	return false
}

// defaultWindow is the window without a Duration.
func (s *Schedule) defaultWindow() time.Duration {
	switch {
	case s.inHours():
		return time.Hour
	case s.kind == kindCron:
		return time.Duration(24-s.cron.firstHour()) * time.Hour
	}
	return 24 * time.Hour
}

// checkWindow checks that a window of d fits the schedule: it never reaches
// into the next window, nor, for schedules that open at fixed hours, into
// the next UTC day.
func (s *Schedule) checkWindow(d time.Duration) error {
	hours := int(d / time.Hour)
	switch s.kind {
	case kindHours:
		if hours > s.n {
			return invalid("RotationRules.Duration (%s) must not be longer than the %d hours between rotations, so that a rotation window never reaches into the next one.", s.rules.Duration, s.n)
		}
	case kindCron:
		if gap := s.cron.minGap(); gap > 0 && hours > gap {
			return invalid("RotationRules.Duration (%s) must not be longer than the %d hours between rotations, so that a rotation window never reaches into the next one.", s.rules.Duration, gap)
		}
		if last := s.cron.lastHour(); last+hours > 24 {
			return invalid("RotationRules.Duration (%s) is too long: the rotation window opening at %02d:00 UTC must close by the end of the UTC day.", s.rules.Duration, last)
		}
	}
	return nil
}

// Rules returns the rules s was parsed from.
func (s *Schedule) Rules() Rules { return s.rules }

// Window returns the length of every rotation window of s.
func (s *Schedule) Window() time.Duration { return s.window }

// Days returns the number of days between rotations for a schedule in
// whole days (AutomaticallyAfterDays or rate(N days)), and 0 for any other
// schedule. DescribeSecret reports it as AutomaticallyAfterDays.
func (s *Schedule) Days() int64 {
	if s.kind == kindDays {
		return int64(s.n)
	}
	return 0
}

// Next returns the first window of s that opens after after. For
// AutomaticallyAfterDays and rate() schedules after is the time of the last
// rotation, and the window opens N days after the midnight (UTC) before it,
// or N hours after the hour before it. For cron() schedules it is the first
// window whose opening time, as the expression names it, is later than
// after. Next returns the zero Window only for a cron expression that fires
// on no day in the eight years after after (which Parse refuses for every
// starting point it can tell).
func (s *Schedule) Next(after time.Time) Window {
	after = after.UTC()
	var start time.Time
	switch s.kind {
	case kindDays:
		y, m, d := after.Date()
		start = time.Date(y, m, d+s.n, 0, 0, 0, 0, time.UTC)
	case kindHours:
		start = after.Truncate(time.Hour).Add(time.Duration(s.n) * time.Hour)
	case kindCron:
		var ok bool
		if start, ok = s.cron.next(after); !ok {
			return Window{}
		}
	}
	return Window{Start: start, End: start.Add(s.window)}
}

// Pick returns an instant drawn uniformly, at millisecond granularity, from
// w, using r (crypto/rand.Reader in production) as the source of
// randomness. An empty window, or a failing r, gives w.Start, which always
// lies in the window.
func Pick(w Window, r io.Reader) time.Time {
	n := uint64(w.End.Sub(w.Start) / time.Millisecond)
	if n <= 1 {
		return w.Start
	}
	// Rejection sampling: values at or above limit would bias the result.
	limit := ^uint64(0) - ^uint64(0)%n
	var b [8]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return w.Start
		}
		if v := binary.BigEndian.Uint64(b[:]); v < limit {
			return w.Start.Add(time.Duration(v%n) * time.Millisecond)
		}
	}
}
