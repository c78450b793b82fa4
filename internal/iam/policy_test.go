package iam

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badPolicies lists every testdata/bad_*.json with the kind it is parsed as
// and a fragment the error message must contain.
var badPolicies = map[string]struct {
	kind PolicyKind
	want string
}{
	"bad_not_json.json":                 {IdentityPolicy, "not valid JSON"},
	"bad_trailing_data.json":            {IdentityPolicy, "unexpected data after the JSON document"},
	"bad_not_object.json":               {IdentityPolicy, "the document must be a JSON object, not a list"},
	"bad_duplicate_key.json":            {IdentityPolicy, `Statement[0]: duplicate key "Effect"`},
	"bad_unknown_top_level.json":        {IdentityPolicy, `unknown element "Versions"`},
	"bad_version.json":                  {IdentityPolicy, `Version: must be "2012-10-17" or "2008-10-17"`},
	"bad_no_statement.json":             {IdentityPolicy, "the document has no Statement"},
	"bad_empty_statement_list.json":     {IdentityPolicy, "Statement: must not be an empty list"},
	"bad_statement_string.json":         {IdentityPolicy, "Statement: must be an object or a list of objects, not a string"},
	"bad_statement_element.json":        {IdentityPolicy, "Statement[0]: must be an object, not a string"},
	"bad_unknown_statement_key.json":    {IdentityPolicy, `Statement[0]: unknown element "Actions"`},
	"bad_element_case.json":             {IdentityPolicy, `unknown element "effect" (element names are case-sensitive: use "Effect")`},
	"bad_effect.json":                   {IdentityPolicy, `Statement[0].Effect: must be "Allow" or "Deny"`},
	"bad_no_effect.json":                {IdentityPolicy, "Statement[0]: has no Effect"},
	"bad_action_and_notaction.json":     {IdentityPolicy, "Statement[0]: has both Action and NotAction; use one"},
	"bad_no_action.json":                {IdentityPolicy, "Statement[0]: has no Action or NotAction"},
	"bad_empty_action_list.json":        {IdentityPolicy, "Statement[0].Action: must not be an empty list"},
	"bad_action_format.json":            {IdentityPolicy, `Statement[0].Action: action "GetSecretValue" must be "*" or service:Action`},
	"bad_action_variable.json":          {IdentityPolicy, `action "secretsmanager:${aws:username}" must be`},
	"bad_action_number.json":            {IdentityPolicy, "Statement[0].Action[0]: must be a string, not a number"},
	"bad_no_resource.json":              {IdentityPolicy, "Statement[0]: has no Resource or NotResource"},
	"bad_resource_not_arn.json":         {IdentityPolicy, `Statement[0].Resource: resource "secret:my-app" must be "*" or an ARN`},
	"bad_resource_and_notresource.json": {IdentityPolicy, "has both Resource and NotResource"},
	"bad_principal_in_identity.json":    {IdentityPolicy, "Statement[0].Principal: is not allowed in an identity policy"},
	"bad_sid_chars.json":                {IdentityPolicy, `Statement[0].Sid: "read my secret" must contain only ASCII letters and digits`},
	"bad_duplicate_sid.json":            {IdentityPolicy, `Statement[1].Sid: "Read" is also the Sid of Statement[0]; Sids must be unique`},
	"bad_sid_type.json":                 {IdentityPolicy, "Statement[0].Sid: must be a string, not a number"},
	"bad_unknown_operator.json":         {IdentityPolicy, `Statement[2].Condition: unknown operator "StringEqual"`},
	"bad_operator_case.json":            {IdentityPolicy, `unknown operator "stringequals" (operator names are case-sensitive: "StringEquals")`},
	"bad_null_ifexists.json":            {IdentityPolicy, "Null has no IfExists form"},
	"bad_null_qualifier.json":           {IdentityPolicy, "Null takes no ForAnyValue/ForAllValues qualifier"},
	"bad_null_value.json":               {IdentityPolicy, `Statement[0].Condition.Null.aws:username: "maybe" is not "true" or "false"`},
	"bad_numeric_value.json":            {IdentityPolicy, `Condition.NumericLessThan.aws:MultiFactorAuthAge: "abc" is not a number`},
	"bad_numeric_variable.json":         {IdentityPolicy, `"${sigil:Max}" is not a number`},
	"bad_date_value.json":               {IdentityPolicy, `"next tuesday" is not a date`},
	"bad_cidr.json":                     {IdentityPolicy, `"10.0.0.0/33" is not an IP address or CIDR block`},
	"bad_bool_value.json":               {IdentityPolicy, `Condition.Bool.aws:SecureTransport: "yes" is not "true" or "false"`},
	"bad_base64.json":                   {IdentityPolicy, `"not base64!" is not base64`},
	"bad_arn_value.json":                {IdentityPolicy, `"arn:aws:s3" is not an ARN`},
	"bad_condition_key.json":            {IdentityPolicy, `condition key "SourceIp" must be service:name`},
	"bad_condition_empty_values.json":   {IdentityPolicy, "Condition.IpAddress.aws:SourceIp: must not be an empty list"},
	"bad_condition_null_value.json":     {IdentityPolicy, "aws:username: must be a string, number, boolean or a list of them, not null"},
	"bad_condition_object_value.json":   {IdentityPolicy, "aws:username[1]: must be a string, number or boolean, not an object"},
	"bad_condition_not_object.json":     {IdentityPolicy, "Statement[0].Condition: must be an object of condition operators, not a string"},
	"bad_condition_empty_block.json":    {IdentityPolicy, "Condition.StringEquals: must be a non-empty object of condition keys"},
	"bad_variable_unclosed.json":        {IdentityPolicy, "Statement[0].Resource: policy variable has no closing '}'"},
	"bad_variable_default_quote.json":   {IdentityPolicy, `policy variable default for "aws:username" must be in single quotes`},
	"bad_variable_empty.json":           {IdentityPolicy, "policy variable has no key name"},
	"bad_deep_nesting.json":             {IdentityPolicy, "nested deeper than 16 levels"},
	"bad_too_large.json":                {IdentityPolicy, "the identity policy has 7488 characters excluding whitespace; the limit is 6144"},
	"bad_trust_resource.json":           {TrustPolicy, "Statement[0].Resource: is not allowed in a trust policy"},
	"bad_trust_no_principal.json":       {TrustPolicy, "Statement[0]: has no Principal; a trust policy must say whom it applies to"},
	"bad_trust_notprincipal.json":       {TrustPolicy, "Statement[0].NotPrincipal: is not allowed in a trust policy"},
	"bad_trust_sid.json":                {TrustPolicy, `"trust-ci" must contain only ASCII letters and digits`},
	"bad_rp_no_principal.json":          {ResourcePolicy, "has no Principal; a resource policy must say whom it applies to"},
	"bad_rp_notprincipal_allow.json":    {ResourcePolicy, `Statement[0].NotPrincipal: is supported only with "Effect": "Deny"`},
	"bad_rp_principal_wildcard.json":    {ResourcePolicy, `Statement[0].Principal.AWS: principal "arn:aws:iam::123456789012:user/*" has a wildcard`},
	"bad_rp_principal_type.json":        {ResourcePolicy, `unknown principal type "Group"`},
	"bad_rp_principal_string.json":      {ResourcePolicy, `Statement[0].Principal: must be "*" or an object`},
	"bad_rp_principal_invalid.json":     {ResourcePolicy, `invalid AWS principal "alice"`},
	"bad_rp_principal_group.json":       {ResourcePolicy, `invalid AWS principal "arn:aws:iam::123456789012:group/devs"`},
	"bad_rp_federated.json":             {ResourcePolicy, "must be an oidc-provider or saml-provider ARN"},
	"bad_rp_principal_empty.json":       {ResourcePolicy, `Statement[0].Principal: must be "*" or a non-empty object`},
	"bad_rp_too_large.json":             {ResourcePolicy, "the resource policy has 28601 characters; the limit is 20480"},
}

func TestParsePolicyRejects(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "bad_*.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			tc, ok := badPolicies[name]
			if !ok {
				t.Fatalf("%s has no entry in badPolicies", name)
			}
			doc, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParsePolicy(string(doc), tc.kind)
			if err == nil {
				t.Fatalf("ParsePolicy accepted it: %d statements", len(p.statements))
			}
			if !errors.Is(err, ErrMalformedPolicy) {
				t.Errorf("error %v does not match ErrMalformedPolicy", err)
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *PolicyError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	for name := range badPolicies {
		if !seen[name] {
			t.Errorf("badPolicies lists %s, which is not in testdata", name)
		}
	}
}

func TestParsePolicyAccepts(t *testing.T) {
	pings := func(n int) string {
		return `{"Version": "2012-10-17", "Statement": [` + strings.Repeat(`{"Effect": "Allow", "Action": "sigil:Ping", "Resource": "*"},`, n-1) +
			`{"Effect": "Allow", "Action": "sigil:Ping", "Resource": "*"}]}`
	}
	wide := pings(120)
	spaced := strings.ReplaceAll(pings(100), " ", strings.Repeat(" ", 20))
	tests := []struct {
		name string
		kind PolicyKind
		doc  string
	}{
		{"statement object", IdentityPolicy, `{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}`},
		{"Id element", IdentityPolicy, `{"Version": "2012-10-17", "Id": "x", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}`},
		{"empty Sid", IdentityPolicy, `{"Statement": [{"Sid": "", "Effect": "Allow", "Action": "*", "Resource": "*"}, {"Sid": "", "Effect": "Allow", "Action": "*", "Resource": "*"}]}`},
		{"resource policy Sid with spaces", ResourcePolicy, `{"Statement": {"Sid": "Allow the app role", "Effect": "Allow", "Principal": "*", "Action": "*"}}`},
		{"resource wildcard spanning components", IdentityPolicy, `{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:secretsmanager:*"}}`},
		{"whitespace does not count for identity policies", IdentityPolicy, spaced},
		{"role inline size via ParsePolicyLimit", IdentityPolicy, wide},
		{"condition values of every JSON type", IdentityPolicy, `{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"k:a": [1, true, "x"]}, "NumericEquals": {"k:n": [1.5, "-2", 3e2]}, "DateEquals": {"k:d": [0, "2026-01-02", "2026-01-02T03:04:05.123+02:00", "1700000000.5"]}, "IpAddress": {"k:ip": ["10.0.0.1", "::1", "10.1.2.3/8", "::ffff:10.0.0.0/104"]}, "Null": {"k:z": [true, "False"]}}}}`},
		{"CanonicalUser principal", ResourcePolicy, `{"Statement": {"Effect": "Allow", "Principal": {"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}, "Action": "*"}}`},
		{"trust policy with AWS star and service", TrustPolicy, `{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "*", "Service": ["ec2.amazonaws.com"]}, "Action": ["sts:AssumeRole", "sts:TagSession"]}}`},
		{"variable escapes only", IdentityPolicy, `{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/${*}${?}${$}"}}`},
		{"broken variable in 2008-10-17 is text", IdentityPolicy, `{"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/${aws:username"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			limit := tc.kind.SizeLimit()
			if tc.name == "whitespace does not count for identity policies" && len(tc.doc) <= limit {
				t.Fatalf("the document has only %d characters; the test needs more than %d", len(tc.doc), limit)
			}
			if tc.name == "role inline size via ParsePolicyLimit" {
				if _, err := ParsePolicy(tc.doc, tc.kind); err == nil {
					t.Fatalf("the %d-character document fits the default limit; the test needs a larger one", policySize(tc.doc, tc.kind))
				}
				limit = MaxRoleInlinePolicySize
			}
			p, err := ParsePolicyLimit(tc.doc, tc.kind, limit)
			if err != nil {
				t.Fatalf("ParsePolicy: %v", err)
			}
			if p.Kind() != tc.kind || p.Document() != tc.doc {
				t.Errorf("Kind()=%v Document() mismatch", p.Kind())
			}
		})
	}
}

func TestPolicyAccessors(t *testing.T) {
	p, err := ParsePolicy(`{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/${aws:username}"}}`, IdentityPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if p.Version() != "2012-10-17" || !p.HasVariables() {
		t.Errorf("Version()=%q HasVariables()=%v", p.Version(), p.HasVariables())
	}
	q, err := ParsePolicy(`{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/${aws:username}"}}`, IdentityPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if q.Version() != "" || q.HasVariables() {
		t.Errorf("without Version: Version()=%q HasVariables()=%v", q.Version(), q.HasVariables())
	}
	if _, err := ParsePolicy(`{}`, PolicyKind(9)); !errors.Is(err, ErrMalformedPolicy) {
		t.Errorf("unknown kind: %v", err)
	}
	for k, want := range map[PolicyKind]int{IdentityPolicy: 6144, TrustPolicy: 4096, ResourcePolicy: 20480} {
		if k.SizeLimit() != want {
			t.Errorf("%v.SizeLimit() = %d, want %d", k, k.SizeLimit(), want)
		}
	}
}

func TestPolicyErrorFormat(t *testing.T) {
	e := &PolicyError{Path: "Statement[2].Condition", Msg: `unknown operator "StringEqual"`}
	if got := e.Error(); got != `Statement[2].Condition: unknown operator "StringEqual"` {
		t.Errorf("Error() = %q", got)
	}
	if got := (&PolicyError{Msg: "the document has no Statement"}).Error(); got != "the document has no Statement" {
		t.Errorf("Error() without path = %q", got)
	}
}
