package iam

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"sigil.dev/sigil/internal/awsproto"
)

// Parameter checks, with the constraints of the IAM API reference. Each
// returns nil or a ValidationError naming the member as AWS does
// ("roleName"); firstError picks the first failure of a request.

var (
	entityNamePattern = regexp.MustCompile(`^[\w+=,.@-]+$`)
	pathPattern       = regexp.MustCompile(`^(/|/[\x21-\x7E]+/)$`)
	pathPrefixPattern = regexp.MustCompile(`^/[\x21-\x7F]*$`)
	versionIDPattern  = regexp.MustCompile(`^v[1-9][0-9]*(\.[A-Za-z0-9-]*)?$`)
	accessKeyPattern  = regexp.MustCompile(`^\w+$`)
	thumbprintPattern = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)
)

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func violation(member, value, constraint string) error {
	return awsproto.ConstraintError(member, &value, constraint)
}

func missing(member string) error {
	return awsproto.ConstraintError(member, nil, "Member must not be null")
}

func checkLength(member, v string, minLen, maxLen int) error {
	n := utf8.RuneCountInString(v)
	switch {
	case n < minLen:
		return violation(member, v, "Member must have length greater than or equal to "+strconv.Itoa(minLen))
	case n > maxLen:
		return violation(member, v, "Member must have length less than or equal to "+strconv.Itoa(maxLen))
	}
	return nil
}

// checkName checks a role, user or policy name (1 to maxLen characters of
// letters, digits and +=,.@_-).
func checkName(member, v string, maxLen int) error {
	if err := checkLength(member, v, 1, maxLen); err != nil {
		return err
	}
	if !entityNamePattern.MatchString(v) {
		return violation(member, v, `Member must satisfy regular expression pattern: [\w+=,.@-]+`)
	}
	return nil
}

// checkPath checks an optional path: "/" or "/a/b/" of printable ASCII.
// sigil also refuses empty segments ("//"), which would make ARNs ambiguous.
func checkPath(member string, v *string) error {
	if v == nil {
		return nil
	}
	if err := checkLength(member, *v, 1, 512); err != nil {
		return err
	}
	if !pathPattern.MatchString(*v) || strings.Contains(*v, "//") {
		return violation(member, *v, `Member must satisfy regular expression pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)`)
	}
	return nil
}

func checkPathPrefix(member, v string) error {
	if v == "" {
		return nil
	}
	if err := checkLength(member, v, 1, 512); err != nil {
		return err
	}
	if !pathPrefixPattern.MatchString(v) {
		return violation(member, v, `Member must satisfy regular expression pattern: \u002F[\u0021-\u007F]*`)
	}
	return nil
}

// latin1Text reports whether s holds only tab, newline, carriage return and
// characters from U+0020 to U+00FF, IAM's alphabet for documents and
// markers. Without full, U+007F to U+00A0 are refused too, as IAM's pattern
// for descriptions does.
func latin1Text(s string, full bool) bool {
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r >= 0x20 && r <= 0x7E:
		case r >= 0xA1 && r <= 0xFF:
		case r >= 0x7F && r <= 0xA0 && full:
		default:
			return false
		}
	}
	return true
}

func checkDescription(member string, v *string) error {
	if v == nil {
		return nil
	}
	if err := checkLength(member, *v, 0, 1000); err != nil {
		return err
	}
	if !latin1Text(*v, false) {
		return violation(member, *v, `Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*`)
	}
	return nil
}

// checkDocument checks the wire constraints of a policy document; its
// grammar is checked by ParsePolicy.
func checkDocument(member, v string) error {
	if err := checkLength(member, v, 1, 131072); err != nil {
		return err
	}
	if !latin1Text(v, true) {
		return violation(member, v, `Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u00FF]+`)
	}
	return nil
}

func checkARN(member, v string) error {
	return checkLength(member, v, 20, 2048)
}

func checkOptionalARN(member, v string) error {
	if v == "" {
		return nil
	}
	return checkARN(member, v)
}

func checkVersionID(member, v string) error {
	if !versionIDPattern.MatchString(v) {
		return violation(member, v, `Member must satisfy regular expression pattern: v[1-9][0-9]*(\.[A-Za-z0-9-]*)?`)
	}
	return nil
}

func checkAccessKeyID(member, v string) error {
	if err := checkLength(member, v, 16, 128); err != nil {
		return err
	}
	if !accessKeyPattern.MatchString(v) {
		return violation(member, v, `Member must satisfy regular expression pattern: [\w]+`)
	}
	return nil
}

func checkEnum(member, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return violation(member, v, "Member must satisfy enum value set: ["+strings.Join(allowed, ", ")+"]")
}

func checkMaxSession(member string, v *int32) error {
	if v == nil || *v >= 3600 && *v <= 43200 {
		return nil
	}
	s := strconv.Itoa(int(*v))
	if *v < 3600 {
		return violation(member, s, "Member must have value greater than or equal to 3600")
	}
	return violation(member, s, "Member must have value less than or equal to 43200")
}

// pageParams are the pagination members every IAM listing takes.
type pageParams struct {
	Marker   *string `query:"Marker"`
	MaxItems *int32  `query:"MaxItems"`
}

func (p pageParams) check() error {
	if p.Marker != nil {
		if err := checkLength("marker", *p.Marker, 1, 320); err != nil {
			return err
		}
		if !latin1Text(*p.Marker, true) {
			return violation("marker", *p.Marker, `Member must satisfy regular expression pattern: [\u0020-\u00FF]+`)
		}
	}
	if p.MaxItems != nil && (*p.MaxItems < 1 || *p.MaxItems > 1000) {
		s := strconv.Itoa(int(*p.MaxItems))
		if *p.MaxItems < 1 {
			return violation("maxItems", s, "Member must have value greater than or equal to 1")
		}
		return violation("maxItems", s, "Member must have value less than or equal to 1000")
	}
	return nil
}

func (p pageParams) page() Page {
	var out Page
	if p.Marker != nil {
		out.Marker = *p.Marker
	}
	if p.MaxItems != nil {
		out.MaxItems = int(*p.MaxItems)
	}
	return out
}

// tagParam is one member of a Tags list.
type tagParam struct {
	Key   string `query:"Key,required"`
	Value string `query:"Value,required"`
}

func tagRunesOK(s string) bool {
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.In(r, unicode.Zs) || unicode.IsNumber(r) || strings.ContainsRune("_.:/=+-@", r)) {
			return false
		}
	}
	return true
}

// checkTags checks a Tags list (at most MaxTags, keys unique without regard
// to case, none in the reserved aws: namespace) and converts it.
func checkTags(member string, in []tagParam) ([]Tag, error) {
	if len(in) > MaxTags {
		return nil, violation(member, strconv.Itoa(len(in))+" tags", "Member must have length less than or equal to "+strconv.Itoa(MaxTags))
	}
	out := make([]Tag, 0, len(in))
	for i, t := range in {
		m := member + "." + strconv.Itoa(i+1) + ".member"
		if err := checkLength(m+".key", t.Key, 1, 128); err != nil {
			return nil, err
		}
		if !tagRunesOK(t.Key) {
			return nil, violation(m+".key", t.Key, `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+`)
		}
		if err := checkLength(m+".value", t.Value, 0, 256); err != nil {
			return nil, err
		}
		if !tagRunesOK(t.Value) {
			return nil, violation(m+".value", t.Value, `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*`)
		}
		if len(t.Key) >= 4 && strings.EqualFold(t.Key[:4], "aws:") {
			return nil, errInvalidInput("User-defined tag keys can't start with aws:, which is reserved for AWS.")
		}
		for _, o := range out {
			if strings.EqualFold(o.Key, t.Key) {
				return nil, errInvalidInput("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
			}
		}
		out = append(out, Tag{Key: t.Key, Value: t.Value})
	}
	return out, nil
}

func checkTagKeys(member string, keys []string) error {
	if len(keys) > MaxTags {
		return violation(member, strconv.Itoa(len(keys))+" keys", "Member must have length less than or equal to "+strconv.Itoa(MaxTags))
	}
	for i, k := range keys {
		m := member + "." + strconv.Itoa(i+1) + ".member"
		if err := checkLength(m, k, 1, 128); err != nil {
			return err
		}
		if !tagRunesOK(k) {
			return violation(m, k, `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+`)
		}
	}
	return nil
}
