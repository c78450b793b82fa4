package apply

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.yaml.in/yaml/v3"

	"sigil.dev/sigil/internal/rotation"
	"sigil.dev/sigil/internal/rotation/schedule"
	"sigil.dev/sigil/internal/server"
)

// Rotation: the rotators kind (registered rotators, managed through
// sigil's native API /v1/rotators/{get,put}) and the rotation block of a
// secret (managed with RotateSecret and CancelRotateSecret, compared with
// DescribeSecret). This file holds their types, their parsing and their
// planning.
//
// A webhook rotator's HMAC key is write-only: the server never returns it,
// so it cannot be compared. It is sent when the rotator is registered,
// whenever another of its settings changes (a put replaces the whole
// definition, and a put without a key would make the server generate a
// new one), and otherwise only with Options.UpdateValues, then on every
// run. The key never appears in a Change, a step, a message or an error.
//
// A secret's rotation is changed with one RotateSecret call, passing
// RotateImmediately as the file says (false unless it says otherwise), and
// only when the rotator, schedule or window differ from DescribeSecret's or
// rotation is off: re-applying an unchanged file never rotates a secret.

// Limits of the rotation kinds, as internal/rotation enforces them.
const (
	maxRotatorFieldLen = 256
	maxWebhookURLLen   = 2048
	maxWebhookTimeout  = 5 * time.Minute
	minWebhookKeyBytes = 16
	maxWebhookKeyBytes = 1024
	// maxWebhookKeyFile bounds a keyFile: the base64 of the largest key,
	// with room for a line ending.
	maxWebhookKeyFile = 4096
)

// rotatorNamePattern is a Lambda function name, which rotators use.
var rotatorNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// rotatorReserved starts the names of the built-in rotators.
const rotatorReserved = "sigil-"

// sampleVars stand in for {{account}} and {{region}} when Parse checks the
// form of a string that may hold them.
var sampleVars = vars{account: "123456789012", region: "us-east-1"}

// Rotation is a secret's rotation as the file manages it. Only a secret
// with a rotation block has its rotation managed.
type Rotation struct {
	// Enabled is true unless the file says "enabled: false", which turns
	// rotation off (CancelRotateSecret) if it is on; the other settings
	// may then stay in the file and are not compared.
	Enabled bool
	// Rotator names the rotator: a function name (a built-in such as
	// sigil-random, or a registered rotator), which Plan turns into
	// arn:aws:lambda:REGION:ACCOUNT:function:NAME, or a full
	// RotationLambdaARN, which may hold {{account}} and {{region}}.
	Rotator string
	// AutomaticallyAfterDays and ScheduleExpression (rate(...) or
	// cron(...)) set the schedule; exactly one is set when Enabled.
	AutomaticallyAfterDays int64
	ScheduleExpression     string
	// Duration is the rotation window, "1h" to "24h"; empty means the
	// schedule's default.
	Duration string
	// RotateImmediately is passed to the RotateSecret call Plan makes
	// when the rotation changes; false (the default) waits for the next
	// window.
	RotateImmediately bool
	// Line is the line of the rotation block in the file.
	Line int
}

// Rotator is a registered rotator: a random string or JSON field, or an
// HTTP webhook that receives the four rotation steps.
type Rotator struct {
	// Name is the rotator's function name; it must not start with
	// "sigil-", which the built-ins use.
	Name string
	// Type is rotation.TypeRandom or rotation.TypeWebhook.
	Type string
	// Random configures a random rotator; never nil for one (an absent
	// random block means the default password policy and the whole
	// SecretString). Its strings are sent as written.
	Random *rotation.RandomSpec
	// Webhook configures a webhook rotator.
	Webhook *WebhookRotator
	// Line is the line of the entry in the file.
	Line int
}

// WebhookRotator configures a webhook rotator.
type WebhookRotator struct {
	// URL is the endpoint, an absolute http or https URL; it may hold
	// {{account}} and {{region}}.
	URL string
	// Timeout bounds each request; zero means the server's default (30s).
	Timeout time.Duration
	// Key is the HMAC-SHA256 key, read from keyFile or keyEnv (base64
	// text). It is write-only on the server and never prints.
	Key *Value
	// KeySource says where the key came from, for messages.
	KeySource string
}

// The raw shapes of the rotation kinds, as YAML decodes them.

type rawRotation struct {
	Rotator                yStr  `yaml:"rotator"`
	AutomaticallyAfterDays yInt  `yaml:"automaticallyAfterDays"`
	ScheduleExpression     yStr  `yaml:"scheduleExpression"`
	Duration               yStr  `yaml:"duration"`
	RotateImmediately      yBool `yaml:"rotateImmediately"`
	Enabled                yBool `yaml:"enabled"`
	line                   int
}

type rawRotator struct {
	Name    yStr          `yaml:"name"`
	Type    yStr          `yaml:"type"`
	Random  rawRandomSpec `yaml:"random"`
	Webhook rawWebhook    `yaml:"webhook"`
	line    int
}

type rawRandomSpec struct {
	Field              yStr  `yaml:"field"`
	Length             yInt  `yaml:"length"`
	ExcludeCharacters  yStr  `yaml:"excludeCharacters"`
	ExcludeUppercase   yBool `yaml:"excludeUppercase"`
	ExcludeLowercase   yBool `yaml:"excludeLowercase"`
	ExcludeNumbers     yBool `yaml:"excludeNumbers"`
	ExcludePunctuation yBool `yaml:"excludePunctuation"`
	AllowMissingTypes  yBool `yaml:"allowMissingTypes"`
	line               int
}

type rawWebhook struct {
	URL     yStr `yaml:"url"`
	Timeout yStr `yaml:"timeout"`
	KeyFile yStr `yaml:"keyFile"`
	KeyEnv  yStr `yaml:"keyEnv"`
	line    int
}

func (r *rawRotation) UnmarshalYAML(n *yaml.Node) error {
	type plain rawRotation
	return decodeObject(n, (*plain)(r), &r.line, "rotation")
}

func (r *rawRotator) UnmarshalYAML(n *yaml.Node) error {
	type plain rawRotator
	return decodeObject(n, (*plain)(r), &r.line, "a rotator")
}

func (r *rawRandomSpec) UnmarshalYAML(n *yaml.Node) error {
	type plain rawRandomSpec
	return decodeObject(n, (*plain)(r), &r.line, "random")
}

func (r *rawWebhook) UnmarshalYAML(n *yaml.Node) error {
	type plain rawWebhook
	return decodeObject(n, (*plain)(r), &r.line, "webhook")
}

// rotationTypes renames the Go types of this file in yaml.v3's messages.
var rotationTypes = strings.NewReplacer("[]apply.rawRotator", "a list of rotators")

// fixRotationProblems rewrites yamlProblems' messages that name this
// file's types.
func fixRotationProblems(ps []Problem) []Problem {
	for i := range ps {
		ps[i].Message = rotationTypes.Replace(ps[i].Message)
	}
	return ps
}

// scheduleFields renames schedule's RotationRules members to the file's
// keys.
var scheduleFields = strings.NewReplacer(
	"RotationRules.AutomaticallyAfterDays", "automaticallyAfterDays",
	"RotationRules.ScheduleExpression", "scheduleExpression",
	"RotationRules.Duration", "duration",
	"RotationRules", "rotation",
)

// rotation checks a secret's rotation block; nil when there is none.
func (p *parser) rotation(r *rawRotation) *Rotation {
	if r.line == 0 {
		return nil
	}
	rot := &Rotation{
		Enabled:                r.Enabled.line == 0 || r.Enabled.v,
		Rotator:                r.Rotator.v,
		AutomaticallyAfterDays: r.AutomaticallyAfterDays.v,
		ScheduleExpression:     r.ScheduleExpression.v,
		Duration:               r.Duration.v,
		RotateImmediately:      r.RotateImmediately.v,
		Line:                   r.line,
	}
	if r.Rotator.set {
		p.rotatorRef(r.Rotator)
	} else if rot.Enabled {
		p.addf(r.line, "rotation needs a rotator: a rotator's name (such as %s) or a RotationLambdaARN", rotation.BuiltinRandom)
	}
	hasDays, hasExpr := r.AutomaticallyAfterDays.set, r.ScheduleExpression.set
	switch {
	case hasDays && hasExpr:
		p.addf(r.ScheduleExpression.line, "give either automaticallyAfterDays or scheduleExpression, not both")
		return rot
	case !hasDays && !hasExpr:
		if rot.Enabled {
			p.addf(r.line, "rotation needs a schedule: automaticallyAfterDays: N, or scheduleExpression: rate(...) or cron(...)")
		} else if r.Duration.set {
			p.addf(r.Duration.line, "duration needs automaticallyAfterDays or scheduleExpression")
		}
		return rot
	case hasDays && rot.AutomaticallyAfterDays == 0:
		// schedule.Rules reads 0 as absent.
		p.addf(r.AutomaticallyAfterDays.line, "automaticallyAfterDays must be between %d and %d", schedule.MinDays, schedule.MaxDays)
		return rot
	case hasExpr && rot.ScheduleExpression == "":
		p.addf(r.ScheduleExpression.line, "scheduleExpression is empty; write rate(N days), rate(N hours) or cron(...)")
		return rot
	}
	if r.Duration.set {
		if _, err := schedule.ParseDuration(rot.Duration); err != nil {
			p.addf(r.Duration.line, "%s", scheduleFields.Replace(err.Error()))
			return rot
		}
	}
	rules := schedule.Rules{AutomaticallyAfterDays: rot.AutomaticallyAfterDays, ScheduleExpression: rot.ScheduleExpression, Duration: rot.Duration}
	if _, err := schedule.Parse(rules); err != nil {
		line := r.AutomaticallyAfterDays.line
		if hasExpr {
			line = r.ScheduleExpression.line
		}
		msg := scheduleFields.Replace(err.Error())
		switch {
		case r.Duration.set && strings.Contains(err.Error(), "RotationRules.Duration"):
			line = r.Duration.line
		case hasExpr && !strings.HasPrefix(msg, "scheduleExpression"):
			msg = fmt.Sprintf("scheduleExpression %q: %s", rot.ScheduleExpression, msg)
		}
		p.addf(line, "%s", msg)
	}
	return rot
}

// rotatorRef checks a rotation's rotator: a function name or a
// RotationLambdaARN.
func (p *parser) rotatorRef(s yStr) {
	if strings.HasPrefix(s.v, "arn:") {
		if err := checkPlaceholders(s.v); err != nil {
			p.addf(s.line, "rotator: %v", err)
			return
		}
		if _, err := rotation.ParseRotatorARN(sampleVars.expand(s.v)); err != nil {
			p.addf(s.line, "rotator %q is not arn:aws:lambda:REGION:ACCOUNT:function:NAME", s.v)
		}
		return
	}
	if !rotatorNamePattern.MatchString(s.v) {
		p.addf(s.line, "rotator %q is neither a RotationLambdaARN nor a rotator name (1 to 64 letters, digits, '-' or '_')", s.v)
	}
}

func (p *parser) rotator(r *rawRotator) Rotator {
	rt := Rotator{Name: r.Name.v, Type: r.Type.v, Line: r.line}
	switch {
	case !r.Name.set || r.Name.v == "":
		p.addf(r.line, "a rotator needs a name")
	case !rotatorNamePattern.MatchString(r.Name.v):
		p.addf(r.Name.line, "rotator name %q must be 1 to 64 letters, digits, '-' or '_'", r.Name.v)
	case strings.HasPrefix(r.Name.v, rotatorReserved):
		p.addf(r.Name.line, "rotator name %q: names starting with %q are reserved for the built-in rotators", r.Name.v, rotatorReserved)
	}
	switch rt.Type {
	case rotation.TypeRandom:
		if r.Webhook.line != 0 {
			p.addf(r.Webhook.line, "a random rotator takes no webhook block")
		}
		rt.Random = p.randomSpec(&r.Random)
	case rotation.TypeWebhook:
		if r.Random.line != 0 {
			p.addf(r.Random.line, "a webhook rotator takes no random block")
		}
		if r.Webhook.line == 0 {
			p.addf(r.line, "a webhook rotator needs a webhook block with a url and a keyFile or keyEnv")
			break
		}
		rt.Webhook = p.webhook(&r.Webhook)
	case "":
		p.addf(r.line, "a rotator needs a type (%q or %q)", rotation.TypeRandom, rotation.TypeWebhook)
	default:
		p.addf(r.Type.line, "rotator type %q is not %q or %q", rt.Type, rotation.TypeRandom, rotation.TypeWebhook)
	}
	return rt
}

func (p *parser) randomSpec(r *rawRandomSpec) *rotation.RandomSpec {
	spec := &rotation.RandomSpec{
		Field: r.Field.v,
		PasswordPolicy: rotation.PasswordPolicy{
			ExcludeCharacters:  r.ExcludeCharacters.v,
			ExcludeUppercase:   r.ExcludeUppercase.v,
			ExcludeLowercase:   r.ExcludeLowercase.v,
			ExcludeNumbers:     r.ExcludeNumbers.v,
			ExcludePunctuation: r.ExcludePunctuation.v,
			AllowMissingTypes:  r.AllowMissingTypes.v,
		},
	}
	switch {
	case len(spec.Field) > maxRotatorFieldLen:
		p.addf(r.Field.line, "field is longer than %d bytes", maxRotatorFieldLen)
	case !utf8.ValidString(spec.Field):
		p.addf(r.Field.line, "field is not valid UTF-8")
	case r.Field.set && spec.Field == "":
		p.addf(r.Field.line, "field is empty; leave it out to replace the whole SecretString")
	}
	if r.Length.set {
		if v := r.Length.v; v < rotation.MinPasswordLength || v > rotation.MaxPasswordLength {
			p.addf(r.Length.line, "length %d must be between %d and %d", v, rotation.MinPasswordLength, rotation.MaxPasswordLength)
			return spec
		}
		spec.Length = int(r.Length.v)
	}
	if !utf8.ValidString(spec.ExcludeCharacters) {
		p.addf(r.ExcludeCharacters.line, "excludeCharacters is not valid UTF-8")
		return spec
	}
	if err := spec.PasswordPolicy.Validate(); err != nil {
		p.addf(r.line, "random: %s", strings.TrimPrefix(err.Error(), rotation.ErrInvalidRotator.Error()+": "))
	}
	return spec
}

func (p *parser) webhook(r *rawWebhook) *WebhookRotator {
	w := &WebhookRotator{URL: r.URL.v}
	if !r.URL.set || r.URL.v == "" {
		p.addf(r.line, "a webhook needs a url")
	} else if err := checkPlaceholders(r.URL.v); err != nil {
		p.addf(r.URL.line, "url: %v", err)
	} else if msg := webhookURLProblem(sampleVars.expand(r.URL.v)); msg != "" {
		p.addf(r.URL.line, "url %q %s", r.URL.v, msg)
	}
	if r.Timeout.set {
		d, err := time.ParseDuration(r.Timeout.v)
		if err != nil || d <= 0 || d > maxWebhookTimeout {
			p.addf(r.Timeout.line, "timeout %q must be a duration such as 10s, at most %s", r.Timeout.v, maxWebhookTimeout)
		} else {
			w.Timeout = d
		}
	}
	p.webhookKey(r, w)
	return w
}

// webhookURLProblem says what is wrong with a webhook URL, or "".
func webhookURLProblem(s string) string {
	if len(s) > maxWebhookURLLen {
		return fmt.Sprintf("is longer than %d bytes", maxWebhookURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return "must be an absolute http or https URL without user info or fragment"
	}
	return ""
}

// webhookKey reads a webhook's key, base64 text, from its file (one line;
// surrounding white space is dropped) or environment variable. Messages
// name the source, never the key.
func (p *parser) webhookKey(r *rawWebhook, w *WebhookRotator) {
	var (
		text []byte
		line int
	)
	switch {
	case r.KeyFile.set && r.KeyEnv.set:
		p.addf(r.KeyEnv.line, "give either keyFile or keyEnv, not both")
		return
	case r.KeyFile.set:
		line = r.KeyFile.line
		w.KeySource = fmt.Sprintf("file %q", r.KeyFile.v)
		var ok bool
		if text, ok = p.readFile(r.KeyFile, "keyFile", maxWebhookKeyFile); !ok {
			return
		}
	case r.KeyEnv.set:
		line = r.KeyEnv.line
		name := r.KeyEnv.v
		if !envNamePattern.MatchString(name) {
			p.addf(line, "keyEnv %q is not an environment variable name", name)
			return
		}
		w.KeySource = "environment variable " + name
		var v string
		ok := false
		if p.lookupEnv != nil {
			v, ok = p.lookupEnv(name)
		}
		if !ok {
			p.addf(line, "keyEnv: environment variable %s is not set", name)
			return
		}
		text = []byte(v)
	default:
		p.addf(r.line, "a webhook needs a keyFile or keyEnv holding its HMAC key in base64 (apply never generates one, so that the endpoint's key is yours)")
		return
	}
	defer clear(text)
	key, err := decodeWebhookKey(text)
	if err != nil {
		p.addf(line, "the key from %s %v", w.KeySource, err)
		return
	}
	w.Key = newValue(key, false)
	clear(key)
}

// decodeWebhookKey decodes the base64 text of a webhook key: one line,
// surrounding white space dropped, 16 to 1024 bytes once decoded. Errors
// never quote the text.
func decodeWebhookKey(text []byte) ([]byte, error) {
	s := strings.TrimSpace(string(text))
	if s == "" {
		return nil, fmt.Errorf("is empty")
	}
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("must be one line of base64")
	}
	key, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("is not base64 (standard alphabet, with padding)")
	}
	if len(key) < minWebhookKeyBytes || len(key) > maxWebhookKeyBytes {
		clear(key)
		return nil, fmt.Errorf("decodes to %d bytes; a key must be %d to %d bytes", len(key), minWebhookKeyBytes, maxWebhookKeyBytes)
	}
	return key, nil
}

// Planning rotators.

// Notes about webhook keys.
const (
	noteKeyLeft = "webhook key: left as is (write-only; pass --update-values to write it)"
)

// rotatorARN returns the RotationLambdaARN of rotator name.
func (pl *planner) rotatorARN(name string) string {
	return rotation.RotatorARNFor(pl.vars.region, pl.vars.account, name)
}

// rotationARN resolves a rotation's rotator to its RotationLambdaARN.
func (pl *planner) rotationARN(ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return pl.vars.expand(ref)
	}
	return pl.rotatorARN(ref)
}

// rotatorSpec is r as the server stores and returns it, without the key.
func (pl *planner) rotatorSpec(r Rotator) rotation.RotatorSpec {
	spec := rotation.RotatorSpec{Name: r.Name, Type: r.Type}
	if r.Random != nil {
		rs := *r.Random
		spec.Random = &rs
	}
	if r.Webhook != nil {
		spec.Webhook = &rotation.WebhookSpec{URL: pl.vars.expand(r.Webhook.URL), Timeout: r.Webhook.Timeout}
	}
	return spec
}

// rotatorChanges lists the settings in which have differs from want.
func rotatorChanges(have, want rotation.RotatorSpec) []string {
	if have.Type != want.Type {
		return []string{"type (" + have.Type + " to " + want.Type + ")"}
	}
	var fields []string
	add := func(changed bool, name string) {
		if changed {
			fields = append(fields, name)
		}
	}
	switch want.Type {
	case rotation.TypeRandom:
		var h rotation.RandomSpec
		if have.Random != nil {
			h = *have.Random
		}
		w := *want.Random
		add(h.Field != w.Field, "field")
		add(h.Length != w.Length, "length")
		add(h.ExcludeCharacters != w.ExcludeCharacters, "excluded characters")
		add(h.ExcludeUppercase != w.ExcludeUppercase || h.ExcludeLowercase != w.ExcludeLowercase ||
			h.ExcludeNumbers != w.ExcludeNumbers || h.ExcludePunctuation != w.ExcludePunctuation, "excluded classes")
		add(h.AllowMissingTypes != w.AllowMissingTypes, "allowMissingTypes")
	case rotation.TypeWebhook:
		var h rotation.WebhookSpec
		if have.Webhook != nil {
			h = *have.Webhook
		}
		add(h.URL != want.Webhook.URL, "url")
		add(h.Timeout != want.Webhook.Timeout, "timeout")
	}
	return fields
}

func (pl *planner) rotator(ctx context.Context, r Rotator) error {
	want := pl.rotatorSpec(r)
	ch := Change{Kind: KindRotator, Name: r.Name, ARN: pl.rotatorARN(r.Name), Line: r.Line}
	var key *Value
	if r.Webhook != nil {
		key = r.Webhook.Key
	}
	var have server.RotatorResponse
	err := pl.c.Native(ctx, "/v1/rotators/get", server.NameRequest{Name: r.Name}, &have)
	if isNativeNotFound(err) {
		if key != nil {
			ch.Notes = append(ch.Notes, "webhook key from "+r.Webhook.KeySource)
		}
		pl.add(ch, true, []step{putRotatorStep("register "+r.Type+" rotator", want, key)})
		return nil
	}
	if err != nil {
		return readError(KindRotator, r.Name, "rotators/get", err)
	}
	fields := rotatorChanges(have.RotatorSpec, want)
	if key != nil {
		switch {
		case len(fields) > 0:
			// A put replaces the whole definition: without the key the
			// server would generate a new one.
			fields = append(fields, "webhook key from "+r.Webhook.KeySource+" (write-only; sent with every change, since a put replaces the rotator whole)")
		case pl.opts.UpdateValues:
			fields = append(fields, "webhook key from "+r.Webhook.KeySource+" (write-only, so written on every --update-values run)")
		default:
			ch.Notes = append(ch.Notes, noteKeyLeft)
		}
	}
	var steps []step
	if len(fields) > 0 {
		steps = append(steps, putRotatorStep("update "+joinAnd(fields), want, key))
	}
	pl.add(ch, false, steps)
	return nil
}

// putRotatorStep registers spec, with key (sent base64) when it is not
// nil. The server's answer, which echoes the key, is discarded.
func putRotatorStep(desc string, spec rotation.RotatorSpec, key *Value) step {
	return step{desc: desc, run: func(ctx context.Context, rs *runState) (*undo, error) {
		req := server.RotatorRequest{RotatorSpec: spec}
		if key != nil {
			req.WebhookKey = base64.StdEncoding.EncodeToString(key.b)
		}
		return nil, rs.c.Native(ctx, "/v1/rotators/put", req, nil)
	}}
}

// Planning a secret's rotation.

// rotationText describes a rotation: "rotator sigil-random, every 30
// days, window 3h".
func rotationText(r *Rotation) string {
	s := "rotator " + r.Rotator + ", "
	if r.ScheduleExpression != "" {
		s += r.ScheduleExpression
	} else {
		s += "every " + strconv.FormatInt(r.AutomaticallyAfterDays, 10) + " days"
	}
	if r.Duration != "" {
		s += ", window " + r.Duration
	}
	return s
}

// sameDuration reports whether two window durations are the same ("" is
// the default).
func sameDuration(have, want string) bool {
	if have == "" || want == "" {
		return have == want
	}
	h, herr := schedule.ParseDuration(have)
	w, werr := schedule.ParseDuration(want)
	return herr == nil && werr == nil && h == w
}

// rotationDiff lists what differs between the server's rotation (from
// DescribeSecret) and r, which is enabled; nil means nothing does.
// DescribeSecret reports a rate(N days) expression's N as
// AutomaticallyAfterDays too, so that member is compared only when the
// file sets the schedule with it.
func rotationDiff(got *secretsmanager.DescribeSecretOutput, arn string, r *Rotation) []string {
	if got == nil || !aws.ToBool(got.RotationEnabled) {
		return []string{"enable rotation"}
	}
	var rr smtypes.RotationRulesType
	if got.RotationRules != nil {
		rr = *got.RotationRules
	}
	var fields []string
	if aws.ToString(got.RotationLambdaARN) != arn {
		fields = append(fields, "rotator")
	}
	haveExpr := aws.ToString(rr.ScheduleExpression)
	if r.ScheduleExpression != "" {
		if haveExpr != r.ScheduleExpression {
			fields = append(fields, "schedule")
		}
	} else if haveExpr != "" || aws.ToInt64(rr.AutomaticallyAfterDays) != r.AutomaticallyAfterDays {
		fields = append(fields, "schedule")
	}
	if !sameDuration(aws.ToString(rr.Duration), r.Duration) {
		fields = append(fields, "window")
	}
	if len(fields) == 0 {
		return nil
	}
	return []string{"change rotation " + joinAnd(fields)}
}

// rotationSteps plans a secret's rotation block: nothing when the file has
// none, CancelRotateSecret to turn an enabled rotation off, and one
// RotateSecret when rotation is off or its rotator, schedule or window
// differ. got is the secret's DescribeSecret, nil for a secret this run
// creates; secretID names the secret when the step runs. The note says
// what is left as is.
func (pl *planner) rotationSteps(r *Rotation, got *secretsmanager.DescribeSecretOutput, secretID func(*runState) (string, error)) ([]step, string) {
	if r == nil {
		return nil, ""
	}
	if !r.Enabled {
		if got == nil || !aws.ToBool(got.RotationEnabled) {
			return nil, "rotation: off"
		}
		return []step{{desc: "CancelRotateSecret: turn rotation off (enabled: false)", run: func(ctx context.Context, rs *runState) (*undo, error) {
			id, err := secretID(rs)
			if err != nil {
				return nil, err
			}
			_, err = rs.c.SecretsManager.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String(id)})
			return nil, err
		}}}, ""
	}
	arn := pl.rotationARN(r.Rotator)
	diff := rotationDiff(got, arn, r)
	if diff == nil {
		return nil, "rotation: unchanged (" + rotationText(r) + ")"
	}
	when := "first rotation at the next window, not now"
	if got != nil && aws.ToBool(got.RotationEnabled) {
		when = "next rotation at the schedule's next window, not now"
	}
	if r.RotateImmediately {
		when = "rotating now (rotateImmediately)"
	}
	in := &secretsmanager.RotateSecretInput{
		RotationLambdaARN: aws.String(arn),
		RotationRules:     &smtypes.RotationRulesType{},
		RotateImmediately: aws.Bool(r.RotateImmediately),
	}
	if r.ScheduleExpression != "" {
		in.RotationRules.ScheduleExpression = aws.String(r.ScheduleExpression)
	} else {
		in.RotationRules.AutomaticallyAfterDays = aws.Int64(r.AutomaticallyAfterDays)
	}
	if r.Duration != "" {
		in.RotationRules.Duration = aws.String(r.Duration)
	}
	desc := "RotateSecret: " + diff[0] + " (" + rotationText(r) + "); " + when
	return []step{{desc: desc, run: func(ctx context.Context, rs *runState) (*undo, error) {
		id, err := secretID(rs)
		if err != nil {
			return nil, err
		}
		call := *in
		call.SecretId = aws.String(id)
		_, err = rs.c.SecretsManager.RotateSecret(ctx, &call)
		return nil, err
	}}}, ""
}
