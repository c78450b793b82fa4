package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// HashPrefix starts every redacted value in the log.
const HashPrefix = "hmac-sha256:"

// SensitiveKey reports whether a JSON object key names a field that could
// hold secret material, so its value must never be written to the log. The
// match is case-insensitive on the key as decoded (escapes resolved). A key
// is sensitive when, lower-cased, it
//
//   - is one of secretstring, secretbinary, secretaccesskey, share, shares,
//     unsealkey, kek; or
//   - ends with token, password, secret, secretkey, privatekey, passphrase
//     or assertion (SessionToken, WebIdentityToken, token, Password,
//     dbPassword, ClientSecret, PrivateKey, SAMLAssertion, ...),
//
// except nexttoken (a pagination cursor) and clientrequesttoken (the secret
// version id, which responses show as VersionId).
func SensitiveKey(key string) bool {
	k := strings.ToLower(key)
	switch k {
	case "nexttoken", "clientrequesttoken":
		return false
	case "secretstring", "secretbinary", "secretaccesskey", "share", "shares", "unsealkey", "kek":
		return true
	}
	for _, suffix := range [...]string{"token", "password", "secret", "secretkey", "privatekey", "passphrase", "assertion"} {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

// mayHoldSensitiveKey reports whether a lower-cased JSON document could
// hold a sensitive key: every sensitive key contains one of the fragments
// below, so a document with none of them (and no \u escape that could spell
// one) has none, and redact can skip decoding it.
func mayHoldSensitiveKey(lower []byte) bool {
	if bytes.Contains(lower, []byte(`\u`)) {
		return true
	}
	for _, f := range [...]string{"secret", "token", "password", "privatekey", "passphrase", "assertion", "share", "unsealkey", "kek"} {
		if bytes.Contains(lower, []byte(f)) {
			return true
		}
	}
	return false
}

// HashValue returns "hmac-sha256:<hex>" of value under key: what the log
// holds in place of a sensitive value. For a JSON string the value hashed
// is the string's content (escapes resolved, no quotes); for any other
// JSON value it is its compact encoding with object keys sorted.
func HashValue(key, value []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(value)
	return HashPrefix + hex.EncodeToString(m.Sum(nil))
}

// redact marshals v (nil, json.RawMessage or any value that marshals to a
// JSON object) and replaces the value of every sensitive key at any depth
// by its HashValue. It returns nil for nil or JSON null.
func redact(v any, key []byte) (json.RawMessage, error) {
	var raw []byte
	switch t := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		raw = t
	case []byte:
		raw = t
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("%w: encoding parameters: %w", ErrInvalidEvent, err)
		}
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("%w: parameters must be a JSON object", ErrInvalidEvent)
	}
	if !mayHoldSensitiveKey(bytes.ToLower(raw)) {
		if !json.Valid(raw) {
			return nil, fmt.Errorf("%w: parameters are not valid JSON", ErrInvalidEvent)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, fmt.Errorf("%w: parameters are not valid JSON: %w", ErrInvalidEvent, err)
		}
		return buf.Bytes(), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: parameters are not valid JSON: %w", ErrInvalidEvent, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: parameters hold more than one JSON value", ErrInvalidEvent)
	}
	doc, err := redactValue(doc, key)
	if err != nil {
		return nil, err
	}
	return marshalCompact(doc)
}

// redactValue walks a decoded JSON value and hashes sensitive members.
func redactValue(v any, key []byte) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if val == nil {
				continue
			}
			if SensitiveKey(k) {
				h, err := hashJSONValue(val, key)
				if err != nil {
					return nil, err
				}
				t[k] = h
				continue
			}
			r, err := redactValue(val, key)
			if err != nil {
				return nil, err
			}
			t[k] = r
		}
	case []any:
		for i, val := range t {
			r, err := redactValue(val, key)
			if err != nil {
				return nil, err
			}
			t[i] = r
		}
	}
	return v, nil
}

// hashJSONValue hashes one decoded value as HashValue documents.
func hashJSONValue(v any, key []byte) (string, error) {
	if s, ok := v.(string); ok {
		return HashValue(key, []byte(s)), nil
	}
	b, err := marshalCompact(v)
	if err != nil {
		return "", err
	}
	return HashValue(key, b), nil
}

// marshalCompact encodes v without HTML escaping and without the trailing
// newline json.Encoder adds.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%w: encoding: %w", ErrInvalidEvent, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
