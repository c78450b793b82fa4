package sts_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/sts"
)

// webIdentityResponse mirrors STS's documented response schema.
type webIdentityResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleWithWebIdentityResponse"`
	Result  struct {
		Credentials struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string
			SessionToken    string
			Expiration      string
		}
		SubjectFromWebIdentityToken string
		AssumedRoleUser             struct {
			Arn           string
			AssumedRoleID string `xml:"AssumedRoleId"`
		}
		Provider string
		Audience string
	} `xml:"AssumeRoleWithWebIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type errorResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Type    string   `xml:"Error>Type"`
	Code    string   `xml:"Error>Code"`
	Message string   `xml:"Error>Message"`
}

func TestQueryProtocol(t *testing.T) {
	sc := newScenario(t)
	h := sc.h
	params := func() url.Values {
		return url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {sts.APIVersion},
			"RoleArn": {sc.roleARN}, "RoleSessionName": {"raw"}, "WebIdentityToken": {sc.appToken()}}
	}
	send := func(t *testing.T, method string, form url.Values) (int, []byte) {
		t.Helper()
		var resp *http.Response
		var err error
		if method == http.MethodGet {
			resp, err = h.srv.Client().Get(h.srv.URL + "/?" + form.Encode())
		} else {
			resp, err = h.srv.Client().PostForm(h.srv.URL, form)
		}
		mustNoErr(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		mustNoErr(t, err)
		if ct := resp.Header.Get("Content-Type"); ct != "text/xml" {
			t.Errorf("Content-Type %q", ct)
		}
		return resp.StatusCode, b
	}

	for _, method := range []string{http.MethodPost, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			status, body := send(t, method, params())
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			var r webIdentityResponse
			if err := xml.Unmarshal(body, &r); err != nil {
				t.Fatalf("response does not follow the schema: %v\n%s", err, body)
			}
			c := r.Result.Credentials
			if !strings.HasPrefix(c.AccessKeyID, "ASIA") || len(c.SecretAccessKey) != 40 || c.SessionToken == "" ||
				!strings.HasSuffix(c.Expiration, "Z") || r.Result.AssumedRoleUser.Arn == "" || r.RequestID == "" ||
				r.Result.SubjectFromWebIdentityToken != appSubject || r.Result.Provider != sc.providerARN {
				t.Errorf("incomplete response: %s", body)
			}
			ev := h.audit.last("sts.amazonaws.com")
			if ev == nil || !ev.Allowed || !ev.ReturnsSecret || ev.Identity == nil || ev.Identity.Type != "WebIdentityUser" ||
				ev.Kubernetes == nil || ev.Kubernetes.ServiceAccount != "my-app" || ev.Policy != "role/"+appRole+"/trust-policy" {
				t.Fatalf("audit event %+v", ev)
			}
			elements, err := json.Marshal(ev.ResponseElements)
			mustNoErr(t, err)
			if !strings.Contains(string(elements), `"sessionId":"`) || strings.Contains(string(elements), c.SecretAccessKey) ||
				strings.Contains(string(elements), c.SessionToken) {
				t.Errorf("audit response elements %s: want a session id and neither the secret nor the token", elements)
			}
		})
	}

	errorsTests := []struct {
		name   string
		form   func() url.Values
		status int
		code   string
	}{
		{"missing member", func() url.Values { f := params(); f.Del("RoleArn"); return f }, 400, "ValidationError"},
		// Only AssumeRoleWithWebIdentity skips SigV4, so an unsigned
		// request for anything else is refused before it is looked at.
		{"unsigned unknown action", func() url.Values { f := params(); f.Set("Action", "GetFederationToken"); return f }, 403, "MissingAuthenticationToken"},
		{"unsigned AssumeRole", func() url.Values { f := params(); f.Set("Action", "AssumeRole"); return f }, 403, "MissingAuthenticationToken"},
		{"trust refuses", func() url.Values {
			f := params()
			f.Set("WebIdentityToken", h.issuer.MintToken())
			return f
		}, 403, "AccessDenied"},
		{"bad token", func() url.Values { f := params(); f.Set("WebIdentityToken", "a.b.c"); return f }, 400, "InvalidIdentityToken"},
	}
	for _, tt := range errorsTests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := send(t, http.MethodPost, tt.form())
			var r errorResponse
			if err := xml.Unmarshal(body, &r); err != nil {
				t.Fatalf("error does not follow the schema: %v\n%s", err, body)
			}
			if status != tt.status || r.Code != tt.code || r.Type != "Sender" || r.Message == "" {
				t.Errorf("got %d %s/%s %q, want %d %s", status, r.Type, r.Code, r.Message, tt.status, tt.code)
			}
		})
	}
}

func TestHandleRefusesUnknownCalls(t *testing.T) {
	sc := newScenario(t)
	root := &authn.Principal{Kind: authn.KindRoot, AccountID: testAccount, ARN: "arn:aws:iam::" + testAccount + ":root", ID: testAccount}
	tests := []struct {
		name string
		form awsproto.Values
		code string
	}{
		{"unknown action", awsproto.Values{"Action": "GetFederationToken", "Version": sts.APIVersion}, "InvalidAction"},
		{"missing action", awsproto.Values{"Version": sts.APIVersion}, "MissingAction"},
		{"other version", awsproto.Values{"Action": "GetCallerIdentity", "Version": "2010-05-08"}, "InvalidAction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sc.h.sts.Handle(context.Background(), &sts.Call{Action: tt.form.Action(), Form: tt.form, Principal: root})
			var ae *awsproto.Error
			if !errors.As(err, &ae) || ae.Code != tt.code {
				t.Fatalf("got %v, want %s", err, tt.code)
			}
		})
	}
	out, err := sc.h.sts.Handle(context.Background(), &sts.Call{Action: "GetCallerIdentity",
		Form: awsproto.Values{"Action": "GetCallerIdentity", "Version": sts.APIVersion}, Principal: root})
	if err != nil || out == nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
}

func TestUnsignedActions(t *testing.T) {
	sc := newScenario(t)
	for action, want := range map[string]bool{"AssumeRoleWithWebIdentity": true, "AssumeRole": false,
		"GetCallerIdentity": false, "NoSuchAction": false} {
		if got := sc.h.sts.Unsigned(action); got != want {
			t.Errorf("Unsigned(%s) = %v, want %v", action, got, want)
		}
	}
	if !sts.KnownAction("AssumeRole") || sts.KnownAction("GetFederationToken") {
		t.Error("KnownAction disagrees with the served actions")
	}
	if !sts.IsSessionAccessKey("ASIAABCDEFGHIJKLMNOP") || sts.IsSessionAccessKey("AKIAABCDEFGHIJKLMNOP") {
		t.Error("IsSessionAccessKey misclassifies")
	}
}
