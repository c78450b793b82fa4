package schedule

import (
	"math/bits"
	"strings"
	"time"
)

// cronExpr is a parsed cron() expression. Sets of values are bit masks:
// bit h of hours, bit d (1-31) of days, bit m (1-12) of months, bit w (1-7,
// 1 is Sunday) of weekdays.
type cronExpr struct {
	hours  uint32
	months uint16
	// byWeekday is true when Day-of-month is ? and Day-of-week chooses the
	// days; otherwise Day-of-week is ? and Day-of-month chooses them.
	byWeekday bool

	days        uint32 // plain days of the month
	lastDay     bool   // L
	lastWeekday bool   // LW
	nearest     uint32 // nW: the weekday nearest day n

	weekdays uint8    // plain days of the week
	lastOf   uint8    // nL: the last such weekday of the month
	nth      [8]uint8 // n#k: bit k of nth[n]
}

// maxSearchDays bounds the search for the next matching day: eight years
// cover every combination of month lengths, leap years and weekdays.
const maxSearchDays = 8*366 + 1

// cronReference is the starting point Parse uses to check that an
// expression fires at all.
var cronReference = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	monthNames   = []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	weekdayNames = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
)

// field describes one cron field for parsing.
type field struct {
	name     string
	min, max int
	names    []string // names for min, min+1, ...
}

var (
	hoursField   = field{name: "Hours", min: 0, max: 23}
	daysField    = field{name: "Day-of-month", min: 1, max: 31}
	monthsField  = field{name: "Month", min: 1, max: 12, names: monthNames}
	weekdayField = field{name: "Day-of-week", min: 1, max: 7, names: weekdayNames}
)

// parseCron parses the six fields inside cron(...).
func parseCron(body string) (*cronExpr, error) {
	fs := strings.Fields(body)
	if len(fs) != 6 {
		return nil, invalid("A cron expression must have six fields: cron(Minutes Hours Day-of-month Month Day-of-week Year), such as cron(0 16 1,15 * ? *).")
	}
	if fs[0] != "0" {
		return nil, invalid("The Minutes field of a cron expression must be 0, because Secrets Manager rotation windows open on the hour.")
	}
	if fs[5] != "*" {
		return nil, invalid("The Year field of a cron expression must be *, because Secrets Manager does not support rotation schedules that are more than a year apart.")
	}
	c := &cronExpr{}
	hours, err := parseSet(fs[1], hoursField)
	if err != nil {
		return nil, err
	}
	c.hours = uint32(hours)
	months, err := parseSet(fs[3], monthsField)
	if err != nil {
		return nil, err
	}
	c.months = uint16(months)
	dom, dow := fs[2], fs[4]
	switch {
	case dom == "?" && dow == "?":
		return nil, invalid("A cron expression can't use ? in both the Day-of-month and the Day-of-week field; use * in one of them.")
	case dom != "?" && dow != "?":
		return nil, invalid("A cron expression can't specify both Day-of-month and Day-of-week: use ? in one of them.")
	case dom == "?":
		c.byWeekday = true
		err = c.parseWeekdays(dow)
	default:
		err = c.parseDays(dom)
	}
	if err != nil {
		return nil, err
	}
	if gap := c.minGap(); gap > 0 && gap < minHoursApart {
		return nil, invalid("The Hours field of a cron expression must keep rotations at least %d hours apart: you can rotate a secret at most every four hours.", minHoursApart)
	}
	if _, ok := c.next(cronReference); !ok {
		return nil, invalid("The cron expression never matches a day: check that the days named exist in the months named.")
	}
	return c, nil
}

// parseDays parses the Day-of-month field.
func (c *cronExpr) parseDays(s string) error {
	for _, item := range strings.Split(s, ",") {
		switch {
		case item == "L":
			c.lastDay = true
		case item == "LW":
			c.lastWeekday = true
		case strings.HasSuffix(item, "W"):
			n, ok := parseNumber(strings.TrimSuffix(item, "W"))
			if !ok || n < 1 || n > 31 {
				return invalid("The W wildcard of the Day-of-month field must follow a day from 1 to 31, such as 15W, or L (LW).")
			}
			c.nearest |= 1 << n
		default:
			set, err := parseItem(item, daysField)
			if err != nil {
				return err
			}
			c.days |= uint32(set)
		}
	}
	return nil
}

// parseWeekdays parses the Day-of-week field.
func (c *cronExpr) parseWeekdays(s string) error {
	for _, item := range strings.Split(s, ",") {
		switch {
		case item == "L":
			c.weekdays |= 1 << 7 // Saturday, the last day of the week
		case strings.Contains(item, "#"):
			day, k, _ := strings.Cut(item, "#")
			d, ok := lookup(day, weekdayField)
			n, isNum := parseNumber(k)
			if !ok || !isNum || n < 1 || n > 5 {
				return invalid("The # wildcard of the Day-of-week field must join a day of the week and a number from 1 to 5, such as 3#2 or TUE#2 for the second Tuesday of the month.")
			}
			c.nth[d] |= 1 << n
		case len(item) > 1 && strings.HasSuffix(item, "L"):
			d, ok := lookup(strings.TrimSuffix(item, "L"), weekdayField)
			if !ok {
				return invalid("The L wildcard of the Day-of-week field must follow a day of the week, such as 6L or FRIL for the last Friday of the month.")
			}
			c.lastOf |= 1 << d
		default:
			set, err := parseItem(item, weekdayField)
			if err != nil {
				return err
			}
			c.weekdays |= uint8(set)
		}
	}
	return nil
}

// parseSet parses a field made only of plain items (Hours and Month).
func parseSet(s string, f field) (uint64, error) {
	var set uint64
	for _, item := range strings.Split(s, ",") {
		bitsOf, err := parseItem(item, f)
		if err != nil {
			return 0, err
		}
		set |= bitsOf
	}
	return set, nil
}

// parseItem parses one plain item of a list: *, a value, a range a-b, or
// either with an increment /n (a/n runs from a to the end of the field).
func parseItem(item string, f field) (uint64, error) {
	base, step, hasStep := strings.Cut(item, "/")
	inc := 1
	if hasStep {
		n, ok := parseNumber(step)
		if !ok || n < 1 || n > f.max {
			return 0, invalid("The increment after / in the %s field of a cron expression must be a number from 1 to %d.", f.name, f.max)
		}
		inc = n
	}
	lo, hi := f.min, f.max
	switch {
	case base == "*":
	case strings.Contains(base, "-"):
		a, b, _ := strings.Cut(base, "-")
		var okA, okB bool
		lo, okA = lookup(a, f)
		hi, okB = lookup(b, f)
		if !okA || !okB {
			return 0, badValue(f)
		}
		if lo > hi {
			return 0, invalid("A range in the %s field of a cron expression must run from a lower to a higher value.", f.name)
		}
	default:
		v, ok := lookup(base, f)
		if !ok {
			return 0, badValue(f)
		}
		lo = v
		if !hasStep {
			hi = v
		}
	}
	var set uint64
	for v := lo; v <= hi; v += inc {
		set |= 1 << v
	}
	return set, nil
}

// lookup reads one value of f: a number in range or, where f has them, a
// name (case-insensitive).
func lookup(s string, f field) (int, bool) {
	if n, ok := parseNumber(s); ok {
		return n, n >= f.min && n <= f.max
	}
	for i, name := range f.names {
		if strings.EqualFold(s, name) {
			return f.min + i, true
		}
	}
	return 0, false
}

// badValue is the error for a value outside a field.
func badValue(f field) error {
	if f.names != nil {
		return invalid("The %s field of a cron expression takes values from %d to %d or %s to %s, with the wildcards the Secrets Manager user guide lists.", f.name, f.min, f.max, f.names[0], f.names[len(f.names)-1])
	}
	return invalid("The %s field of a cron expression takes values from %d to %d, with the wildcards the Secrets Manager user guide lists.", f.name, f.min, f.max)
}

// hourCount is the number of hours a matching day rotates at.
func (c *cronExpr) hourCount() int { return bits.OnesCount32(c.hours) }

// firstHour and lastHour are the earliest and latest hour of a day.
func (c *cronExpr) firstHour() int { return bits.TrailingZeros32(c.hours) }
func (c *cronExpr) lastHour() int  { return 31 - bits.LeadingZeros32(c.hours) }

// minGap is the smallest number of hours between two hours of a day, or 0
// for a schedule with one hour a day. (An increment of hours restarts each
// day, as AWS documents, so the gap across midnight is not counted.)
func (c *cronExpr) minGap() int {
	gap, prev := 0, -1
	for h := 0; h < 24; h++ {
		if c.hours&(1<<h) == 0 {
			continue
		}
		if prev >= 0 && (gap == 0 || h-prev < gap) {
			gap = h - prev
		}
		prev = h
	}
	return gap
}

// next returns the first time after after (UTC) that c names.
func (c *cronExpr) next(after time.Time) (time.Time, bool) {
	y, m, d := after.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	for i := 0; i < maxSearchDays; i++ {
		if c.matchDay(day) {
			for h := 0; h < 24; h++ {
				if c.hours&(1<<h) == 0 {
					continue
				}
				if t := day.Add(time.Duration(h) * time.Hour); t.After(after) {
					return t, true
				}
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	return time.Time{}, false
}

// matchDay reports whether c rotates on day (midnight UTC).
func (c *cronExpr) matchDay(day time.Time) bool {
	y, m, d := day.Date()
	if c.months&(1<<m) == 0 {
		return false
	}
	last := daysIn(y, m)
	if c.byWeekday {
		wd := int(day.Weekday()) + 1 // 1 is Sunday
		switch {
		case c.weekdays&(1<<wd) != 0:
			return true
		case c.lastOf&(1<<wd) != 0 && d+7 > last:
			return true
		}
		return c.nth[wd]&(1<<((d-1)/7+1)) != 0
	}
	switch {
	case c.days&(1<<d) != 0:
		return true
	case c.lastDay && d == last:
		return true
	case c.lastWeekday && d == nearestWeekday(y, m, last, last):
		return true
	}
	for n := 1; n <= 31; n++ {
		if c.nearest&(1<<n) != 0 && n <= last && d == nearestWeekday(y, m, n, last) {
			return true
		}
	}
	return false
}

// nearestWeekday is the weekday (Monday to Friday) nearest day n of month m
// of year y, which has last days, without leaving the month: a Saturday
// moves to the Friday before (or the Monday after, on the 1st), a Sunday to
// the Monday after (or the Friday before, on the last day).
func nearestWeekday(y int, m time.Month, n, last int) int {
	switch time.Date(y, m, n, 0, 0, 0, 0, time.UTC).Weekday() {
	case time.Saturday:
		if n == 1 {
			return 3
		}
		return n - 1
	case time.Sunday:
		if n == last {
			return n - 2
		}
		return n + 1
	}
	return n
}

// daysIn is the number of days of month m of year y.
func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
