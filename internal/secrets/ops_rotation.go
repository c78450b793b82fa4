package secrets

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/rotation/schedule"
	"sigil.dev/sigil/internal/store"
)

// This file holds the rotation operations, RotateSecret and
// CancelRotateSecret, their wire shapes, and the rotation members of
// DescribeSecret and ListSecrets. The rotation itself runs asynchronously
// in package rotation, through the Go API in rotation.go.

type rotationRulesType struct {
	AutomaticallyAfterDays *int64  `json:",omitempty"`
	Duration               *string `json:",omitempty"`
	ScheduleExpression     *string `json:",omitempty"`
}

type rotateSecretInput struct {
	SecretId           *string
	ClientRequestToken *string
	RotationLambdaARN  *string
	RotationRules      *rotationRulesType
	RotateImmediately  *bool
}

type rotateSecretOutput struct {
	ARN       string
	Name      string
	VersionId string `json:",omitempty"`
}

// rotationStatus is sigil's SigilRotationStatus member of DescribeSecret and
// ListSecrets: the last failed attempt of the pending rotation.
type rotationStatus struct {
	Step        string
	Error       string
	Attempts    int
	LastAttempt *epoch `json:",omitempty"`
}

// rotationInfo holds the rotation members of DescribeSecret and
// ListSecrets entries; both embed it.
type rotationInfo struct {
	RotationEnabled     *bool              `json:",omitempty"`
	RotationLambdaARN   string             `json:",omitempty"`
	RotationRules       *rotationRulesType `json:",omitempty"`
	LastRotatedDate     *epoch             `json:",omitempty"`
	NextRotationDate    *epoch             `json:",omitempty"`
	SigilRotationStatus *rotationStatus    `json:",omitempty"`
}

// rotationInfoOf reports the rotation state of rec.
func rotationInfoOf(rec *secretRecord) rotationInfo {
	st := rec.Rotation
	if st == nil {
		return rotationInfo{}
	}
	enabled := st.Enabled
	info := rotationInfo{RotationEnabled: &enabled, RotationLambdaARN: st.Lambda, LastRotatedDate: epochOf(st.Last)}
	if st.hasRules() {
		rr := &rotationRulesType{}
		days := st.Days
		if days == 0 && strings.HasPrefix(st.Expr, "rate(") {
			// AWS reports the interval of a schedule in days as
			// AutomaticallyAfterDays too.
			if sc, err := schedule.ParseExpression(st.Expr); err == nil {
				days = sc.Days()
			}
		}
		if days != 0 {
			rr.AutomaticallyAfterDays = &days
		}
		if st.Expr != "" {
			expr := st.Expr
			rr.ScheduleExpression = &expr
		}
		if st.Duration != "" {
			dur := st.Duration
			rr.Duration = &dur
		}
		info.RotationRules = rr
	}
	if st.Enabled {
		info.NextRotationDate = epochOf(st.Next)
	}
	if st.Attempts > 0 && st.Error != "" {
		info.SigilRotationStatus = &rotationStatus{Step: st.Step, Error: st.Error, Attempts: st.Attempts, LastAttempt: epochOf(st.Attempted)}
	}
	return info
}

// lambdaARNPattern is what a RotationLambdaARN must look like: a Lambda
// function ARN, optionally with a version or alias.
var lambdaARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:lambda:[a-z0-9-]{1,64}:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]{1,128})?$`)

// validateLambdaARN checks a RotationLambdaARN.
func validateLambdaARN(arn string) *awsproto.Error {
	if len(arn) > 2048 || !lambdaARNPattern.MatchString(arn) {
		return errInvalidParameter("The parameter RotationLambdaARN must be the ARN of a rotation function: arn:aws:lambda:<region>:<account>:function:<name>.")
	}
	return nil
}

// parseRotationRules validates RotationRules; nil when absent or empty.
func parseRotationRules(in *rotationRulesType) (*schedule.Rules, *awsproto.Error) {
	if in == nil || (in.AutomaticallyAfterDays == nil && in.ScheduleExpression == nil && in.Duration == nil) {
		return nil, nil
	}
	r := schedule.Rules{ScheduleExpression: deref(in.ScheduleExpression), Duration: deref(in.Duration)}
	if in.AutomaticallyAfterDays != nil {
		if *in.AutomaticallyAfterDays == 0 {
			return nil, errInvalidParameter("RotationRules.AutomaticallyAfterDays must be between %d and %d.", schedule.MinDays, schedule.MaxDays)
		}
		r.AutomaticallyAfterDays = *in.AutomaticallyAfterDays
	}
	if in.ScheduleExpression != nil && r.ScheduleExpression == "" {
		return nil, errInvalidParameter("RotationRules.ScheduleExpression must be a rate() or cron() expression, such as rate(10 days) or cron(0 16 1,15 * ? *).")
	}
	if in.Duration != nil && r.Duration == "" {
		return nil, errInvalidParameter("RotationRules.Duration must be a number of hours from 1h to 24h, such as 3h.")
	}
	if _, err := schedule.Parse(r); err != nil {
		return nil, errInvalidParameter("%s", err.Error())
	}
	return &r, nil
}

func errPreviousRotation() *awsproto.Error {
	return errInvalidRequest("A previous rotation isn't complete. That rotation will be continued.")
}

func (s *Service) rotateSecret(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "RotateSecret", false)
	var in rotateSecretInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	if aerr == nil && in.ClientRequestToken != nil {
		aerr = validateToken("ClientRequestToken", *in.ClientRequestToken)
	}
	if aerr == nil && in.RotationLambdaARN != nil {
		aerr = validateLambdaARN(*in.RotationLambdaARN)
	}
	var rules *schedule.Rules
	if aerr == nil {
		rules, aerr = parseRotationRules(in.RotationRules)
	}
	if aerr != nil {
		return nil, aerr
	}
	immediately := in.RotateImmediately == nil || *in.RotateImmediately
	token := deref(in.ClientRequestToken)
	if token == "" {
		var err error
		if token, err = s.newUUID(); err != nil {
			return nil, err
		}
	}
	now := inv.now
	nowNanos := now.UnixNano()
	r, err := s.resolve(ctx, secretID, nowNanos)
	if err != nil {
		return nil, err
	}
	t := inv.secretTarget(r).with("secretsmanager:RotationLambdaARN", deref(in.RotationLambdaARN))
	if err := inv.authorize(ctx, t); err != nil {
		return inv.finish(ctx, nil, err)
	}
	// As in AWS, naming a rotation function also needs permission to
	// invoke it: a rotator rewrites the secret's value, which RotateSecret
	// alone does not allow.
	if in.RotationLambdaARN != nil {
		ft := inv.starTarget()
		ft.resource = *in.RotationLambdaARN
		if err := inv.authorizeAction(ctx, "lambda:InvokeFunction", ft); err != nil {
			return inv.finish(ctx, nil, err)
		}
	}
	rec, err := requireActive(r)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	if rec.Dynamic {
		return inv.finish(ctx, nil, errRotateDynamic())
	}
	if in.RotationLambdaARN != nil && s.rotators != nil {
		if err := s.rotators(ctx, *in.RotationLambdaARN); err != nil {
			if errors.Is(err, ErrUnknownRotator) {
				s.log.InfoContext(ctx, "secrets: RotateSecret names an unknown rotator", "secret", rec.Name, "rotator", *in.RotationLambdaARN, "err", err)
				err = errInvalidParameter("Secrets Manager cannot invoke the specified rotation function %s: sigil has no rotator with that function name.", *in.RotationLambdaARN)
			} else {
				err = fmt.Errorf("checking rotator %s: %w", *in.RotationLambdaARN, err)
			}
			return inv.finish(ctx, nil, err)
		}
	}
	var (
		out     rotateSecretOutput
		started bool
	)
	_, err = store.Update(ctx, s.store, func(v *store.View) error {
		out, started = rotateSecretOutput{}, false
		cur, err := viewRecord(v, rec, nowNanos)
		if err != nil {
			return err
		}
		switch {
		case cur.scheduled():
			return errMarkedForDeletion()
		case cur.Dynamic:
			return errRotateDynamic()
		}
		next := cur.clone()
		st := next.Rotation
		if st == nil {
			st = &rotationState{}
			next.Rotation = st
		}
		if in.RotationLambdaARN != nil {
			st.Lambda = *in.RotationLambdaARN
		}
		if rules != nil {
			st.Days, st.Expr, st.Duration = rules.AutomaticallyAfterDays, rules.ScheduleExpression, rules.Duration
		}
		switch {
		case st.Lambda == "":
			return errInvalidRequest("No rotation function is associated with this secret: specify RotationLambdaARN.")
		case !st.hasRules():
			return errInvalidRequest("No rotation schedule is associated with this secret: specify RotationRules.")
		}
		sc, err := st.schedule(cur.Name)
		if err != nil {
			return err
		}
		st.Enabled = true
		out = rotateSecretOutput{ARN: cur.ARN, Name: cur.Name}
		if immediately {
			if started, err = startRotation(v, cur, st, token, nowNanos); err != nil {
				return err
			}
			out.VersionId = token
		} else if st.Token == "" {
			// Rotation waits for the next window; a pending rotation
			// keeps its retry time.
			base := now
			if st.Last != 0 {
				base = time.Unix(0, st.Last)
			}
			st.Next = s.nextDue(sc, base, now)
		}
		if rotationEqual(cur.Rotation, st) {
			return nil
		}
		next.Changed = nowNanos
		v.Put(nameKey(cur.Name), encode(next))
		moveIndexes(v, cur, next)
		return nil
	})
	if err == nil && started && s.onRotate != nil {
		s.onRotate()
	}
	return inv.finish(ctx, &out, err)
}

// startRotation makes the rotation with token due now in st (the new state
// of cur), and reports whether it did. A rotation pending with another
// token, or an AWSPENDING version other than AWSCURRENT's and token's, is
// AWS's "previous rotation isn't complete" error. A token naming a version
// that already exists and is not pending is the retry of a rotation that
// has finished: nothing starts.
func startRotation(v *store.View, cur *secretRecord, st *rotationState, token string, now int64) (bool, error) {
	pending := cur.versionWithStage(stagePending)
	if (pending != "" && pending != cur.versionWithStage(stageCurrent) && pending != token) ||
		(st.Token != "" && st.Token != token) {
		return false, errPreviousRotation()
	}
	if st.Token == "" && pending != token {
		idx, err := viewVerIndex(v, cur.ID)
		if err != nil {
			return false, err
		}
		if idx.find(token) >= 0 {
			return false, nil
		}
	}
	if st.Token != token {
		st.Token = token
		st.Attempts, st.Step, st.Error, st.Attempted = 0, "", "", 0
	}
	if st.Next == 0 || st.Next > now {
		st.Next = now
	}
	return true, nil
}

// rotationEqual reports whether two rotation states are the same.
func rotationEqual(a, b *rotationState) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func errRotateDynamic() *awsproto.Error {
	return errInvalidRequest("You can't rotate a dynamic secret: sigil issues its value for each caller, and every value expires on its own.")
}

type cancelRotateSecretOutput struct {
	ARN       string
	Name      string
	VersionId string `json:",omitempty"`
}

func (s *Service) cancelRotateSecret(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "CancelRotateSecret", false)
	now := inv.nowNanos()
	r, err := s.resolveSecretID(ctx, c, now)
	if err != nil {
		return nil, err
	}
	if err := inv.authorize(ctx, inv.secretTarget(r)); err != nil {
		return inv.finish(ctx, nil, err)
	}
	rec, err := requireActive(r)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	var out cancelRotateSecretOutput
	_, err = store.Update(ctx, s.store, func(v *store.View) error {
		cur, err := viewRecord(v, rec, now)
		if err != nil {
			return err
		}
		if cur.scheduled() {
			return errMarkedForDeletion()
		}
		out = cancelRotateSecretOutput{ARN: cur.ARN, Name: cur.Name}
		if cur.Rotation == nil {
			return nil
		}
		// The version a cancelled rotation was creating keeps AWSPENDING,
		// as in AWS; the caller decides what to do with it.
		out.VersionId = cur.Rotation.Token
		if p := cur.versionWithStage(stagePending); out.VersionId == "" && p != "" && p != cur.versionWithStage(stageCurrent) {
			out.VersionId = p
		}
		next := cur.clone()
		st := next.Rotation
		st.Enabled, st.Next, st.Token, st.Holder, st.Until = false, 0, "", "", 0
		if rotationEqual(cur.Rotation, st) {
			return nil
		}
		next.Changed = now
		v.Put(nameKey(cur.Name), encode(next))
		moveIndexes(v, cur, next)
		return nil
	})
	return inv.finish(ctx, &out, err)
}
