// Package audit records every authorization decision and administrative
// change. Operations build an [Event] and hand it to a [Sink] before any
// response leaves the server; a Sink that returns an error makes the request
// fail closed.
//
// Events never carry secret values: fields that could hold secret material
// are left out by the emitter (and, with the durable log, HMAC'd).
package audit

import (
	"context"
	"time"

	"sigil.dev/sigil/internal/authn"
)

// Event is one audited request or change.
type Event struct {
	Time      time.Time
	RequestID string
	SourceIP  string
	UserAgent string
	// Principal is the caller; nil when authentication failed.
	Principal *authn.Principal
	// Source is the service, e.g. "secretsmanager.amazonaws.com".
	Source string
	// Action is the operation name, e.g. "GetSecretValue".
	Action string
	// Resources are the ARNs the request touched.
	Resources []string
	// Allowed is the authorization decision; Reason, Policy and Statement
	// explain it.
	Allowed   bool
	Reason    string
	Policy    string
	Statement string
	// ErrorCode and ErrorMessage are set when the request failed.
	ErrorCode    string
	ErrorMessage string
	// ReadOnly is true for operations that change nothing.
	ReadOnly bool
	// ReturnsSecret is true when the response carries secret material; the
	// sink must make the record durable before the response is written.
	ReturnsSecret bool
	// Latency is the time from request start to the decision.
	Latency time.Duration
}

// Sink receives audit events. Record returns only when the event is as
// durable as the sink promises; an error means the caller must fail closed.
type Sink interface {
	Record(ctx context.Context, ev *Event) error
}

// Discard is a Sink that drops every event. It stands in until the durable
// audit log exists.
type Discard struct{}

// Record implements Sink.
func (Discard) Record(context.Context, *Event) error { return nil }
