package apply

import (
	"fmt"
	"io"
	"strings"
)

// Human-readable output. Nothing here can print a secret value: Changes and
// ObjectResults hold none.

// symbols mark a change's action, as diff tools do.
var symbols = map[Action]string{ActionCreate: "+", ActionUpdate: "~", ActionNone: "="}

// WriteText writes the plan: one line per object with its action, its
// steps indented below, and a summary line. A plan without changes ends
// "Plan: no changes".
func (p *PlanResult) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("Account %s, region %s.\n\n", p.Account, p.Region)
	width := nameWidth(p.Changes)
	for _, c := range p.Changes {
		ew.printf("  %s %-14s %-*s  %s", symbols[c.Action], c.Kind, width, c.Name, c.Action)
		if len(c.Notes) > 0 {
			ew.printf("; %s", strings.Join(c.Notes, "; "))
		}
		ew.printf("\n")
		for _, s := range c.Steps {
			ew.printf("      - %s\n", s)
		}
	}
	create, update, unchanged := p.Counts()
	if len(p.Changes) > 0 {
		ew.printf("\n")
	}
	if create+update == 0 {
		ew.printf("Plan: no changes; %d %s up to date.\n", unchanged, plural(unchanged, "object is", "objects are"))
	} else {
		ew.printf("Plan: %d to create, %d to update, %d unchanged.\n", create, update, unchanged)
	}
	return ew.err
}

// WriteText writes what happened: failures in detail, then a summary.
func (r *Result) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	var notAttempted []string
	for _, o := range r.Objects {
		switch o.Status {
		case StatusFailed, StatusRolledBack:
			ew.printf("\n  ! %s %s: %s failed: %s\n", o.Kind, o.Name, o.FailedStep, o.Error)
			if len(o.Applied) > 0 && o.Action == ActionUpdate {
				ew.printf("      applied before the failure: %s\n", strings.Join(o.Applied, "; "))
			}
			if len(o.RolledBack) > 0 {
				ew.printf("      rolled back: %s\n", strings.Join(o.RolledBack, "; "))
			}
			if o.Status == StatusRolledBack {
				ew.printf("      the %s was not created\n", o.Kind)
			}
			if len(o.LeftBehind) > 0 {
				ew.printf("      rollback failed (%s); remove by hand: %s\n", o.RollbackError, strings.Join(o.LeftBehind, "; "))
			}
		case StatusNotAttempted:
			notAttempted = append(notAttempted, string(o.Kind)+" "+o.Name)
		}
	}
	if len(notAttempted) > 0 {
		ew.printf("  not attempted: %s\n", strings.Join(notAttempted, ", "))
	}
	created, updated, unchanged, failed := r.Counts()
	if failed > 0 {
		ew.printf("\nApply failed: %d created, %d updated, %d unchanged, %d failed, %d not attempted.\n",
			created, updated, unchanged, failed, len(notAttempted))
	} else {
		ew.printf("\nApplied: %d created, %d updated, %d unchanged.\n", created, updated, unchanged)
	}
	return ew.err
}

func nameWidth(cs []Change) int {
	w := 0
	for _, c := range cs {
		w = max(w, len(c.Name))
	}
	return min(w, 60)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
