package iam

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// This file reads a policy document into a small JSON tree that remembers
// key order and refuses what encoding/json would silently accept: duplicate
// keys (the second "Effect" would win unseen), trailing data, and absurd
// nesting.

// maxJSONDepth bounds nesting; real policies are five levels deep.
const maxJSONDepth = 16

// jkind is the type of a JSON value.
type jkind uint8

const (
	jString jkind = iota
	jNumber
	jBool
	jNull
	jObject
	jArray
)

// jnode is one JSON value.
type jnode struct {
	kind  jkind
	s     string // string, or the literal text of a number
	b     bool
	keys  []string // object keys in document order
	vals  []*jnode // object values, parallel to keys
	elems []*jnode // array elements
}

// get returns the value of an object key, or nil.
func (n *jnode) get(key string) *jnode {
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// typeName names the JSON type for error messages.
func (n *jnode) typeName() string {
	switch n.kind {
	case jString:
		return "a string"
	case jNumber:
		return "a number"
	case jBool:
		return "a boolean"
	case jNull:
		return "null"
	case jObject:
		return "an object"
	}
	return "a list"
}

// parseJSON parses doc as exactly one JSON value.
func parseJSON(doc string) (*jnode, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	n, err := readValue(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &PolicyError{Msg: fmt.Sprintf("unexpected data after the JSON document (at byte %d)", dec.InputOffset())}
	}
	return n, nil
}

// readValue reads one value; path locates it for error messages.
func readValue(dec *json.Decoder, path string, depth int) (*jnode, error) {
	if depth > maxJSONDepth {
		return nil, &PolicyError{Path: path, Msg: fmt.Sprintf("nested deeper than %d levels", maxJSONDepth)}
	}
	t, err := dec.Token()
	if err != nil {
		return nil, syntaxError(dec, err)
	}
	switch t := t.(type) {
	case string:
		return &jnode{kind: jString, s: t}, nil
	case json.Number:
		return &jnode{kind: jNumber, s: string(t)}, nil
	case bool:
		return &jnode{kind: jBool, b: t}, nil
	case nil:
		return &jnode{kind: jNull}, nil
	case json.Delim:
		if t == '{' {
			return readObject(dec, path, depth)
		}
		if t == '[' {
			return readArray(dec, path, depth)
		}
	}
	return nil, &PolicyError{Path: path, Msg: fmt.Sprintf("unexpected JSON token %v", t)}
}

func readObject(dec *json.Decoder, path string, depth int) (*jnode, error) {
	n := &jnode{kind: jObject}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, syntaxError(dec, err)
		}
		k, _ := kt.(string)
		if n.get(k) != nil {
			return nil, &PolicyError{Path: path, Msg: fmt.Sprintf("duplicate key %q", k)}
		}
		v, err := readValue(dec, joinPath(path, k), depth+1)
		if err != nil {
			return nil, err
		}
		n.keys = append(n.keys, k)
		n.vals = append(n.vals, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntaxError(dec, err)
	}
	return n, nil
}

func readArray(dec *json.Decoder, path string, depth int) (*jnode, error) {
	n := &jnode{kind: jArray}
	for dec.More() {
		v, err := readValue(dec, fmt.Sprintf("%s[%d]", path, len(n.elems)), depth+1)
		if err != nil {
			return nil, err
		}
		n.elems = append(n.elems, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntaxError(dec, err)
	}
	return n, nil
}

// joinPath appends an object key to a path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// syntaxError turns a decoder error into a PolicyError.
func syntaxError(dec *json.Decoder, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &PolicyError{Msg: fmt.Sprintf("the document is not valid JSON: %s (at byte %d)", se.Error(), se.Offset)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &PolicyError{Msg: "the document is not valid JSON: it ends unexpectedly"}
	}
	return &PolicyError{Msg: fmt.Sprintf("the document is not valid JSON: %s (at byte %d)", err.Error(), dec.InputOffset())}
}
