package audit

import (
	"slices"
	"strconv"

	"sigil.dev/sigil/internal/jsonenc"
)

// This file is the hand-written encoder of event records. It appends
// exactly the bytes encoding/json (HTML escaping off, no trailing newline)
// produces for a Record, without reflection and without allocating beyond
// the destination buffer; encode_test.go and FuzzAppendRecord hold it to
// that, field by field and over generated records.

// appendRecord appends the encoding of r to dst. r.RequestParameters and
// r.ResponseElements must be nil or compact, valid JSON (what redact
// returns); they are copied as they are.
func appendRecord(dst []byte, r *Record) []byte {
	dst = append(dst, `{"eventVersion":`...)
	dst = appendJSONString(dst, r.EventVersion)
	dst = append(dst, `,"eventTime":`...)
	dst = appendJSONString(dst, r.EventTime)
	dst = append(dst, `,"eventSource":`...)
	dst = appendJSONString(dst, r.EventSource)
	dst = append(dst, `,"eventName":`...)
	dst = appendJSONString(dst, r.EventName)
	dst = append(dst, `,"awsRegion":`...)
	dst = appendJSONString(dst, r.AWSRegion)
	dst = append(dst, `,"sourceIPAddress":`...)
	dst = appendJSONString(dst, r.SourceIPAddress)
	dst = append(dst, `,"userAgent":`...)
	dst = appendJSONString(dst, r.UserAgent)
	if r.UserIdentity != nil {
		dst = append(dst, `,"userIdentity":`...)
		dst = appendUserIdentity(dst, r.UserIdentity)
	}
	dst = append(dst, `,"requestParameters":`...)
	dst = appendRaw(dst, r.RequestParameters)
	dst = append(dst, `,"responseElements":`...)
	dst = appendRaw(dst, r.ResponseElements)
	dst = appendOptString(dst, `,"errorCode":`, r.ErrorCode)
	dst = appendOptString(dst, `,"errorMessage":`, r.ErrorMessage)
	dst = appendOptString(dst, `,"requestID":`, r.RequestID)
	dst = append(dst, `,"eventID":`...)
	dst = appendJSONString(dst, r.EventID)
	dst = append(dst, `,"readOnly":`...)
	dst = strconv.AppendBool(dst, r.ReadOnly)
	if len(r.Resources) > 0 {
		dst = append(dst, `,"resources":[`...)
		for i := range r.Resources {
			if i > 0 {
				dst = append(dst, ',')
			}
			res := &r.Resources[i]
			dst = append(dst, `{"ARN":`...)
			dst = appendJSONString(dst, res.ARN)
			dst = appendOptString(dst, `,"accountId":`, res.AccountID)
			dst = appendOptString(dst, `,"type":`, res.Type)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"eventType":`...)
	dst = appendJSONString(dst, r.EventType)
	dst = append(dst, `,"managementEvent":`...)
	dst = strconv.AppendBool(dst, r.ManagementEvent)
	dst = append(dst, `,"recipientAccountId":`...)
	dst = appendJSONString(dst, r.RecipientAccountID)
	dst = append(dst, `,"eventCategory":`...)
	dst = appendJSONString(dst, r.EventCategory)
	dst = append(dst, `,"additionalEventData":`...)
	dst = appendAdditional(dst, &r.AdditionalEventData)
	return append(dst, '}')
}

// appendRaw appends an already encoded value, or null for none.
func appendRaw(dst, raw []byte) []byte {
	if raw == nil {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

// appendOptString appends `,"name":"s"` unless s is empty (omitempty);
// member starts with the comma, the quoted name and the colon.
func appendOptString(dst []byte, member, s string) []byte {
	if s == "" {
		return dst
	}
	dst = append(dst, member...)
	return appendJSONString(dst, s)
}

// object tracks whether an object being appended has a member yet, for
// structs whose members are all optional.
type object struct {
	dst   []byte
	empty bool
}

func openObject(dst []byte) object { return object{dst: append(dst, '{'), empty: true} }

// name appends the separator and the member name `"name":`.
func (o *object) name(name string) {
	if !o.empty {
		o.dst = append(o.dst, ',')
	}
	o.empty = false
	o.dst = append(o.dst, '"')
	o.dst = append(o.dst, name...)
	o.dst = append(o.dst, '"', ':')
}

func (o *object) str(name, s string) {
	if s != "" {
		o.name(name)
		o.dst = appendJSONString(o.dst, s)
	}
}

func (o *object) int(name string, v int64) {
	if v != 0 {
		o.name(name)
		o.dst = strconv.AppendInt(o.dst, v, 10)
	}
}

func (o *object) close() []byte { return append(o.dst, '}') }

func appendUserIdentity(dst []byte, u *UserIdentity) []byte {
	dst = append(dst, `{"type":`...)
	dst = appendJSONString(dst, u.Type)
	o := object{dst: dst}
	o.str("principalId", u.PrincipalID)
	o.str("arn", u.ARN)
	o.str("accountId", u.AccountID)
	o.str("accessKeyId", u.AccessKeyID)
	o.str("userName", u.UserName)
	if sc := u.SessionContext; sc != nil {
		o.name("sessionContext")
		o.dst = appendSessionContext(o.dst, sc)
	}
	o.str("identityProvider", u.IdentityProvider)
	return o.close()
}

func appendSessionContext(dst []byte, sc *SessionContext) []byte {
	o := openObject(dst)
	if si := sc.SessionIssuer; si != nil {
		o.name("sessionIssuer")
		o.dst = append(o.dst, `{"type":`...)
		o.dst = appendJSONString(o.dst, si.Type)
		in := object{dst: o.dst}
		in.str("principalId", si.PrincipalID)
		in.str("arn", si.ARN)
		in.str("accountId", si.AccountID)
		in.str("userName", si.UserName)
		o.dst = in.close()
	}
	if w := sc.WebIDFederationData; w != nil {
		o.name("webIdFederationData")
		in := openObject(o.dst)
		in.str("federatedProvider", w.FederatedProvider)
		if len(w.Attributes) > 0 {
			in.name("attributes")
			in.dst = appendStringMap(in.dst, w.Attributes)
		}
		o.dst = in.close()
	}
	if a := sc.Attributes; a != nil {
		o.name("attributes")
		in := openObject(o.dst)
		in.str("creationDate", a.CreationDate)
		in.str("mfaAuthenticated", a.MFAAuthenticated)
		o.dst = in.close()
	}
	return o.close()
}

// appendStringMap appends m with its keys sorted, as encoding/json does.
func appendStringMap(dst []byte, m map[string]string) []byte {
	var stack [16]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, m[k])
	}
	return append(dst, '}')
}

func appendAdditional(dst []byte, a *AdditionalEventData) []byte {
	o := openObject(dst)
	o.str("decision", a.Decision)
	o.str("reason", a.Reason)
	o.str("policy", a.Policy)
	o.str("statement", a.Statement)
	if a.ReturnsSecret {
		o.name("returnsSecret")
		o.dst = append(o.dst, "true"...)
	}
	o.str("imageDigest", a.ImageDigest)
	if k := a.Kubernetes; k != nil {
		o.name("kubernetes")
		in := openObject(o.dst)
		in.str("namespace", k.Namespace)
		in.str("serviceAccount", k.ServiceAccount)
		in.str("pod", k.Pod)
		o.dst = in.close()
	}
	o.int("latencyMicros", a.LatencyMicros)
	o.int("segment", int64(a.Segment))
	o.str("startReason", a.StartReason)
	o.str("previousSegment", a.PreviousSegment)
	o.int("previousSegmentBytes", a.PreviousSegmentBytes)
	if a.Final {
		o.name("final")
		o.dst = append(o.dst, "true"...)
	}
	o.str("keyId", a.KeyID)
	o.str("signature", a.Signature)
	if a.Sequence != 0 {
		o.name("sequence")
		o.dst = strconv.AppendUint(o.dst, a.Sequence, 10)
	}
	o.str("previousHash", a.PreviousHash)
	return o.close()
}

// appendJSONString appends s as a JSON string exactly as encoding/json
// does with HTML escaping off.
func appendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	return jsonenc.AppendStringNoHTML(dst, s)
}
