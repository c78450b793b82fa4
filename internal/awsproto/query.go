package awsproto

// The query protocol (IAM, STS): requests are form-encoded parameters
// (Action=CreateRole&Version=2010-05-08&RoleName=ci&Tags.member.1.Key=team...)
// in a POST body or a GET query string; responses are XML documents in the
// service's namespace.
//
// A service uses it in three steps:
//
//	vals, err := awsproto.ParseQuery(body, r)        // *Error on malformed input
//	var in createRoleInput                           // struct with `query:"..."` tags
//	err = awsproto.DecodeQuery(vals, &in)            // *Error (ValidationError)
//	...
//	awsproto.WriteQueryResult(w, awsproto.IAMNamespace, "CreateRole", requestID, result)
//	awsproto.WriteQueryError(w, awsproto.IAMNamespace, e, requestID)

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// XML namespaces of the query-protocol services sigil serves.
const (
	// IAMNamespace is the xmlns of every IAM response.
	IAMNamespace = "https://iam.amazonaws.com/doc/2010-05-08/"
	// STSNamespace is the xmlns of every STS response.
	STSNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
)

// QueryContentType is the content type of query-protocol request bodies.
const QueryContentType = "application/x-www-form-urlencoded"

// XMLContentType is the content type of query-protocol responses, as IAM and
// STS send it.
const XMLContentType = "text/xml"

// MaxListMembers is the largest member index DecodeQuery accepts in one
// list or map. No IAM or STS list is longer (ListRoles' MaxItems is 1000).
const MaxListMembers = 1000

// Values are the parameters of one query-protocol request: each name
// ("Tags.member.1.Key") maps to its single value.
type Values map[string]string

// Action returns the request's Action parameter ("" when absent).
func (v Values) Action() string { return v["Action"] }

// Version returns the request's API Version parameter ("" when absent).
func (v Values) Version() string { return v["Version"] }

// ParseQuery returns the parameters of a query-protocol request: those of
// the URL's query string and, for a POST, those of body (which the caller
// has already read, so the signature can be verified over it). A POST body
// must be form-encoded (Content-Type application/x-www-form-urlencoded,
// optionally with a charset; a missing Content-Type is accepted, as AWS
// does).
//
// A parameter given more than once (in the body, in the query string, or in
// both) is refused rather than resolved, so that no two components can read
// different values from one request. Malformed encoding is refused too.
// Every failure is a *Error with code MalformedQueryString (HTTP 400).
func ParseQuery(body []byte, r *http.Request) (Values, error) {
	vals := Values{}
	if r != nil && r.URL != nil && r.URL.RawQuery != "" {
		if err := vals.add(r.URL.RawQuery, "query string"); err != nil {
			return nil, err
		}
	}
	if len(body) == 0 {
		return vals, nil
	}
	if r != nil && r.Method != http.MethodPost {
		return nil, malformedQuery("a %s request must not have a body; send the parameters in the query string or POST them", r.Method)
	}
	if r != nil {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != QueryContentType {
				return nil, malformedQuery("the request body must be %s", QueryContentType)
			}
		}
	}
	if err := vals.add(string(body), "request body"); err != nil {
		return nil, err
	}
	return vals, nil
}

// add parses one form-encoded string into v, refusing duplicates.
func (v Values) add(s, where string) error {
	parsed, err := url.ParseQuery(s)
	if err != nil {
		return malformedQuery("the %s is not valid form encoding", where)
	}
	for k, vs := range parsed {
		if _, dup := v[k]; dup || len(vs) > 1 {
			return malformedQuery("the parameter %s is given more than once", quoteParam(k))
		}
		if !utf8.ValidString(k) || !utf8.ValidString(vs[0]) {
			return malformedQuery("the parameter %s is not valid UTF-8", quoteParam(k))
		}
		v[k] = vs[0]
	}
	return nil
}

func malformedQuery(format string, args ...any) *Error {
	return Errorf("MalformedQueryString", http.StatusBadRequest, format, args...)
}

// ValidationError returns the query protocol's error for a parameter that
// violates its constraints (HTTP 400), as IAM and STS spell it:
// "1 validation error detected: Value 'x' at 'roleName' failed to satisfy
// constraint: Member must ...".
func ValidationError(format string, args ...any) *Error {
	return Errorf("ValidationError", http.StatusBadRequest, format, args...)
}

// ConstraintError is ValidationError for one member: value (nil meaning the
// member is absent) at member failed constraint. Long values are shortened,
// so an error never echoes a whole policy document.
func ConstraintError(member string, value *string, constraint string) *Error {
	v := "null"
	if value != nil {
		v = "'" + shorten(*value, 64) + "'"
	}
	return ValidationError("1 validation error detected: Value %s at '%s' failed to satisfy constraint: %s", v, member, constraint)
}

// MemberName spells a parameter name as AWS's validation messages do:
// "RoleName" -> "roleName", "Tags.member.1.Key" -> "tags.1.member.key".
func MemberName(param string) string {
	parts := strings.Split(param, ".")
	out := make([]string, 0, len(parts))
	for i := 0; i < len(parts); i++ {
		p := parts[i]
		if (p == "member" || p == "entry") && i+1 < len(parts) {
			// AWS names the index before the container word.
			out = append(out, parts[i+1], p)
			i++
			continue
		}
		out = append(out, lowerFirst(p))
	}
	return strings.Join(out, ".")
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}

func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "..."
}

func quoteParam(k string) string { return strconv.Quote(shorten(k, 64)) }

// DecodeQuery decodes vals into dst, a pointer to a struct whose fields carry
// `query:"Name"` tags (with the option ",required" for members that must be
// present); the members of an embedded struct without a tag belong to the
// outer struct. The member encoding is AWS's:
//
//	string, bool, int, int32, int64   Name=value (bools are "true"/"false")
//	*T of those                       nil when Name is absent
//	struct                            Name.Field=...
//	[]T                               Name.member.1=..., Name.member.2=...;
//	                                  Name= (empty) is an empty list
//	[]struct                          Name.member.1.Field=...
//	map[string]string                 Name.entry.1.key=k&Name.entry.1.value=v
//
// Parameters without a matching field are ignored, as AWS ignores members it
// does not know. List indices must be canonical decimals running from 1
// without gaps, up to MaxListMembers. Every failure is a ValidationError
// *Error naming the member; it panics only when dst is not a pointer to a
// struct, which is a programming error.
func DecodeQuery(vals Values, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		panic("awsproto: internal error: DecodeQuery needs a pointer to a struct")
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d := &queryDecoder{vals: vals, keys: keys}
	return d.decodeStruct("", rv.Elem())
}

type queryDecoder struct {
	vals Values
	keys []string // sorted
}

// under returns the sorted keys that start with prefix; they are contiguous.
func (d *queryDecoder) under(prefix string) []string {
	i := sort.SearchStrings(d.keys, prefix)
	j := i
	for j < len(d.keys) && strings.HasPrefix(d.keys[j], prefix) {
		j++
	}
	return d.keys[i:j]
}

// present reports whether name or anything below it was sent.
func (d *queryDecoder) present(name string) bool {
	if _, ok := d.vals[name]; ok {
		return true
	}
	return len(d.under(name+".")) > 0
}

func (d *queryDecoder) decodeStruct(prefix string, sv reflect.Value) error {
	st := sv.Type()
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		tag, ok := f.Tag.Lookup("query")
		if !ok && f.Anonymous && f.Type.Kind() == reflect.Struct {
			// An embedded struct's members are the outer struct's.
			if err := d.decodeStruct(prefix, sv.Field(i)); err != nil {
				return err
			}
			continue
		}
		if !ok || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			panic("awsproto: internal error: empty query tag on " + st.Name() + "." + f.Name)
		}
		full := prefix + name
		if opts == "required" && !d.present(full) {
			return ConstraintError(MemberName(full), nil, "Member must not be null")
		}
		if err := d.decodeValue(full, sv.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

func (d *queryDecoder) decodeValue(name string, fv reflect.Value) error {
	switch fv.Kind() {
	case reflect.Pointer:
		if !d.present(name) {
			return nil
		}
		nv := reflect.New(fv.Type().Elem())
		if err := d.decodeValue(name, nv.Elem()); err != nil {
			return err
		}
		fv.Set(nv)
		return nil
	case reflect.Struct:
		return d.decodeStruct(name+".", fv)
	case reflect.Slice:
		return d.decodeList(name, fv)
	case reflect.Map:
		return d.decodeMap(name, fv)
	}
	s, ok := d.vals[name]
	if !ok {
		return nil
	}
	return setScalar(name, s, fv)
}

func setScalar(name, s string, fv reflect.Value) error {
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(s)
	case reflect.Bool:
		switch s {
		case "true":
			fv.SetBool(true)
		case "false":
			fv.SetBool(false)
		default:
			return ConstraintError(MemberName(name), &s, "Member must be true or false")
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, fv.Type().Bits())
		if err != nil {
			return ConstraintError(MemberName(name), &s, "Member must be an integer")
		}
		fv.SetInt(n)
	default:
		panic("awsproto: internal error: unsupported query field kind " + fv.Kind().String())
	}
	return nil
}

// indices returns n when the members under prefix ("Name.member.") are
// numbered exactly 1..n. leaf selects scalar members (prefix+"N") rather than
// structured ones (prefix+"N.Field").
func (d *queryDecoder) indices(name, prefix string, leaf bool) (int, error) {
	seen := map[int]bool{}
	for _, k := range d.under(prefix) {
		rest := k[len(prefix):]
		idx, _, hasSub := strings.Cut(rest, ".")
		if hasSub == leaf {
			if leaf {
				return 0, ValidationError("1 validation error detected: unexpected parameter %s: %s holds plain values", quoteParam(k), MemberName(name))
			}
			return 0, ValidationError("1 validation error detected: unexpected parameter %s: %s holds structures", quoteParam(k), MemberName(name))
		}
		n, ok := canonicalIndex(idx)
		if !ok {
			return 0, ValidationError("1 validation error detected: invalid member index in parameter %s", quoteParam(k))
		}
		if n > MaxListMembers {
			return 0, ValidationError("1 validation error detected: %s has more than %d members", MemberName(name), MaxListMembers)
		}
		seen[n] = true
	}
	for i := 1; i <= len(seen); i++ {
		if !seen[i] {
			return 0, ValidationError("1 validation error detected: %s members must be numbered from 1 without gaps (member %d is missing)", MemberName(name), i)
		}
	}
	return len(seen), nil
}

// canonicalIndex parses a list index: a decimal with no sign and no leading
// zero, so that "1" and "01" cannot name the same member.
func canonicalIndex(s string) (int, bool) {
	if s == "" || len(s) > 7 || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func (d *queryDecoder) decodeList(name string, fv reflect.Value) error {
	et := fv.Type().Elem()
	leaf := et.Kind() != reflect.Struct
	if et.Kind() == reflect.Slice || et.Kind() == reflect.Map || et.Kind() == reflect.Pointer {
		panic("awsproto: internal error: unsupported query list element " + et.String())
	}
	prefix := name + ".member."
	n, err := d.indices(name, prefix, leaf)
	if err != nil {
		return err
	}
	if v, ok := d.vals[name]; ok {
		if v != "" || n > 0 {
			return ValidationError("1 validation error detected: %s is a list: send %s.member.N, or %s= for an empty list", MemberName(name), name, name)
		}
		fv.Set(reflect.MakeSlice(fv.Type(), 0, 0))
		return nil
	}
	if n == 0 {
		return nil
	}
	out := reflect.MakeSlice(fv.Type(), n, n)
	for i := 0; i < n; i++ {
		elem := prefix + strconv.Itoa(i+1)
		if leaf {
			if err := setScalar(elem, d.vals[elem], out.Index(i)); err != nil {
				return err
			}
			continue
		}
		if err := d.decodeStruct(elem+".", out.Index(i)); err != nil {
			return err
		}
	}
	fv.Set(out)
	return nil
}

func (d *queryDecoder) decodeMap(name string, fv reflect.Value) error {
	if fv.Type().Key().Kind() != reflect.String || fv.Type().Elem().Kind() != reflect.String {
		panic("awsproto: internal error: query maps must be map[string]string")
	}
	prefix := name + ".entry."
	n, err := d.indices(name, prefix, false)
	if err != nil {
		return err
	}
	if v, ok := d.vals[name]; ok {
		if v != "" || n > 0 {
			return ValidationError("1 validation error detected: %s is a map: send %s.entry.N.key and %s.entry.N.value", MemberName(name), name, name)
		}
		fv.Set(reflect.MakeMap(fv.Type()))
		return nil
	}
	if n == 0 {
		return nil
	}
	m := reflect.MakeMapWithSize(fv.Type(), n)
	for i := 1; i <= n; i++ {
		e := prefix + strconv.Itoa(i) + "."
		k, ok := d.vals[e+"key"]
		if !ok {
			return ConstraintError(MemberName(e+"key"), nil, "Member must not be null")
		}
		kv := reflect.ValueOf(k).Convert(fv.Type().Key())
		if m.MapIndex(kv).IsValid() {
			return ValidationError("1 validation error detected: %s has the key %s twice", MemberName(name), quoteParam(k))
		}
		m.SetMapIndex(kv, reflect.ValueOf(d.vals[e+"value"]).Convert(fv.Type().Elem()))
	}
	fv.Set(m)
	return nil
}

// Responses.

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

// WriteQueryResult writes the successful response of a query-protocol
// action in AWS's envelope:
//
//	<ActionResponse xmlns="namespace">
//	  <ActionResult>...result...</ActionResult>
//	  <ResponseMetadata><RequestId>requestID</RequestId></ResponseMetadata>
//	</ActionResponse>
//
// result is marshalled with encoding/xml as the content of ActionResult (its
// own element name is ignored); a nil result writes no ActionResult, as IAM
// does for actions without output (DeleteRole). Everything is marshalled
// before anything is written, so a marshal failure can still become an error
// response.
func WriteQueryResult(w http.ResponseWriter, namespace, action, requestID string, result any) error {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	root := xml.StartElement{Name: xml.Name{Local: action + "Response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: namespace}}}
	if err := enc.EncodeToken(root); err != nil {
		return fmt.Errorf("encoding %s response: %w", action, err)
	}
	if result != nil {
		if err := enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
			return fmt.Errorf("encoding %s result: %w", action, err)
		}
	}
	if err := enc.EncodeElement(responseMetadata{RequestID: requestID}, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}}); err != nil {
		return fmt.Errorf("encoding %s response: %w", action, err)
	}
	if err := enc.EncodeToken(root.End()); err != nil {
		return fmt.Errorf("encoding %s response: %w", action, err)
	}
	if err := enc.Flush(); err != nil {
		return fmt.Errorf("encoding %s response: %w", action, err)
	}
	return writeXMLBytes(w, http.StatusOK, requestID, buf.Bytes())
}

// WriteQueryXML marshals v with encoding/xml (v names its own root element)
// and writes it with the given status. It is the low-level writer under
// WriteQueryResult and WriteQueryError.
func WriteQueryXML(w http.ResponseWriter, status int, v any) error {
	b, err := xml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding XML response: %w", err)
	}
	return writeXMLBytes(w, status, "", append([]byte(xml.Header), b...))
}

func writeXMLBytes(w http.ResponseWriter, status int, requestID string, b []byte) error {
	h := w.Header()
	h.Set("Content-Type", XMLContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if requestID != "" {
		h.Set("X-Amzn-RequestId", requestID)
	}
	w.WriteHeader(status)
	_, err := w.Write(b)
	return err
}

type queryErrorResponse struct {
	XMLName   xml.Name        `xml:"ErrorResponse"`
	Xmlns     string          `xml:"xmlns,attr"`
	Error     queryErrorInner `xml:"Error"`
	RequestID string          `xml:"RequestId"`
}

type queryErrorInner struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// WriteQueryError writes e in the query protocol's error shape, which
// aws-sdk-go-v2, botocore and the aws CLI read to pick the typed exception:
//
//	<ErrorResponse xmlns="namespace">
//	  <Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>...</Message></Error>
//	  <RequestId>requestID</RequestId>
//	</ErrorResponse>
//
// Type is Receiver for server-side failures (status 500 and above) and
// Sender otherwise. A zero e.Status is sent as 400.
func WriteQueryError(w http.ResponseWriter, namespace string, e *Error, requestID string) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	b, err := xml.Marshal(queryErrorResponse{Xmlns: namespace, RequestID: requestID,
		Error: queryErrorInner{Type: typ, Code: e.Code, Message: e.Message}})
	if err != nil {
		// Marshalling three strings cannot fail; keep the status anyway.
		b = nil
	}
	_ = writeXMLBytes(w, status, requestID, append([]byte(xml.Header), b...))
}
