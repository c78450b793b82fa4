package rotation_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/rotation"
)

// lambdaServer is a webhook endpoint that behaves like a rotation Lambda:
// it verifies each request's signature and does the step itself against
// the secrets API.
type lambdaServer struct {
	t       *testing.T
	secrets rotation.Secrets
	now     func() time.Time
	name    string // the secret name the Lambda rotates

	mu       sync.Mutex
	key      []byte
	requests []capturedRequest
	failStep rotation.Step
}

type capturedRequest struct {
	header string
	body   []byte
	event  rotation.WebhookEvent
}

func (l *lambdaServer) setKey(k []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.key = k
}

func (l *lambdaServer) captured() []capturedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]capturedRequest(nil), l.requests...)
}

func (l *lambdaServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	key, fail := l.key, l.failStep
	l.mu.Unlock()
	header := req.Header.Get(rotation.SignatureHeader)
	if err := rotation.VerifySignature(key, header, body, l.now(), rotation.DefaultMaxSkew); err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev rotation.WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	l.requests = append(l.requests, capturedRequest{header: header, body: body, event: ev})
	l.mu.Unlock()
	if ev.Step == fail {
		// The body is never quoted in the runner's error.
		http.Error(w, "the new value was webhook-secret-sauce", http.StatusInternalServerError)
		return
	}
	ctx := req.Context()
	switch ev.Step {
	case rotation.StepCreate:
		if _, err := l.secrets.RotationValue(ctx, l.name, ev.ClientRequestToken, rotation.StagePending); err == nil {
			break
		}
		v := "from-the-webhook-" + ev.ClientRequestToken
		if err := l.secrets.PutPendingValue(ctx, l.name, ev.ClientRequestToken, &v, nil); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	case rotation.StepSet, rotation.StepTest, rotation.StepFinish:
		if _, err := l.secrets.RotationValue(ctx, l.name, ev.ClientRequestToken, rotation.StagePending); err != nil {
			http.Error(w, "no pending value", http.StatusConflict)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestWebhookRotator(t *testing.T) {
	e := newRunnerEnv(t)
	e.secrets.add("app/webhooked", "old", "my-hook", e.clock.Now())
	l := &lambdaServer{t: t, secrets: e.secrets, now: e.clock.Now, name: "app/webhooked"}
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)

	reg, err := rotation.NewRegistry(rotation.RegistryConfig{Store: e.store, Region: testRegion, AccountID: testAccount, Now: e.clock.Now, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	key, err := reg.Put(context.Background(), rotation.RotatorSpec{Name: "my-hook", Type: rotation.TypeWebhook, Webhook: &rotation.WebhookSpec{URL: srv.URL + "/rotate", Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	l.setKey(key)
	r := e.runner(t, "a", func(c *rotation.Config) { c.Registry = reg })

	t.Run("failing step", func(t *testing.T) {
		l.mu.Lock()
		l.failStep = rotation.StepTest
		l.mu.Unlock()
		if res := pass(t, r); res.Failed != 1 {
			t.Fatalf("pass = %+v, want a failure", res)
		}
		s := e.secrets.get(t, "app/webhooked")
		if s.step != string(rotation.StepTest) || !strings.Contains(s.cause, "500 Internal Server Error") {
			t.Fatalf("failure = %q %q", s.step, s.cause)
		}
		if strings.Contains(s.cause, "secret-sauce") || strings.Contains(s.cause, "token=q") {
			t.Fatalf("cause quotes the response body or the URL's query: %q", s.cause)
		}
		if id, _ := e.secrets.stageValue(t, "app/webhooked", rotation.StageCurrent); id != "v0" {
			t.Fatalf("AWSCURRENT moved to %s", id)
		}
		l.mu.Lock()
		l.failStep = ""
		l.mu.Unlock()
		e.clock.Advance(time.Minute)
	})

	t.Run("success", func(t *testing.T) {
		before := len(l.captured())
		if res := pass(t, r); res.Succeeded != 1 {
			t.Fatalf("pass = %+v, want a success", res)
		}
		s := e.secrets.get(t, "app/webhooked")
		reqs := l.captured()[before:]
		var steps []string
		for _, q := range reqs {
			steps = append(steps, string(q.event.Step))
			if q.event.SecretID != s.arn {
				t.Fatalf("SecretId = %q, want the ARN %q", q.event.SecretID, s.arn)
			}
		}
		if strings.Join(steps, ",") != "createSecret,setSecret,testSecret,finishSecret" {
			t.Fatalf("steps = %v", steps)
		}
		id, v := e.secrets.stageValue(t, "app/webhooked", rotation.StageCurrent)
		if id != reqs[0].event.ClientRequestToken || v != "from-the-webhook-"+id {
			t.Fatalf("AWSCURRENT = %s %q, want the webhook's value", id, v)
		}
		// The retry after the failure used the first attempt's token.
		if first := l.captured()[0].event.ClientRequestToken; first != id {
			t.Fatalf("retry token %s, first attempt %s", id, first)
		}
	})

	t.Run("signatures", func(t *testing.T) {
		reqs := l.captured()
		q := reqs[len(reqs)-1]
		now := e.clock.Now()
		if err := rotation.VerifySignature(key, q.header, q.body, now, rotation.DefaultMaxSkew); err != nil {
			t.Fatalf("genuine request: %v", err)
		}
		forged := rotation.Sign([]byte("an attacker's guess at the key!!"), q.body, now)
		if err := rotation.VerifySignature(key, forged, q.body, now, rotation.DefaultMaxSkew); !errors.Is(err, rotation.ErrSignatureMismatch) {
			t.Fatalf("forged: %v", err)
		}
		if err := rotation.VerifySignature(key, q.header, q.body, now.Add(rotation.DefaultMaxSkew+time.Second), rotation.DefaultMaxSkew); !errors.Is(err, rotation.ErrSignatureExpired) {
			t.Fatalf("replayed late: %v", err)
		}
		other := reqs[0]
		if err := rotation.VerifySignature(key, q.header, other.body, now, rotation.DefaultMaxSkew); !errors.Is(err, rotation.ErrSignatureMismatch) {
			t.Fatalf("header replayed on another step's body: %v", err)
		}
		// The endpoint refuses a forged request.
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(string(q.body)))
		req.Header.Set(rotation.SignatureHeader, forged)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged request answered %d", resp.StatusCode)
		}
	})
}

func TestWebhookUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	w := &rotation.WebhookRotator{URL: url, Key: []byte("0123456789abcdef"), Timeout: 5 * time.Second}
	err := w.Step(context.Background(), rotation.StepCreate, rotation.Job{Name: "s", ARN: "arn", Token: "t"})
	if !errors.Is(err, rotation.ErrWebhook) {
		t.Fatalf("Step = %v, want ErrWebhook", err)
	}
	if err := w.Step(context.Background(), rotation.Step("rollback"), rotation.Job{}); !errors.Is(err, rotation.ErrUnknownStep) {
		t.Fatalf("unknown step = %v", err)
	}
}
