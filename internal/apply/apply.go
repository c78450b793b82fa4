package apply

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
)

// Status is what happened to one object when applying.
type Status string

// The statuses.
const (
	StatusCreated      Status = "created"
	StatusUpdated      Status = "updated"
	StatusUnchanged    Status = "unchanged"
	StatusRolledBack   Status = "rolled back"
	StatusFailed       Status = "failed"
	StatusNotAttempted Status = "not attempted"
)

// rollbackTimeout bounds the undo calls after a failure. They run even when
// the apply's context was cancelled (Ctrl-C), so that an interrupted create
// does not leave half an object behind.
const rollbackTimeout = 30 * time.Second

// ObjectResult is what happened to one object.
type ObjectResult struct {
	// Change is the object's plan. ARN is filled in for a secret created
	// by this run.
	Change
	// Status is created, updated, unchanged, "rolled back", failed or
	// "not attempted".
	Status Status `json:"status"`
	// Applied are the steps that succeeded (and, when RolledBack is set,
	// were then undone).
	Applied []string `json:"applied,omitempty"`
	// FailedStep is the step that failed, and Error the server's answer.
	FailedStep string `json:"failedStep,omitempty"`
	Error      string `json:"error,omitempty"`
	// RolledBack are the undo steps that succeeded, in the order run.
	RolledBack []string `json:"rolledBack,omitempty"`
	// LeftBehind are the undo steps that failed or did not run: what an
	// operator must remove by hand. Empty after a clean rollback.
	LeftBehind []string `json:"leftBehind,omitempty"`
	// RollbackError is the first undo failure.
	RollbackError string `json:"rollbackError,omitempty"`
}

// Result is the outcome of Apply, one ObjectResult per Change.
type Result struct {
	// Objects are in apply order.
	Objects []ObjectResult `json:"objects"`
}

// Counts returns how many objects were created, updated, left unchanged,
// and failed (rolled back or not).
func (r *Result) Counts() (created, updated, unchanged, failed int) {
	for _, o := range r.Objects {
		switch o.Status {
		case StatusCreated:
			created++
		case StatusUpdated:
			updated++
		case StatusUnchanged:
			unchanged++
		case StatusFailed, StatusRolledBack:
			failed++
		}
	}
	return created, updated, unchanged, failed
}

// Apply makes the server match the plan, object by object in plan order,
// each object's steps in order. It stops at the first failing step:
//
//   - An object this run was creating is rolled back: every step that
//     succeeded is undone in reverse order (policies detached and deleted,
//     then the role, user, policy, provider or secret deleted; a secret
//     without a recovery window), so it is as if the object had never been
//     applied. If an undo call fails too, the object's LeftBehind lists
//     what remains.
//   - An object that already existed keeps the steps that succeeded
//     (Applied); FailedStep and Error say which step failed and why, and
//     the later steps did not run.
//   - Objects after the failing one are not attempted; objects before it
//     stay applied.
//
// The error then wraps ErrApply; the Result is returned either way. Apply
// acts on the state Plan saw: run Plan again if the server may have
// changed since.
func Apply(ctx context.Context, c Clients, p *PlanResult) (*Result, error) {
	if p == nil {
		return nil, errors.New("apply: nil plan")
	}
	rs := &runState{c: c, vars: p.vars, secretARNs: maps.Clone(p.secretARNs)}
	if rs.secretARNs == nil {
		rs.secretARNs = map[string]string{}
	}
	res := &Result{Objects: make([]ObjectResult, 0, len(p.objects))}
	var failure error
	for _, obj := range p.objects {
		or := ObjectResult{Change: p.Changes[obj.change]}
		switch {
		case failure != nil:
			or.Status = StatusNotAttempted
		case or.Action == ActionNone:
			or.Status = StatusUnchanged
		default:
			failure = applyObject(ctx, rs, obj, &or)
		}
		res.Objects = append(res.Objects, or)
	}
	return res, failure
}

// applyObject runs one object's steps, rolling back a failed create.
func applyObject(ctx context.Context, rs *runState, obj *object, or *ObjectResult) error {
	var undos []*undo
	for i, st := range obj.steps {
		u, err := st.run(ctx, rs)
		if err == nil {
			or.Applied = append(or.Applied, st.desc)
			if u != nil {
				undos = append(undos, u)
			}
			continue
		}
		or.FailedStep, or.Error = st.desc, apiMessage(err)
		or.Status = StatusFailed
		msg := fmt.Sprintf("%s: step %d of %d (%s) failed: %s",
			objectName(or.Kind, or.Name, or.Line), i+1, len(obj.steps), st.desc, or.Error)
		if or.Action == ActionCreate {
			rollback(ctx, rs, undos, or)
			if len(or.LeftBehind) == 0 {
				or.Status = StatusRolledBack
				return fmt.Errorf("%w: %s; rolled back: the %s was not created", ErrApply, msg, or.Kind)
			}
			return fmt.Errorf("%w: %s; rollback failed (%s), left behind: %s", ErrApply, msg, or.RollbackError, strings.Join(or.LeftBehind, ", "))
		}
		if i == 0 {
			return fmt.Errorf("%w: %s; the %s is unchanged", ErrApply, msg, or.Kind)
		}
		return fmt.Errorf("%w: %s; the %s keeps steps 1-%d, the later steps were not attempted", ErrApply, msg, or.Kind, i)
	}
	if or.Action == ActionCreate {
		or.Status = StatusCreated
		if or.Kind == KindSecret || or.Kind == KindDynamicSecret {
			or.ARN = rs.secretARNs[or.Name]
		}
	} else {
		or.Status = StatusUpdated
	}
	return nil
}

// rollback undoes steps in reverse order; it stops at the first failure,
// since later undos (deleting the entity) would fail on what remains.
func rollback(ctx context.Context, rs *runState, undos []*undo, or *ObjectResult) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	for i := len(undos) - 1; i >= 0; i-- {
		if err := undos[i].run(ctx, rs); err != nil {
			or.RollbackError = apiMessage(err)
			for j := i; j >= 0; j-- {
				or.LeftBehind = append(or.LeftBehind, undos[j].desc)
			}
			return
		}
		or.RolledBack = append(or.RolledBack, undos[i].desc)
	}
}
