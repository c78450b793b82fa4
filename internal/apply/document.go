package apply

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Policy documents: a document may be written as a YAML map, converted here
// to JSON with its key order kept, or as a string holding JSON. Documents
// are compared by meaning (canonical JSON), not by text, so that a server
// which stores the same policy with other spacing or key order is up to
// date.

// maxDocumentBytes bounds a converted document. IAM's largest policy (a
// role's trust policy or an inline policy) is far smaller; the bound stops
// YAML aliases from expanding into gigabytes.
const maxDocumentBytes = 128 << 10

// maxDocumentDepth bounds nesting; real policies are four levels deep.
const maxDocumentDepth = 32

// errDocumentTooLarge is reported for documents over maxDocumentBytes.
var errDocumentTooLarge = fmt.Errorf("the document is larger than %d KiB", maxDocumentBytes>>10)

// jsonNumber is JSON's number grammar.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// documentFromNode converts a document written in the file: a JSON string
// (kept as written, checked to be a JSON object) or a YAML map. It returns
// the line of the problem with the error.
func documentFromNode(n *yaml.Node) (Document, int, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!str" {
			return "", n.Line, errors.New("a policy document must be a map or a string holding a JSON object")
		}
		if err := checkJSONObject(n.Value); err != nil {
			return "", n.Line, err
		}
		return Document(n.Value), n.Line, nil
	case yaml.MappingNode:
		var b bytes.Buffer
		if line, err := writeJSON(&b, n, 0); err != nil {
			return "", line, err
		}
		return Document(b.String()), n.Line, nil
	case yaml.AliasNode:
		return documentFromNode(n.Alias)
	}
	return "", n.Line, errors.New("a policy document must be a map or a string holding a JSON object")
}

// checkJSONObject checks that s is exactly one JSON object.
func checkJSONObject(s string) error {
	if len(s) > maxDocumentBytes {
		return errDocumentTooLarge
	}
	dec := json.NewDecoder(strings.NewReader(s))
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("the policy document is not valid JSON: %w", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return errors.New("the policy document must be a JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("the policy document has text after its JSON object")
	}
	return nil
}

// writeJSON writes n as JSON. Map keys must be strings and unique; YAML
// merge keys, binary values and custom tags are refused, because their
// JSON meaning would be a guess.
func writeJSON(b *bytes.Buffer, n *yaml.Node, depth int) (int, error) {
	if depth > maxDocumentDepth {
		return n.Line, fmt.Errorf("the document is nested more than %d levels deep", maxDocumentDepth)
	}
	if b.Len() > maxDocumentBytes {
		return n.Line, errDocumentTooLarge
	}
	switch n.Kind {
	case yaml.AliasNode:
		return writeJSON(b, n.Alias, depth+1)
	case yaml.MappingNode:
		b.WriteByte('{')
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.AliasNode {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return k.Line, errors.New("a key in a policy document must be a plain string (no merge keys or complex keys)")
			}
			if seen[k.Value] {
				return k.Line, fmt.Errorf("key %q appears twice", k.Value)
			}
			seen[k.Value] = true
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k.Value)
			b.WriteByte(':')
			if line, err := writeJSON(b, v, depth+1); err != nil {
				return line, err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if line, err := writeJSON(b, c, depth+1); err != nil {
				return line, err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		return n.Line, writeScalar(b, n)
	default:
		return n.Line, errors.New("unsupported YAML node in a policy document")
	}
	if b.Len() > maxDocumentBytes {
		return n.Line, errDocumentTooLarge
	}
	return 0, nil
}

// writeScalar writes a YAML scalar as the JSON value of its resolved type.
// A date such as Version: 2012-10-17 stays the string it was written as.
func writeScalar(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Tag {
	case "!!str", "!!timestamp":
		writeString(b, n.Value)
	case "!!bool":
		v, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err != nil {
			return fmt.Errorf("%q is not a boolean", n.Value)
		}
		b.WriteString(strconv.FormatBool(v))
	case "!!null":
		b.WriteString("null")
	case "!!int", "!!float":
		if jsonNumber.MatchString(n.Value) {
			b.WriteString(n.Value)
			return nil
		}
		if n.Tag == "!!int" {
			v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number JSON can hold; quote it to make it a string", n.Value)
			}
			b.WriteString(strconv.FormatInt(v, 10))
			return nil
		}
		v, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Errorf("%q is not a number JSON can hold; quote it to make it a string", n.Value)
		}
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	default:
		return fmt.Errorf("values tagged %s have no JSON form; quote the value to make it a string", n.Tag)
	}
	return nil
}

// writeString writes s as a JSON string without HTML escaping, so that
// "&" and "<" in conditions stay readable.
func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode's newline
}

// canonicalJSON returns doc with insignificant differences removed: keys
// sorted, no spacing. ok is false when doc is not JSON.
func canonicalJSON(doc string) (string, bool) {
	var v any
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", false
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", false
	}
	return b.String(), true
}

// sameDocument reports whether a and b are the same policy up to spacing
// and key order. Text that is not JSON is compared as is.
func sameDocument(a, b string) bool {
	ca, okA := canonicalJSON(a)
	cb, okB := canonicalJSON(b)
	if okA && okB {
		return ca == cb
	}
	return a == b
}

// decodeServerDocument undoes the URL encoding IAM applies to policy
// documents in its responses.
func decodeServerDocument(s string) string {
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}
