package awsproto

import (
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

type queryTag struct {
	Key   string `query:"Key,required"`
	Value string `query:"Value"`
}

type queryContextEntry struct {
	ContextKeyName   string   `query:"ContextKeyName"`
	ContextKeyType   string   `query:"ContextKeyType"`
	ContextKeyValues []string `query:"ContextKeyValues"`
}

type queryPolicyArn struct {
	Arn string `query:"arn"`
}

type queryNested struct {
	Region string `query:"Region"`
}

type queryEmbedded struct {
	UserName *string `query:"UserName"`
}

// queryAll exercises every kind DecodeQuery supports; the fuzz target decodes
// into it too.
type queryAll struct {
	queryEmbedded
	Action         string              `query:"Action,required"`
	RoleName       string              `query:"RoleName"`
	Path           *string             `query:"Path"`
	MaxItems       *int32              `query:"MaxItems"`
	DurationSecs   int64               `query:"DurationSeconds"`
	Count          int                 `query:"Count"`
	SetAsDefault   bool                `query:"SetAsDefault"`
	OnlyAttached   *bool               `query:"OnlyAttached"`
	Tags           []queryTag          `query:"Tags"`
	TagKeys        []string            `query:"TagKeys"`
	ClientIDList   []string            `query:"ClientIDList"`
	ThumbprintList []string            `query:"ThumbprintList"`
	ActionNames    []string            `query:"ActionNames"`
	ContextEntries []queryContextEntry `query:"ContextEntries"`
	PolicyArns     []queryPolicyArn    `query:"PolicyArns"`
	Attributes     map[string]string   `query:"Attributes"`
	Nested         queryNested         `query:"Nested"`
	NestedPtr      *queryNested        `query:"NestedPtr"`
	ignored        string              `query:"Ignored"` // unexported: skipped
}

func ptr[T any](v T) *T { return &v }

func postForm(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	return r
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		target  string
		ctype   string
		body    string
		want    Values
		wantErr string
	}{
		{name: "post body", method: "POST", target: "/", ctype: QueryContentType,
			body: "Action=GetRole&RoleName=ci%2Bcd&Version=2010-05-08",
			want: Values{"Action": "GetRole", "RoleName": "ci+cd", "Version": "2010-05-08"}},
		{name: "post with charset", method: "POST", target: "/", ctype: QueryContentType + "; charset=utf-8",
			body: "Action=GetUser", want: Values{"Action": "GetUser"}},
		{name: "post without content type", method: "POST", target: "/",
			body: "Action=GetUser", want: Values{"Action": "GetUser"}},
		{name: "get query string", method: "GET", target: "/?Action=ListRoles&MaxItems=5",
			want: Values{"Action": "ListRoles", "MaxItems": "5"}},
		{name: "query string and body merge", method: "POST", target: "/?Version=2010-05-08", ctype: QueryContentType,
			body: "Action=GetUser", want: Values{"Action": "GetUser", "Version": "2010-05-08"}},
		{name: "empty", method: "POST", target: "/", want: Values{}},
		{name: "duplicate in body", method: "POST", target: "/", body: "RoleName=a&RoleName=b", wantErr: "more than once"},
		{name: "duplicate across query and body", method: "POST", target: "/?RoleName=a", body: "RoleName=b", wantErr: "more than once"},
		{name: "bad escape", method: "POST", target: "/", body: "RoleName=%zz", wantErr: "not valid form encoding"},
		{name: "semicolon", method: "POST", target: "/", body: "a=1;b=2", wantErr: "not valid form encoding"},
		{name: "bad query string", method: "GET", target: "/?a=%zz", wantErr: "not valid form encoding"},
		{name: "json body", method: "POST", target: "/", ctype: "application/x-amz-json-1.1", body: "{}", wantErr: "must be application/x-www-form-urlencoded"},
		{name: "get with body", method: "GET", target: "/", body: "Action=GetUser", wantErr: "must not have a body"},
		{name: "invalid utf-8", method: "POST", target: "/", body: "RoleName=%ff", wantErr: "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			got, err := ParseQuery([]byte(tt.body), r)
			if tt.wantErr != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != "MalformedQueryString" || e.Status != http.StatusBadRequest {
					t.Fatalf("err = %v, want MalformedQueryString", err)
				}
				if !strings.Contains(e.Message, tt.wantErr) {
					t.Fatalf("message %q does not contain %q", e.Message, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseQuery: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValuesAccessors(t *testing.T) {
	v := Values{"Action": "GetRole", "Version": "2010-05-08"}
	if v.Action() != "GetRole" || v.Version() != "2010-05-08" {
		t.Fatalf("Action/Version = %q/%q", v.Action(), v.Version())
	}
	if (Values{}).Action() != "" {
		t.Fatal("empty Values has an action")
	}
}

func TestDecodeQuery(t *testing.T) {
	form := "Action=CreateRole&RoleName=ci&Path=%2Fteam%2F&MaxItems=25&DurationSeconds=3600&Count=-3" +
		"&SetAsDefault=true&OnlyAttached=false" +
		"&Tags.member.1.Key=team&Tags.member.1.Value=core&Tags.member.2.Key=env" +
		"&TagKeys.member.1=a&TagKeys.member.2=b&TagKeys.member.3=c" +
		"&ClientIDList.member.1=sts.amazonaws.com&ThumbprintList=" +
		"&ContextEntries.member.1.ContextKeyName=aws%3ASourceIp&ContextEntries.member.1.ContextKeyType=ip" +
		"&ContextEntries.member.1.ContextKeyValues.member.1=10.0.0.1&ContextEntries.member.1.ContextKeyValues.member.2=10.0.0.2" +
		"&ContextEntries.member.2.ContextKeyName=aws%3AUserAgent" +
		"&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Apolicy%2Fro" +
		"&Attributes.entry.1.key=k1&Attributes.entry.1.value=v1&Attributes.entry.2.key=k2" +
		"&Nested.Region=eu-west-1&Unknown.member.7=ignored&Ignored=x&UserName=u"
	vals, err := ParseQuery([]byte(form), postForm(form))
	if err != nil {
		t.Fatal(err)
	}
	var got queryAll
	if err := DecodeQuery(vals, &got); err != nil {
		t.Fatalf("DecodeQuery: %v", err)
	}
	want := queryAll{
		queryEmbedded: queryEmbedded{UserName: ptr("u")},
		Action:        "CreateRole", RoleName: "ci", Path: ptr("/team/"), MaxItems: ptr(int32(25)),
		DurationSecs: 3600, Count: -3, SetAsDefault: true, OnlyAttached: ptr(false),
		Tags:           []queryTag{{Key: "team", Value: "core"}, {Key: "env"}},
		TagKeys:        []string{"a", "b", "c"},
		ClientIDList:   []string{"sts.amazonaws.com"},
		ThumbprintList: []string{},
		ContextEntries: []queryContextEntry{
			{ContextKeyName: "aws:SourceIp", ContextKeyType: "ip", ContextKeyValues: []string{"10.0.0.1", "10.0.0.2"}},
			{ContextKeyName: "aws:UserAgent"},
		},
		PolicyArns: []queryPolicyArn{{Arn: "arn:aws:iam::123456789012:policy/ro"}},
		Attributes: map[string]string{"k1": "v1", "k2": ""},
		Nested:     queryNested{Region: "eu-west-1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if got.ActionNames != nil || got.NestedPtr != nil {
		t.Fatal("absent members must stay nil")
	}
}

func TestDecodeQueryManyMembers(t *testing.T) {
	// Index 10 sorts before 2: ordering must be numeric, not lexical.
	vals := Values{"Action": "UntagRole"}
	var want []string
	for i := 1; i <= 12; i++ {
		v := "k" + strings.Repeat("x", i)
		vals["TagKeys.member."+strconv.Itoa(i)] = v
		want = append(want, v)
	}
	var got queryAll
	if err := DecodeQuery(vals, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.TagKeys, want) {
		t.Fatalf("TagKeys = %v, want %v", got.TagKeys, want)
	}
}

func TestDecodeQueryErrors(t *testing.T) {
	tests := []struct {
		name string
		vals Values
		want string
	}{
		{"missing required", Values{}, "Value null at 'action' failed to satisfy constraint: Member must not be null"},
		{"missing required in list", Values{"Action": "a", "Tags.member.1.Value": "v"}, "Value null at 'tags.1.member.key'"},
		{"bad integer", Values{"Action": "a", "MaxItems": "ten"}, "Value 'ten' at 'maxItems' failed to satisfy constraint: Member must be an integer"},
		{"integer overflow", Values{"Action": "a", "MaxItems": "4294967296"}, "Member must be an integer"},
		{"bad bool", Values{"Action": "a", "SetAsDefault": "yes"}, "Member must be true or false"},
		{"gap", Values{"Action": "a", "TagKeys.member.1": "x", "TagKeys.member.3": "y"}, "member 2 is missing"},
		{"leading zero", Values{"Action": "a", "TagKeys.member.01": "x"}, "invalid member index"},
		{"signed index", Values{"Action": "a", "TagKeys.member.+1": "x"}, "invalid member index"},
		{"zero index", Values{"Action": "a", "TagKeys.member.0": "x"}, "invalid member index"},
		{"huge index", Values{"Action": "a", "TagKeys.member.1001": "x"}, "more than 1000 members"},
		{"struct value in scalar list", Values{"Action": "a", "TagKeys.member.1.Key": "x"}, "holds plain values"},
		{"scalar in struct list", Values{"Action": "a", "Tags.member.1": "x"}, "holds structures"},
		{"list given a value", Values{"Action": "a", "TagKeys": "x"}, "is a list"},
		{"empty marker with members", Values{"Action": "a", "TagKeys": "", "TagKeys.member.1": "x"}, "is a list"},
		{"map without key", Values{"Action": "a", "Attributes.entry.1.value": "v"}, "Value null at 'attributes.1.entry.key'"},
		{"map duplicate key", Values{"Action": "a", "Attributes.entry.1.key": "k", "Attributes.entry.2.key": "k"}, "has the key \"k\" twice"},
		{"map given a value", Values{"Action": "a", "Attributes": "x"}, "is a map"},
		{"long value shortened", Values{"Action": "a", "MaxItems": strings.Repeat("9", 200)}, strings.Repeat("9", 64) + "...'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got queryAll
			err := DecodeQuery(tt.vals, &got)
			var e *Error
			if !errors.As(err, &e) || e.Code != "ValidationError" || e.Status != http.StatusBadRequest {
				t.Fatalf("err = %v, want ValidationError", err)
			}
			if !strings.Contains(e.Message, tt.want) {
				t.Fatalf("message %q does not contain %q", e.Message, tt.want)
			}
		})
	}
}

func TestDecodeQueryPanicsOnNonStruct(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("DecodeQuery(non-pointer) did not panic")
		}
	}()
	_ = DecodeQuery(Values{}, queryAll{})
}

func TestMemberName(t *testing.T) {
	for in, want := range map[string]string{
		"RoleName":                               "roleName",
		"Tags.member.1.Key":                      "tags.1.member.key",
		"ContextEntries.member.2.ContextKeyName": "contextEntries.2.member.contextKeyName",
		"Attributes.entry.3.value":               "attributes.3.entry.value",
		"":                                       "",
	} {
		if got := MemberName(in); got != want {
			t.Errorf("MemberName(%q) = %q, want %q", in, got, want)
		}
	}
}

type testRole struct {
	RoleName string   `xml:"RoleName"`
	Tags     []string `xml:"Tags>member"`
}

type testResult struct {
	XMLName xml.Name `xml:"Ignored"`
	Role    testRole `xml:"Role"`
}

func TestWriteQueryResult(t *testing.T) {
	rec := httptest.NewRecorder()
	err := WriteQueryResult(rec, IAMNamespace, "GetRole", "req-1", testResult{Role: testRole{RoleName: "a<b", Tags: []string{"x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != XMLContentType || rec.Header().Get("X-Amzn-RequestId") != "req-1" {
		t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
	}
	want := xml.Header + `<GetRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetRoleResult><Role><RoleName>a&lt;b</RoleName><Tags><member>x</member></Tags></Role></GetRoleResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></GetRoleResponse>`
	if got := rec.Body.String(); got != want {
		t.Fatalf("body\n%s\nwant\n%s", got, want)
	}
	if rec.Header().Get("Content-Length") != strconv.Itoa(len(want)) {
		t.Fatalf("Content-Length %s, body %d bytes", rec.Header().Get("Content-Length"), len(want))
	}

	rec = httptest.NewRecorder()
	if err := WriteQueryResult(rec, STSNamespace, "DeleteRole", "req-2", nil); err != nil {
		t.Fatal(err)
	}
	want = xml.Header + `<DeleteRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><ResponseMetadata><RequestId>req-2</RequestId></ResponseMetadata></DeleteRoleResponse>`
	if got := rec.Body.String(); got != want {
		t.Fatalf("body\n%s\nwant\n%s", got, want)
	}

	// A result encoding/xml cannot marshal is reported before anything is
	// written.
	rec = httptest.NewRecorder()
	if err := WriteQueryResult(rec, IAMNamespace, "GetRole", "r", map[string]string{"a": "b"}); err == nil {
		t.Fatal("marshalling a map succeeded")
	}
	if rec.Body.Len() != 0 || rec.Code != http.StatusOK || len(rec.Header()) != 0 {
		t.Fatalf("failed marshal wrote %q", rec.Body.String())
	}
}

func TestWriteQueryError(t *testing.T) {
	tests := []struct {
		name       string
		err        *Error
		wantStatus int
		wantType   string
	}{
		{"sender", Errorf("NoSuchEntity", http.StatusNotFound, "The role with name x cannot be found."), 404, "Sender"},
		{"receiver", Errorf("ServiceFailure", http.StatusInternalServerError, "boom"), 500, "Receiver"},
		{"zero status", &Error{Code: "InvalidInput", Message: "m"}, 400, "Sender"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteQueryError(rec, IAMNamespace, tt.err, "req-9")
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			var got struct {
				XMLName xml.Name
				Xmlns   string `xml:"xmlns,attr"`
				Type    string `xml:"Error>Type"`
				Code    string `xml:"Error>Code"`
				Message string `xml:"Error>Message"`
				ReqID   string `xml:"RequestId"`
			}
			if err := xml.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.XMLName.Local != "ErrorResponse" || got.Xmlns != IAMNamespace || got.Type != tt.wantType ||
				got.Code != tt.err.Code || got.Message != tt.err.Message || got.ReqID != "req-9" {
				t.Fatalf("decoded %+v from %s", got, rec.Body.String())
			}
		})
	}
}

func TestWriteQueryXML(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := WriteQueryXML(rec, http.StatusConflict, testResult{Role: testRole{RoleName: "r"}}); err != nil {
		t.Fatal(err)
	}
	want := xml.Header + `<Ignored><Role><RoleName>r</RoleName><Tags></Tags></Role></Ignored>`
	if rec.Code != http.StatusConflict || rec.Body.String() != want {
		t.Fatalf("status %d body %s", rec.Code, rec.Body.String())
	}
	if err := WriteQueryXML(httptest.NewRecorder(), 200, make(chan int)); err == nil {
		t.Fatal("marshalling a channel succeeded")
	}
}

// TestQueryTestdata checks the seed corpus: good files parse and decode,
// bad_* files fail in one of the two steps with an AWS-shaped error.
func TestQueryTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "query", "*.form"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			err = parseAndDecode(body)
			bad := strings.HasPrefix(filepath.Base(f), "bad_")
			if bad {
				var e *Error
				if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
					t.Fatalf("bad input gave %v, want a 400 *Error", err)
				}
			} else if err != nil {
				t.Fatalf("good input failed: %v", err)
			}
		})
	}
}

func parseAndDecode(body []byte) error {
	vals, err := ParseQuery(body, postForm(string(body)))
	if err != nil {
		return err
	}
	var v queryAll
	return DecodeQuery(vals, &v)
}

// FuzzParseQuery checks that no input makes the parser or decoder panic,
// that every failure is a client error, and that what parses survives a
// re-encoding unchanged.
func FuzzParseQuery(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "query", "*.form"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		vals, err := ParseQuery(body, postForm(string(body)))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
				t.Fatalf("ParseQuery error %v is not a 400 *Error", err)
			}
			return
		}
		uv := url.Values{}
		for k, v := range vals {
			uv.Set(k, v)
		}
		again, err := ParseQuery([]byte(uv.Encode()), postForm(uv.Encode()))
		if err != nil || !reflect.DeepEqual(again, vals) {
			t.Fatalf("re-encoded values parse to %v, %v; want %v", again, err, vals)
		}
		var v queryAll
		if err := DecodeQuery(vals, &v); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != "ValidationError" {
				t.Fatalf("DecodeQuery error %v is not a ValidationError", err)
			}
		}
	})
}
