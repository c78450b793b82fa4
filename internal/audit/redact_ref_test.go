package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// refMayHoldSensitiveKey reports whether a lower-cased JSON document could
// hold a sensitive key: every sensitive key contains one of the fragments
// below, so a document with none of them (and no \u escape that could spell
// one) has none, and redact can skip decoding it.
func refMayHoldSensitiveKey(lower []byte) bool {
	if bytes.Contains(lower, []byte(`\u`)) {
		return true
	}
	for _, f := range [...]string{"secret", "token", "password", "privatekey", "passphrase", "assertion", "share", "unsealkey", "kek", "webhookkey", "hmackey"} {
		if bytes.Contains(lower, []byte(f)) {
			return true
		}
	}
	return false
}

// redactReference is the implementation redact replaced (decode into
// map[string]any, walk, re-encode), kept to test the new one against. It
// marshals v (nil, json.RawMessage or any value that marshals to a
// JSON object) and replaces the value of every sensitive key at any depth
// by its HashValue. It returns nil for nil or JSON null.
func redactReference(v any, key []byte) (json.RawMessage, error) {
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
	if !refMayHoldSensitiveKey(bytes.ToLower(raw)) {
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
	doc, err := refRedactValue(doc, key)
	if err != nil {
		return nil, err
	}
	return marshalCompact(doc)
}

// refRedactValue walks a decoded JSON value and hashes sensitive members.
func refRedactValue(v any, key []byte) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if val == nil {
				continue
			}
			if SensitiveKey(k) {
				h, err := refHashJSONValue(val, key)
				if err != nil {
					return nil, err
				}
				t[k] = h
				continue
			}
			r, err := refRedactValue(val, key)
			if err != nil {
				return nil, err
			}
			t[k] = r
		}
	case []any:
		for i, val := range t {
			r, err := refRedactValue(val, key)
			if err != nil {
				return nil, err
			}
			t[i] = r
		}
	}
	return v, nil
}

// refHashJSONValue hashes one decoded value as HashValue documents.
func refHashJSONValue(v any, key []byte) (string, error) {
	if s, ok := v.(string); ok {
		return HashValue(key, []byte(s)), nil
	}
	b, err := marshalCompact(v)
	if err != nil {
		return "", err
	}
	return HashValue(key, b), nil
}
