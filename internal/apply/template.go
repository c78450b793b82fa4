package apply

import (
	"errors"
	"strconv"
	"strings"
)

// Placeholders. Any string in the file may hold {{account}} and
// {{region}}, which Plan replaces with the server's account id and the
// region the client signs for, so one file serves every installation. A
// secret value marked valueTemplate may also hold {{secretArn:NAME}}, the
// full ARN of a secret declared earlier in the same file (known only once
// that secret exists, because of the random suffix Secrets Manager adds).

// Placeholder names.
const (
	placeholderAccount   = "{{account}}"
	placeholderRegion    = "{{region}}"
	placeholderSecretARN = "{{secretArn:"
)

// errPlaceholder is reported for a "{{" that starts no known placeholder.
var errPlaceholder = errors.New("unknown placeholder: only {{account}} and {{region}} may appear here")

// checkPlaceholders checks that every "{{" in s starts {{account}} or
// {{region}}.
func checkPlaceholders(s string) error {
	for rest := s; ; {
		i := strings.Index(rest, "{{")
		if i < 0 {
			return nil
		}
		rest = rest[i:]
		switch {
		case strings.HasPrefix(rest, placeholderAccount):
			rest = rest[len(placeholderAccount):]
		case strings.HasPrefix(rest, placeholderRegion):
			rest = rest[len(placeholderRegion):]
		default:
			return errPlaceholder
		}
	}
}

// valueRefs returns the secret names a value template refers to with
// {{secretArn:NAME}}. It fails, without quoting the value, on a "{{" that
// starts no known placeholder: the value is secret.
func valueRefs(tmpl string) ([]string, error) {
	var refs []string
	for rest, n := tmpl, 1; ; n++ {
		i := strings.Index(rest, "{{")
		if i < 0 {
			return refs, nil
		}
		rest = rest[i:]
		switch {
		case strings.HasPrefix(rest, placeholderAccount):
			rest = rest[len(placeholderAccount):]
		case strings.HasPrefix(rest, placeholderRegion):
			rest = rest[len(placeholderRegion):]
		case strings.HasPrefix(rest, placeholderSecretARN):
			end := strings.Index(rest, "}}")
			if end < 0 {
				return nil, placeholderError(n)
			}
			name := rest[len(placeholderSecretARN):end]
			if name == "" || strings.ContainsAny(name, "{}") {
				return nil, placeholderError(n)
			}
			refs = append(refs, name)
			rest = rest[end+2:]
		default:
			return nil, placeholderError(n)
		}
	}
}

// placeholderError names a template's n-th placeholder by position only.
func placeholderError(n int) error {
	return &templateError{n: n}
}

// templateError is a bad placeholder in a value template. Its message
// never quotes the template.
type templateError struct{ n int }

func (e *templateError) Error() string {
	return "placeholder " + strconv.Itoa(e.n) + " of the value template is not {{account}}, {{region}} or {{secretArn:NAME}}"
}

// vars are the values placeholders stand for.
type vars struct {
	account, region string
}

// expand replaces {{account}} and {{region}} in s.
func (v vars) expand(s string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	return strings.NewReplacer(placeholderAccount, v.account, placeholderRegion, v.region).Replace(s)
}

// expandValue expands a value template; arns maps secret names to ARNs.
// ok is false when a referenced secret's ARN is not known yet.
func (v vars) expandValue(tmpl string, arns map[string]string) (string, bool) {
	var b strings.Builder
	rest := tmpl
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), true
		}
		b.WriteString(rest[:i])
		rest = rest[i:]
		switch {
		case strings.HasPrefix(rest, placeholderAccount):
			b.WriteString(v.account)
			rest = rest[len(placeholderAccount):]
		case strings.HasPrefix(rest, placeholderRegion):
			b.WriteString(v.region)
			rest = rest[len(placeholderRegion):]
		case strings.HasPrefix(rest, placeholderSecretARN):
			end := strings.Index(rest, "}}")
			if end < 0 {
				return "", false // refused by Parse
			}
			arn, ok := arns[rest[len(placeholderSecretARN):end]]
			if !ok {
				return "", false
			}
			b.WriteString(arn)
			rest = rest[end+2:]
		default:
			return "", false // refused by Parse
		}
	}
}
