package secrets

import (
	"encoding/base64"
	"strconv"
	"time"

	"sigil.dev/sigil/internal/jsonenc"
)

// This file encodes the responses that carry secret values
// (GetSecretValue, and each entry of BatchGetSecretValue) without
// reflection. The output is byte for byte what encoding/json produces for
// the same struct, escaping included (<, >, &, U+2028 and U+2029 are
// escaped and invalid UTF-8 becomes U+FFFD), so clients see no difference;
// FuzzValueJSON checks this against encoding/json.

// AppendJSON appends the response's JSON encoding to b. The server writes
// it directly; MarshalJSON is the same for everything else.
func (o *getSecretValueOutput) AppendJSON(b []byte) []byte {
	if b == nil {
		b = make([]byte, 0, valueJSONSize(o.ARN, o.Name, o.VersionId, o.SecretBinary, o.SecretString, o.VersionStages, o.valueJSON))
	}
	return appendValueJSON(b, o.ARN, o.Name, o.VersionId, o.SecretBinary, o.SecretString, o.VersionStages, o.CreatedDate, o.valueJSON)
}

// MarshalJSON implements json.Marshaler.
func (o *getSecretValueOutput) MarshalJSON() ([]byte, error) { return o.AppendJSON(nil), nil }

// MarshalJSON implements json.Marshaler.
func (e secretValueEntry) MarshalJSON() ([]byte, error) {
	return appendValueJSON(make([]byte, 0, valueJSONSize(e.ARN, e.Name, e.VersionId, e.SecretBinary, e.SecretString, e.VersionStages, e.valueJSON)),
		e.ARN, e.Name, e.VersionId, e.SecretBinary, e.SecretString, e.VersionStages, e.CreatedDate, e.valueJSON), nil
}

// valueJSONSize is a capacity that fits the encoding of a value response
// unless its strings need many escapes.
func valueJSONSize(arn, name, versionID string, bin []byte, str *string, stages []string, valueJSON []byte) int {
	n := 128 + len(arn) + len(name) + len(versionID)
	switch {
	case valueJSON != nil:
		n += len(valueJSON)
	case str != nil:
		n += len(*str) + len(*str)/8
	default:
		n += base64.StdEncoding.EncodedLen(len(bin))
	}
	for _, s := range stages {
		n += len(s) + 3
	}
	return n
}

// appendValueJSON appends the JSON encoding of a getSecretValueOutput (or
// secretValueEntry, which has the same fields) with these members.
// valueJSON, when not nil, is the encoding of the SecretString or (non-empty)
// SecretBinary member's value.
func appendValueJSON(b []byte, arn, name, versionID string, bin []byte, str *string, stages []string, created *epoch, valueJSON []byte) []byte {
	b = append(b, `{"ARN":`...)
	b = appendJSONString(b, arn)
	b = append(b, `,"Name":`...)
	b = appendJSONString(b, name)
	b = append(b, `,"VersionId":`...)
	b = appendJSONString(b, versionID)
	if len(bin) > 0 {
		b = append(b, `,"SecretBinary":`...)
		if valueJSON != nil {
			b = append(b, valueJSON...)
		} else {
			b = appendJSONBytes(b, bin)
		}
	}
	if str != nil {
		b = append(b, `,"SecretString":`...)
		if valueJSON != nil {
			b = append(b, valueJSON...)
		} else {
			b = appendJSONString(b, *str)
		}
	}
	b = append(b, `,"VersionStages":`...)
	if stages == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, s := range stages {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		b = append(b, ']')
	}
	if created != nil {
		b = append(b, `,"CreatedDate":`...)
		b = created.appendJSON(b)
	}
	return append(b, '}')
}

// appendJSONBytes appends bin as encoding/json encodes a []byte: a base64
// (standard, padded) JSON string.
func appendJSONBytes(b, bin []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, bin)
	return append(b, '"')
}

// appendJSON appends the wire form of e (see MarshalJSON).
func (e epoch) appendJSON(b []byte) []byte {
	ms := time.Time(e).UnixMilli()
	if ms < 0 {
		return strconv.AppendFloat(b, float64(ms)/1000, 'f', 3, 64)
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	frac := ms % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// appendJSONString appends s as a JSON string exactly as encoding/json
// encodes a string with HTML escaping.
func appendJSONString(b []byte, s string) []byte { return jsonenc.AppendString(b, s) }
