// Package audit records every authorization decision and administrative
// change in a tamper-evident, append-only log that can be verified offline.
//
// Operations build an [Event] and hand it to a [Sink] before any response
// leaves the server; a Sink that returns an error makes the request fail
// closed. The durable Sink is [*Log]:
//
//	keys, err := audit.LoadOrCreateKeys(dataDir, rand.Reader)
//	lg, err := audit.Open(filepath.Join(dataDir, "audit"), audit.Options{Keys: keys})
//	defer lg.Close()
//	err = lg.Record(ctx, ev) // returns once ev is fsynced (sync mode)
//
// # Records
//
// The log is a directory of segment files (audit-000001-000000000001.jsonl,
// ...), one JSON object per line in the AWS CloudTrail record schema
// (eventVersion, eventTime, eventSource, eventName, userIdentity,
// requestParameters, responseElements, resources, ...), so tools that read
// CloudTrail records read these unchanged; the members of requestParameters
// and responseElements are named in lower camel case (secretId, arn) as
// CloudTrail shows them, whatever the wire protocol called them. sigil's
// own facts (the deciding policy and statement, the image digest, the
// Kubernetes identity, latency) sit under additionalEventData, which ends
// with the record's sequence number and the SHA-256 of the previous line.
// FORMAT.md beside this file is the precise specification.
//
// Each segment starts with a header record naming the previous segment, its
// length and its last hash; every [Options.CheckpointEvery] records or
// [Options.CheckpointInterval] a checkpoint record carries an Ed25519
// signature over (sequence, chain hash, time); [Log.Close] writes a final
// checkpoint. [Verify] recomputes the chain across segments and checks every
// signature with the public key alone, reporting the first broken record.
// [Query] and [Follow] read records back with a [Filter].
//
// # Durability
//
// One writer goroutine batches records and fsyncs once per batch (group
// commit), so many concurrent Record calls share one fsync. The segment
// being written is zero-filled ahead of its records and each batch is
// written over those zeros in place, so that a batch's fdatasync(2) does
// not also have to write the file's size and block map; readers treat the
// zeros as the end of the segment (FORMAT.md, "Zero tail"). In [ModeSync]
// (the default) every Record waits for its batch's fsync; in [ModeAsync]
// Record returns at once unless the event returns secret material, and
// records that find the bounded queue full are dropped and counted. When a
// segment cannot be written (disk full, I/O error, read-only directory) the
// log fails closed: Record returns an error wrapping [ErrUnavailable] and
// [Log.Healthy] reports false until a later write succeeds. Old segments are
// never rewritten; a write failure or a crash abandons the rest of the
// current segment and the next segment's header declares how much of it
// counts.
//
// # Security notes
//
// Events never carry secret values in the clear: values under keys that
// could hold secret material (see [SensitiveKey]) anywhere in
// RequestParameters or ResponseElements are replaced by
// "hmac-sha256:<hex>" under the per-server audit HMAC key ([HashValue]), so
// an operator holding the key can check whether a value was returned
// without the log containing it. Emitters must still keep secrets out of
// other fields (ErrorMessage, resource names).
//
// Checkpoint signatures prove that the chain up to a checkpoint was written
// by the holder of the signing key: an attacker without the key cannot
// modify, insert, delete or reorder records before the last checkpoint
// undetected. Records after the last checkpoint are chained but not yet
// signed, and cutting a log at a record boundary is indistinguishable, from
// the directory alone, from a server that stopped without closing: compare
// with checkpoints exported to another system (an [Exporter]), or require a
// closing checkpoint ([VerifyOptions.RequireSealed]). Keep the signing key
// away from whoever can write the log directory.
package audit

import (
	"context"
	"time"

	"sigil.dev/sigil/internal/authn"
)

// Event is one audited request or change. The emitter fills what it knows;
// every field except Source and Action may be empty.
type Event struct {
	// Time is when the request was decided; zero means the log's clock at
	// Record time.
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

	// AccountID is the account that received the request (CloudTrail's
	// recipientAccountId); empty means the principal's account, else the
	// log's [Options.AccountID].
	AccountID string
	// Region is the region that served the request; empty means
	// [Options.Region].
	Region string
	// Identity, when set, is written as userIdentity verbatim instead of
	// the one derived from Principal and Session: for callers that are not
	// a Principal, such as the web-identity user of
	// AssumeRoleWithWebIdentity.
	Identity *UserIdentity
	// Session describes the session behind an assumed-role Principal
	// (issuer, creation time, web-identity federation data); nil for other
	// principals.
	Session *SessionContext
	// RequestParameters and ResponseElements are the request and response
	// as CloudTrail shows them: nil, a json.RawMessage, or any value that
	// encoding/json marshals to an object (typically a small struct the
	// emitter builds). Sensitive fields in them are HMAC'd before the
	// record is written, at any depth.
	RequestParameters any
	ResponseElements  any
	// ImageDigest is the sealed image the caller proved it runs, if any.
	ImageDigest string
	// Kubernetes is the workload identity from a service-account token, if
	// any.
	Kubernetes *Kubernetes
	// EventType is CloudTrail's eventType; empty means EventTypeCall
	// ("AwsApiCall", a request). Events sigil makes on its own, such as
	// rotations and the reaper's revocations, are EventTypeService.
	EventType string
}

// Kubernetes identifies a workload by the claims of its service-account
// token.
type Kubernetes struct {
	Namespace      string `json:"namespace,omitempty"`
	ServiceAccount string `json:"serviceAccount,omitempty"`
	Pod            string `json:"pod,omitempty"`
}

// Sink receives audit events. Record returns only when the event is as
// durable as the sink promises; an error means the caller must fail closed.
type Sink interface {
	Record(ctx context.Context, ev *Event) error
}

// Discard is a Sink that drops every event, for tests and tools that run
// without an audit log.
type Discard struct{}

// Record implements Sink.
func (Discard) Record(context.Context, *Event) error { return nil }
