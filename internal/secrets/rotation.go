package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"sigil.dev/sigil/internal/rotation/schedule"
	"sigil.dev/sigil/internal/store"
)

// This file holds the rotation state of a secret, its schedule index, and
// the Go API the rotation runner (package rotation) drives: DueRotations,
// ClaimRotation, RotationValue, PutPendingValue, FinishRotation and
// FailRotation. These methods are the service acting on its own behalf:
// they ask no Authorizer and record no audit event (the runner records
// RotationStarted, RotationSucceeded and RotationFailed itself).

// stagePending is the label of the version a rotation is creating.
const stagePending = "AWSPENDING"

// prefixRotation is the schedule index: secrets/r/<due time>/<name> for
// every secret whose next rotation is scheduled, by due time (Unix
// nanoseconds, 20 digits), so DueRotations reads one bounded key range.
const prefixRotation = keyRoot + "r/"

// maxRotationErrorLen bounds the failure cause kept in a secret record.
const maxRotationErrorLen = 1024

// defaultDueLimit is DueRotations's limit when it is given none.
const defaultDueLimit = 100

// rotationState is the rotation configuration and progress of a secret,
// stored in its record. Times are Unix nanoseconds; 0 means never.
//
// Invariants: Next != 0 only while Enabled; Token != "" while a rotation is
// pending (started by RotateSecret or claimed by the runner, not yet
// finished or cancelled); Holder and Until describe the runner's claim.
type rotationState struct {
	Enabled bool `json:"on,omitempty"`
	// Lambda is the RotationLambdaARN.
	Lambda string `json:"fn,omitempty"`
	// Days, Expr and Duration are the RotationRules as given.
	Days     int64  `json:"days,omitempty"`
	Expr     string `json:"expr,omitempty"`
	Duration string `json:"dur,omitempty"`
	// Last is LastRotatedDate.
	Last int64 `json:"last,omitempty"`
	// Next is when the next rotation (or retry) is due: NextRotationDate,
	// and the time in the schedule index key.
	Next int64 `json:"next,omitempty"`
	// Token is the ClientRequestToken (the AWSPENDING version id) of the
	// pending rotation; retries reuse it.
	Token string `json:"token,omitempty"`
	// Attempts counts failed attempts of the pending rotation; Step, Error
	// and Attempted describe the last one.
	Attempts  int    `json:"attempts,omitempty"`
	Step      string `json:"step,omitempty"`
	Error     string `json:"err,omitempty"`
	Attempted int64  `json:"attempted,omitempty"`
	// Holder has claimed the pending rotation until Until.
	Holder string `json:"holder,omitempty"`
	Until  int64  `json:"until,omitempty"`
}

// clone returns a copy of st (nil for nil).
func (st *rotationState) clone() *rotationState {
	if st == nil {
		return nil
	}
	c := *st
	return &c
}

// rules returns the stored RotationRules.
func (st *rotationState) rules() schedule.Rules {
	return schedule.Rules{AutomaticallyAfterDays: st.Days, ScheduleExpression: st.Expr, Duration: st.Duration}
}

// hasRules reports whether a schedule is stored.
func (st *rotationState) hasRules() bool { return st.Days != 0 || st.Expr != "" }

// schedule parses the stored rules, which RotateSecret validated.
func (st *rotationState) schedule(name string) (*schedule.Schedule, error) {
	sc, err := schedule.Parse(st.rules())
	if err != nil {
		return nil, fmt.Errorf("%w: rotation rules of secret %q: %v", ErrCorruptRecord, name, err)
	}
	return sc, nil
}

// claimed reports whether a runner other than holder holds the rotation at
// now.
func (st *rotationState) claimed(holder string, now int64) bool {
	return st.Holder != "" && st.Holder != holder && st.Until > now
}

// rotationKey is r's key in the schedule index, or "" when r is not
// scheduled: no rotation due, scheduled for deletion (a deleted secret never
// comes up as due; RestoreSecret brings the key back), or dynamic.
func rotationKey(r *secretRecord) string {
	if r.Rotation == nil || r.Rotation.Next == 0 || r.scheduled() || r.Dynamic {
		return ""
	}
	return rotationKeyAt(r.Rotation.Next) + r.Name
}

// rotationKeyAt is the schedule index key prefix of due time t.
func rotationKeyAt(t int64) string { return prefixRotation + fmt.Sprintf("%020d", t) + "/" }

// putRotationIndex, deleteRotationIndex and moveRotationIndex maintain the
// schedule index beside the other indexes (putIndexes, deleteIndexes and
// moveIndexes call them).
func putRotationIndex(w writer, r *secretRecord) {
	if k := rotationKey(r); k != "" {
		w.Put(k, indexValue(r.Name))
	}
}

func deleteRotationIndex(w writer, r *secretRecord) {
	if k := rotationKey(r); k != "" {
		w.Delete(k)
	}
}

func moveRotationIndex(w writer, old, cur *secretRecord) {
	ok, nk := rotationKey(old), rotationKey(cur)
	if ok == nk {
		return
	}
	if ok != "" {
		w.Delete(ok)
	}
	if nk != "" {
		w.Put(nk, indexValue(cur.Name))
	}
}

// randSource adapts the service's randomness to io.Reader for
// schedule.Pick.
type randSource struct{ l *lockedReader }

func (r randSource) Read(b []byte) (int, error) {
	if err := r.l.fill(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// nextDue is when the next scheduled rotation after one at base runs,
// jittered inside its window, as seen at now: a window that has already
// closed (an overdue rotation) makes it due at now, and one that is open
// is picked from what is left of it. 0 means the schedule never fires.
func (s *Service) nextDue(sc *schedule.Schedule, base, now time.Time) int64 {
	w := sc.Next(base)
	switch {
	case w.IsZero():
		return 0
	case !w.End.After(now):
		return now.UnixNano()
	case w.Start.Before(now):
		w.Start = now
	}
	return schedule.Pick(w, randSource{s.rand}).UnixNano()
}

// DueRotation is a secret whose rotation should run now.
type DueRotation struct {
	// Name and ARN identify the secret.
	Name string
	ARN  string
	// Rotator is the secret's RotationLambdaARN.
	Rotator string
	// Token is the ClientRequestToken (the AWSPENDING version id) to use. A
	// retry reuses it; DueRotations leaves it empty when no rotation has
	// started yet, and ClaimRotation always sets it.
	Token string
	// Due is when the rotation (or its retry) became due.
	Due time.Time
	// Attempts is the number of failed attempts of this rotation so far.
	Attempts int
}

// Value is one version of a secret as the rotation runner sees it. Exactly
// one of String and Binary is set. It prints and encodes without the value.
type Value struct {
	VersionID string
	String    *string
	Binary    []byte
	Stages    []string
}

// GoString implements fmt.GoStringer without the value.
func (v Value) GoString() string { return v.describe() }

// Format implements fmt.Formatter, so every verb prints the version and its
// stages but never the value.
func (v Value) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(v.describe())) }

// LogValue implements slog.LogValuer without the value.
func (v Value) LogValue() slog.Value { return slog.StringValue(v.describe()) }

// MarshalJSON implements json.Marshaler without the value.
func (v Value) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		VersionID string
		Stages    []string
		Value     string
	}{v.VersionID, v.Stages, redacted})
}

func (v Value) describe() string {
	return "version " + v.VersionID + " [" + strings.Join(v.Stages, " ") + "] " + redacted
}

// DueRotations returns up to limit (100 when limit <= 0) secrets whose
// rotation is due at now, the longest overdue first, skipping those another
// runner has claimed. It reads the schedule index from its start to now
// only, so its cost is bounded by the number of due rotations, not of
// secrets.
func (s *Service) DueRotations(ctx context.Context, now time.Time, limit int) ([]DueRotation, error) {
	if limit <= 0 {
		limit = defaultDueLimit
	}
	nowNanos := now.UnixNano()
	bound := rotationKeyAt(nowNanos + 1) // every key due at or before now sorts below
	var out []DueRotation
	after := ""
	for len(out) < limit {
		es, next, err := s.store.List(ctx, prefixRotation, after, limit)
		if err != nil {
			return nil, fmt.Errorf("listing due rotations: %w", err)
		}
		for _, e := range es {
			if e.Key >= bound {
				return out, nil
			}
			after = e.Key
			name, err := indexName(e.Key, e.Value)
			if err != nil {
				return nil, err
			}
			rec, err := s.getRecord(ctx, name)
			if err != nil {
				return nil, err
			}
			// A key the record no longer names is a leftover of a change
			// committed since the listing; the new key is listed instead.
			if rec == nil || rec.expired(nowNanos) || rotationKey(rec) != e.Key || rec.Rotation.claimed("", nowNanos) {
				continue
			}
			out = append(out, dueOf(rec))
			if len(out) == limit {
				return out, nil
			}
		}
		if next == "" || len(es) == 0 {
			return out, nil
		}
	}
	return out, nil
}

// dueOf describes the pending rotation of rec.
func dueOf(rec *secretRecord) DueRotation {
	st := rec.Rotation
	return DueRotation{
		Name: rec.Name, ARN: rec.ARN, Rotator: st.Lambda, Token: st.Token,
		Due: time.Unix(0, st.Next).UTC(), Attempts: st.Attempts,
	}
}

// ClaimRotation marks the rotation of the secret name as run by holder
// until until, so that another runner (another replica) skips it, and
// returns it with Token set: the pending rotation's token, or a new random
// UUID when none has started. holder may renew its own claim. It fails with
// an error wrapping ErrRotationClaimed when another holder's claim is still
// valid at now, or when the rotation is not due at now any more (finished,
// cancelled, rescheduled, the secret deleted or dynamic; a secret that no
// longer exists also matches ErrNotFound).
func (s *Service) ClaimRotation(ctx context.Context, name, holder string, now, until time.Time) (DueRotation, error) {
	if holder == "" || !until.After(now) {
		return DueRotation{}, fmt.Errorf("claiming the rotation of %q: a holder and a later expiry are required", name)
	}
	token, err := s.newUUID()
	if err != nil {
		return DueRotation{}, err
	}
	nowNanos := now.UnixNano()
	var out DueRotation
	_, err = store.Update(ctx, s.store, func(v *store.View) error {
		cur, err := s.viewRotating(v, name, nowNanos)
		if err != nil {
			return err
		}
		st := cur.Rotation
		switch {
		case st.Next == 0 || st.Next > nowNanos:
			return fmt.Errorf("%w: the rotation of %q is not due", ErrRotationClaimed, name)
		case st.claimed(holder, nowNanos):
			return fmt.Errorf("%w: the rotation of %q is claimed by %s", ErrRotationClaimed, name, st.Holder)
		}
		next := cur.clone()
		ns := next.Rotation
		if ns.Token == "" {
			ns.Token = token
		}
		ns.Holder, ns.Until = holder, until.UnixNano()
		v.Put(nameKey(name), encode(next))
		moveIndexes(v, cur, next)
		out = dueOf(next)
		return nil
	})
	switch {
	case errors.Is(err, ErrNotFound):
		// A secret that is gone is not due any more.
		return DueRotation{}, fmt.Errorf("claiming the rotation of %q: %w: %w", name, ErrRotationClaimed, err)
	case err != nil:
		return DueRotation{}, fmt.Errorf("claiming the rotation of %q: %w", name, err)
	}
	return out, nil
}

// viewRotating reads the record of name in a transaction for a rotation
// step: it must exist, not be expired, dynamic or scheduled for deletion,
// and have rotation state.
func (s *Service) viewRotating(v *store.View, name string, now int64) (*secretRecord, error) {
	key := nameKey(name)
	e, err := v.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: secret %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading secret %q: %w", name, err)
	}
	rec, err := decodeSecret(key, e.Value)
	if err != nil {
		return nil, err
	}
	switch {
	case rec.expired(now):
		return nil, fmt.Errorf("%w: secret %q", ErrNotFound, name)
	case rec.scheduled():
		return nil, fmt.Errorf("%w: secret %q is scheduled for deletion", ErrRotationClaimed, name)
	case rec.Dynamic:
		return nil, fmt.Errorf("%w: secret %q is dynamic and is never rotated", ErrRotationClaimed, name)
	case rec.Rotation == nil:
		return nil, fmt.Errorf("%w: secret %q has no rotation configured", ErrRotationClaimed, name)
	}
	return rec, nil
}

// RotationValue returns the version of the secret name chosen by versionID
// and/or stage (AWSCURRENT when both are empty). When both are given the
// version must carry the stage. A missing secret, a secret scheduled for
// deletion and a missing version are errors wrapping ErrNotFound, which is
// how the runner learns that AWSPENDING is still to be created.
func (s *Service) RotationValue(ctx context.Context, name, versionID, stage string) (Value, error) {
	now := s.now().UnixNano()
	rec, err := s.getRecord(ctx, name)
	if err != nil {
		return Value{}, err
	}
	if rec == nil || rec.expired(now) || rec.scheduled() {
		return Value{}, fmt.Errorf("%w: secret %q", ErrNotFound, name)
	}
	vid := versionID
	switch {
	case vid != "":
		if stage != "" && !slices.Contains(rec.stagesOf(vid), stage) {
			return Value{}, fmt.Errorf("%w: version %s of secret %q does not carry %s", ErrNotFound, vid, name, stage)
		}
	case stage != "":
		vid = rec.versionWithStage(stage)
	default:
		vid = rec.versionWithStage(stageCurrent)
	}
	if vid == "" {
		return Value{}, fmt.Errorf("%w: secret %q has no version labelled %s", ErrNotFound, name, cmpOr(stage, stageCurrent))
	}
	vv, err := s.readVersion(ctx, rec, vid)
	if err != nil {
		return Value{}, err
	}
	if vv == nil {
		return Value{}, fmt.Errorf("%w: version %s of secret %q", ErrNotFound, vid, name)
	}
	out := Value{VersionID: vid, Stages: rec.stagesOf(vid)}
	if vv.rec.Kind == kindString {
		str := vv.str
		out.String = &str
	} else {
		out.Binary = bytes.Clone(vv.rec.Value)
	}
	return out, nil
}

// cmpOr returns a, or b when a is empty.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// PutPendingValue writes version token of the secret name, holding exactly
// one of str and bin, labelled AWSPENDING (moving AWSPENDING off any other
// version). The same token with the same value is a no-op; the same token
// with another value is an error. It refuses dynamic secrets, secrets
// scheduled for deletion and secrets without rotation configured (errors
// wrapping ErrRotationClaimed), and a missing secret (ErrNotFound).
func (s *Service) PutPendingValue(ctx context.Context, name, token string, str *string, bin []byte) error {
	if aerr := validateToken("ClientRequestToken", token); aerr != nil {
		return fmt.Errorf("putting the pending value of %q: %s", name, aerr.Message)
	}
	val, aerr := valueOf(str, bin, false)
	if aerr != nil {
		return fmt.Errorf("putting the pending value of %q: %s", name, aerr.Message)
	}
	now := s.now().UnixNano()
	_, err := store.Update(ctx, s.store, func(v *store.View) error {
		cur, err := s.viewRotating(v, name, now)
		if err != nil {
			return err
		}
		idx, err := viewVerIndex(v, cur.ID)
		if err != nil {
			return err
		}
		if idx.find(token) >= 0 {
			same, err := sameValue(v, cur.ID, token, val)
			if err != nil {
				return err
			}
			if !same {
				return fmt.Errorf("version %s already exists with another value; versions never change", token)
			}
			return nil
		}
		next := cur.clone()
		if _, err := s.addVersion(v, next, idx, token, val, []string{stagePending}, now); err != nil {
			return err
		}
		next.Changed = now
		v.Put(nameKey(name), encode(next))
		v.Put(verIndexKey(cur.ID), encode(idx))
		moveIndexes(v, cur, next)
		return nil
	})
	if err != nil {
		return fmt.Errorf("putting the pending value of %q: %w", name, err)
	}
	return nil
}

// FinishRotation completes the pending rotation token of the secret name:
// AWSCURRENT moves to version token (the old AWSCURRENT becomes
// AWSPREVIOUS) unless it is there already (a webhook moved it), AWSPENDING
// is removed, LastRotatedDate becomes now, the failure record and the claim
// are cleared, and the next rotation is scheduled from the rules, jittered
// inside its window. A token that is not the pending rotation's (it was
// cancelled or finished) is an error wrapping ErrRotationClaimed.
func (s *Service) FinishRotation(ctx context.Context, name, token string, now time.Time) error {
	nowNanos := now.UnixNano()
	_, err := store.Update(ctx, s.store, func(v *store.View) error {
		cur, err := s.viewRotating(v, name, nowNanos)
		if err != nil {
			return err
		}
		if cur.Rotation.Token == "" || cur.Rotation.Token != token {
			return fmt.Errorf("%w: %s is not the pending rotation of %q", ErrRotationClaimed, token, name)
		}
		idx, err := viewVerIndex(v, cur.ID)
		if err != nil {
			return err
		}
		i := idx.find(token)
		if i < 0 {
			return fmt.Errorf("%w: version %s of secret %q", ErrNotFound, token, name)
		}
		next := cur.clone()
		if next.versionWithStage(stageCurrent) != token {
			moveCurrent(next, token, idx.Versions[i].Created)
		}
		next.removeStage(stagePending)
		st := next.Rotation
		*st = rotationState{Enabled: st.Enabled, Lambda: st.Lambda, Days: st.Days, Expr: st.Expr, Duration: st.Duration, Last: nowNanos}
		if st.Enabled {
			sc, err := st.schedule(name)
			if err != nil {
				return err
			}
			st.Next = s.nextDue(sc, now, now)
		}
		next.Changed = nowNanos
		v.Put(nameKey(name), encode(next))
		moveIndexes(v, cur, next)
		return nil
	})
	if err != nil {
		return fmt.Errorf("finishing the rotation of %q: %w", name, err)
	}
	return nil
}

// FailRotation records a failed attempt of the pending rotation token of
// the secret name: AWSPENDING and AWSCURRENT stay as they are, step and
// cause (which must not hold secret material; it is shown in
// DescribeSecret) are recorded, Attempts grows by one, the claim is
// released, and the retry is due at retryAt. A token that is not the
// pending rotation's is an error wrapping ErrRotationClaimed.
func (s *Service) FailRotation(ctx context.Context, name, token, step, cause string, retryAt time.Time) error {
	now := s.now()
	if len(cause) > maxRotationErrorLen {
		cause = cause[:maxRotationErrorLen]
	}
	retry := retryAt.UnixNano()
	if retryAt.IsZero() {
		retry = now.UnixNano()
	}
	_, err := store.Update(ctx, s.store, func(v *store.View) error {
		cur, err := s.viewRotating(v, name, now.UnixNano())
		if err != nil {
			return err
		}
		if cur.Rotation.Token == "" || cur.Rotation.Token != token {
			return fmt.Errorf("%w: %s is not the pending rotation of %q", ErrRotationClaimed, token, name)
		}
		next := cur.clone()
		st := next.Rotation
		st.Attempts++
		st.Step, st.Error, st.Attempted = step, cause, now.UnixNano()
		st.Holder, st.Until = "", 0
		if st.Enabled {
			st.Next = retry
		}
		v.Put(nameKey(name), encode(next))
		moveIndexes(v, cur, next)
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording the failed rotation of %q: %w", name, err)
	}
	return nil
}
