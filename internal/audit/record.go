package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// Fixed values of the CloudTrail fields sigil writes.
const (
	// EventVersion is the CloudTrail record format version written.
	EventVersion = "1.09"
	// TimeLayout is the eventTime format: RFC 3339 in UTC, whole seconds.
	TimeLayout = "2006-01-02T15:04:05Z"
	// SourceSigil is the eventSource of sigil's own API and of the log's
	// control records.
	SourceSigil = "sigil"
	// EventTypeCall is the eventType of records of requests.
	EventTypeCall = "AwsApiCall"
	// EventTypeService is the eventType of the log's own control records
	// and of events sigil makes by itself (rotations, lease revocations by
	// the reaper).
	EventTypeService = "AwsServiceEvent"
	// CategoryManagement is the eventCategory of every record.
	CategoryManagement = "Management"
	// NameSegmentStart and NameCheckpoint are the eventName of the header
	// record that starts each segment and of checkpoint records.
	NameSegmentStart = "SigilAuditSegmentStart"
	NameCheckpoint   = "SigilAuditCheckpoint"
)

// MaxRecordBytes bounds one encoded record; Record refuses larger events
// with ErrInvalidEvent.
const MaxRecordBytes = 1 << 20

// Record is one line of the log as CloudTrail readers see it. Query and
// Follow hand out Records; the writer encodes events into the same shape.
type Record struct {
	EventVersion        string              `json:"eventVersion"`
	EventTime           string              `json:"eventTime"`
	EventSource         string              `json:"eventSource"`
	EventName           string              `json:"eventName"`
	AWSRegion           string              `json:"awsRegion"`
	SourceIPAddress     string              `json:"sourceIPAddress"`
	UserAgent           string              `json:"userAgent"`
	UserIdentity        *UserIdentity       `json:"userIdentity,omitempty"`
	RequestParameters   json.RawMessage     `json:"requestParameters"`
	ResponseElements    json.RawMessage     `json:"responseElements"`
	ErrorCode           string              `json:"errorCode,omitempty"`
	ErrorMessage        string              `json:"errorMessage,omitempty"`
	RequestID           string              `json:"requestID,omitempty"`
	EventID             string              `json:"eventID"`
	ReadOnly            bool                `json:"readOnly"`
	Resources           []Resource          `json:"resources,omitempty"`
	EventType           string              `json:"eventType"`
	ManagementEvent     bool                `json:"managementEvent"`
	RecipientAccountID  string              `json:"recipientAccountId"`
	EventCategory       string              `json:"eventCategory"`
	AdditionalEventData AdditionalEventData `json:"additionalEventData"`

	// Raw is the line as stored, without its newline. Query and Follow
	// set it; it is never encoded.
	Raw []byte `json:"-"`
}

// Control reports whether r is one of the log's own records (segment
// header or checkpoint) rather than an audited request.
func (r *Record) Control() bool {
	return r.EventType == EventTypeService && r.EventSource == SourceSigil &&
		(r.EventName == NameSegmentStart || r.EventName == NameCheckpoint)
}

// UserIdentity is CloudTrail's userIdentity.
type UserIdentity struct {
	// Type is Root, IAMUser, AssumedRole, WebIdentityUser or Unknown.
	Type           string          `json:"type"`
	PrincipalID    string          `json:"principalId,omitempty"`
	ARN            string          `json:"arn,omitempty"`
	AccountID      string          `json:"accountId,omitempty"`
	AccessKeyID    string          `json:"accessKeyId,omitempty"`
	UserName       string          `json:"userName,omitempty"`
	SessionContext *SessionContext `json:"sessionContext,omitempty"`
	// IdentityProvider names the web-identity issuer for WebIdentityUser.
	IdentityProvider string `json:"identityProvider,omitempty"`
}

// SessionContext is CloudTrail's userIdentity.sessionContext.
type SessionContext struct {
	SessionIssuer       *SessionIssuer       `json:"sessionIssuer,omitempty"`
	WebIDFederationData *WebIDFederationData `json:"webIdFederationData,omitempty"`
	Attributes          *SessionAttributes   `json:"attributes,omitempty"`
}

// SessionIssuer is the role a session was assumed from.
type SessionIssuer struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	UserName    string `json:"userName,omitempty"`
}

// WebIDFederationData names the identity provider of a federated session
// and the token claims worth recording (never the token).
type WebIDFederationData struct {
	FederatedProvider string            `json:"federatedProvider,omitempty"`
	Attributes        map[string]string `json:"attributes,omitempty"`
}

// SessionAttributes are the session's creation date (TimeLayout) and MFA
// flag ("true"/"false"), as CloudTrail spells them.
type SessionAttributes struct {
	CreationDate     string `json:"creationDate,omitempty"`
	MFAAuthenticated string `json:"mfaAuthenticated,omitempty"`
}

// Resource is one entry of CloudTrail's resources list.
type Resource struct {
	ARN       string `json:"ARN"`
	AccountID string `json:"accountId,omitempty"`
	Type      string `json:"type,omitempty"`
}

// AdditionalEventData holds sigil's own facts. Event records use the
// decision fields; segment headers and checkpoints use theirs. Sequence
// and PreviousHash end every record.
type AdditionalEventData struct {
	// Decision is "allow" or "deny"; Reason is "root", "allow",
	// "explicit deny" or "implicit deny"; Policy and Statement name the
	// deciding policy and statement when a policy decided.
	Decision      string      `json:"decision,omitempty"`
	Reason        string      `json:"reason,omitempty"`
	Policy        string      `json:"policy,omitempty"`
	Statement     string      `json:"statement,omitempty"`
	ReturnsSecret bool        `json:"returnsSecret,omitempty"`
	ImageDigest   string      `json:"imageDigest,omitempty"`
	Kubernetes    *Kubernetes `json:"kubernetes,omitempty"`
	LatencyMicros int64       `json:"latencyMicros,omitempty"`

	// Segment header: the segment's number, why it was started ("start",
	// "recover", "rotate", "retry"), and the previous segment's name and
	// the length of it that counts.
	Segment              int    `json:"segment,omitempty"`
	StartReason          string `json:"startReason,omitempty"`
	PreviousSegment      string `json:"previousSegment,omitempty"`
	PreviousSegmentBytes int64  `json:"previousSegmentBytes,omitempty"`

	// Checkpoint: whether Close wrote it, the signing key's KeyID and the
	// base64 Ed25519 signature.
	Final     bool   `json:"final,omitempty"`
	KeyID     string `json:"keyId,omitempty"`
	Signature string `json:"signature,omitempty"`

	// Sequence numbers records from 1 across segments; PreviousHash is the
	// hex SHA-256 of the previous line's bytes (64 zeros for the first).
	Sequence     uint64 `json:"sequence,omitempty"`
	PreviousHash string `json:"previousHash,omitempty"`
}

// encoder turns events into record bodies: the line up to, but not
// including, the chain fields and the two closing braces, which the writer
// appends (see chainSuffix).
type encoder struct {
	hmacKey   []byte
	region    string
	accountID string
	now       func() time.Time
	uuid      func() (string, error)
	macs      macPool // HMAC states of hmacKey
	// lastTime is the eventTime string of the last record encoded, which
	// records within the same second share.
	lastTime atomic.Pointer[formattedTime]
}

// formattedTime is a Unix second and its TimeLayout form.
type formattedTime struct {
	sec int64
	s   string
}

// eventTime formats t (UTC, to the second) as TimeLayout, reusing the
// string of the last call when t falls in the same second.
func (e *encoder) eventTime(t time.Time) string {
	sec := t.Unix()
	if ft := e.lastTime.Load(); ft != nil && ft.sec == sec {
		return ft.s
	}
	ft := &formattedTime{sec: sec, s: t.UTC().Format(TimeLayout)}
	e.lastTime.Store(ft)
	return ft.s
}

// recordBuf is the memory one encoding reuses: the redacted payloads and
// the record body assembled from them.
type recordBuf struct {
	payload []byte
	body    []byte
}

// encodeEvent returns the body of ev's record in fresh memory.
func (e *encoder) encodeEvent(ev *Event) ([]byte, error) {
	var b recordBuf
	return e.encodeInto(&b, ev)
}

// encodeInto encodes ev's record body into b, reusing its memory, and
// returns b.body. The result is what encoding/json would produce for the
// Record (see appendRecord), cut before the closing "}}".
func (e *encoder) encodeInto(b *recordBuf, ev *Event) ([]byte, error) {
	if ev == nil || ev.Source == "" || ev.Action == "" {
		return nil, fmt.Errorf("%w: an event needs a Source and an Action", ErrInvalidEvent)
	}
	p, err := appendRedacted(b.payload[:0], ev.RequestParameters, e.hmacKey, &e.macs)
	if err != nil {
		return nil, fmt.Errorf("requestParameters: %w", err)
	}
	nreq := len(p)
	p, err = appendRedacted(p, ev.ResponseElements, e.hmacKey, &e.macs)
	if err != nil {
		return nil, fmt.Errorf("responseElements: %w", err)
	}
	b.payload = p
	var req, resp json.RawMessage
	if nreq > 0 {
		req = p[:nreq:nreq]
	}
	if len(p) > nreq {
		resp = p[nreq:]
	}
	id, err := e.uuid()
	if err != nil {
		return nil, err
	}
	t := ev.Time
	if t.IsZero() {
		t = e.now()
	}
	var uid UserIdentity
	var res [4]Resource
	r := Record{
		EventVersion:       EventVersion,
		EventTime:          e.eventTime(t),
		EventSource:        ev.Source,
		EventName:          ev.Action,
		AWSRegion:          firstNonEmpty(ev.Region, e.region),
		SourceIPAddress:    ev.SourceIP,
		UserAgent:          ev.UserAgent,
		UserIdentity:       identity(ev, &uid),
		RequestParameters:  req,
		ResponseElements:   resp,
		ErrorCode:          ev.ErrorCode,
		ErrorMessage:       ev.ErrorMessage,
		RequestID:          ev.RequestID,
		EventID:            id,
		ReadOnly:           ev.ReadOnly,
		Resources:          resources(res[:0], ev.Resources),
		EventType:          firstNonEmpty(ev.EventType, EventTypeCall),
		ManagementEvent:    true,
		RecipientAccountID: recipient(ev, e.accountID),
		EventCategory:      CategoryManagement,
		AdditionalEventData: AdditionalEventData{
			Decision:      decision(ev.Allowed),
			Reason:        ev.Reason,
			Policy:        ev.Policy,
			Statement:     ev.Statement,
			ReturnsSecret: ev.ReturnsSecret,
			ImageDigest:   ev.ImageDigest,
			Kubernetes:    ev.Kubernetes,
			LatencyMicros: ev.Latency.Microseconds(),
		},
	}
	body := appendRecord(b.body[:0], &r)
	b.body = body
	body, ok := bytes.CutSuffix(body, []byte("}}"))
	if !ok {
		panic("audit: internal error: encoded record does not end with additionalEventData")
	}
	if len(body) > MaxRecordBytes-chainSuffixMax {
		return nil, fmt.Errorf("%w: the record is %d bytes, more than %d", ErrInvalidEvent, len(body)+2, MaxRecordBytes)
	}
	return body, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func decision(allowed bool) string {
	if allowed {
		return "allow"
	}
	return "deny"
}

func recipient(ev *Event, def string) string {
	switch {
	case ev.AccountID != "":
		return ev.AccountID
	case ev.Principal != nil && ev.Principal.AccountID != "":
		return ev.Principal.AccountID
	}
	return def
}

// identity derives CloudTrail's userIdentity, filling *u unless the event
// carries its own.
func identity(ev *Event, u *UserIdentity) *UserIdentity {
	if ev.Identity != nil {
		return ev.Identity
	}
	p := ev.Principal
	if p == nil {
		*u = UserIdentity{Type: "Unknown"}
		return u
	}
	*u = UserIdentity{
		Type:           string(p.Kind),
		PrincipalID:    p.ID,
		ARN:            p.ARN,
		AccountID:      p.AccountID,
		AccessKeyID:    p.AccessKeyID,
		UserName:       p.Name,
		SessionContext: ev.Session,
	}
	return u
}

// resources turns ARNs into CloudTrail resource entries appended to out.
func resources(out []Resource, arns []string) []Resource {
	if len(arns) == 0 {
		return nil
	}
	for _, a := range arns {
		if a == "" || a == "*" {
			continue
		}
		acct, typ := arnFacts(a)
		out = append(out, Resource{ARN: a, AccountID: acct, Type: typ})
	}
	return out
}

// arnFacts returns the account of an ARN and its CloudFormation-style type
// (AWS::SecretsManager::Secret, AWS::IAM::Role, Sigil::Image, ...), or
// empty strings for what it does not recognise.
func arnFacts(arn string) (account, typ string) {
	// arn:partition:service:region:account:resource, the resource holding
	// any further colons.
	var parts [6]string
	rest := arn
	for i := range 5 {
		j := strings.IndexByte(rest, ':')
		if j < 0 {
			return "", ""
		}
		parts[i], rest = rest[:j], rest[j+1:]
	}
	parts[5] = rest
	if parts[0] != "arn" {
		return "", ""
	}
	account = parts[4]
	res := parts[5]
	if i := strings.IndexAny(res, "/:"); i >= 0 {
		res = res[:i]
	}
	if t := knownType(parts[2], res); t != "" {
		return account, t
	}
	return account, deriveType(parts[2], res)
}

// knownType is deriveType's answer for the resource types sigil itself
// names, without allocating; "" for others.
func knownType(service, res string) string {
	switch service + ":" + res {
	case "secretsmanager:secret":
		return "AWS::SecretsManager::Secret"
	case "iam:role":
		return "AWS::IAM::Role"
	case "iam:user":
		return "AWS::IAM::User"
	case "iam:policy":
		return "AWS::IAM::Policy"
	case "iam:oidc-provider":
		return "AWS::IAM::OIDCProvider"
	case "iam:root":
		return "AWS::IAM::Account"
	case "sts:assumed-role":
		return "AWS::STS::AssumedRole"
	case "sigil:image":
		return "Sigil::Image"
	}
	return ""
}

// deriveType spells the type of a resource of a service.
func deriveType(service, res string) string {
	ns, svc := "AWS", ""
	switch service {
	case "secretsmanager":
		svc = "SecretsManager"
	case "iam":
		svc = "IAM"
	case "sts":
		svc = "STS"
	case "sigil":
		ns, svc = "Sigil", ""
	default:
		return ""
	}
	name := typeName(res)
	if name == "" {
		return ""
	}
	if svc == "" {
		return ns + "::" + name
	}
	return ns + "::" + svc + "::" + name
}

// typeName spells an ARN resource type as a CloudFormation type name.
func typeName(res string) string {
	switch res {
	case "oidc-provider":
		return "OIDCProvider"
	case "root":
		return "Account"
	}
	var b strings.Builder
	up := true
	for _, c := range res {
		switch {
		case c == '-' || c == '_':
			up = true
		case c >= 'a' && c <= 'z':
			if up {
				c -= 'a' - 'A'
			}
			b.WriteRune(c)
			up = false
		case c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			b.WriteRune(c)
			up = false
		default:
			return ""
		}
	}
	return b.String()
}

// newUUID returns a random (version 4) UUID read from r.
func newUUID(r io.Reader) (string, error) {
	var u [16]byte
	if _, err := io.ReadFull(r, u[:]); err != nil {
		return "", fmt.Errorf("generating event id: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:]), nil
}
