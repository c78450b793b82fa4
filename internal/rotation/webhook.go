package rotation

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header carrying a webhook request's signature:
//
//	X-Sigil-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, t + "." + body)>
//
// A receiver checks it with [VerifySignature] before acting on the body.
const SignatureHeader = "X-Sigil-Signature"

// DefaultWebhookTimeout bounds one webhook request when the rotator's
// Timeout is zero.
const DefaultWebhookTimeout = 30 * time.Second

// DefaultMaxSkew is the signature age a receiver should accept: it covers
// the request's own timeout and clock differences, and bounds how long a
// captured request can be replayed.
const DefaultMaxSkew = 5 * time.Minute

// maxSignatureHeader bounds the header VerifySignature parses.
const maxSignatureHeader = 4096

// WebhookEvent is the JSON body of a webhook request: the event AWS sends a
// rotation Lambda.
type WebhookEvent struct {
	Step               Step   `json:"Step"`
	SecretID           string `json:"SecretId"`
	ClientRequestToken string `json:"ClientRequestToken"`
}

// WebhookRotator sends each step to an HTTPS endpoint, which does the work
// itself with its own credentials against sigil's Secrets Manager API
// (GetSecretValue, PutSecretValue with VersionStages [AWSPENDING],
// UpdateSecretVersionStage), exactly as a rotation Lambda does. A 2xx
// response means the step succeeded; anything else fails it. Requests are
// signed with [SignatureHeader]; the endpoint must verify the signature and
// should treat the (ClientRequestToken, Step) pair as idempotent, since the
// runner repeats steps after failures.
type WebhookRotator struct {
	// URL is the endpoint. Required.
	URL string
	// Key is the HMAC-SHA256 key shared with the endpoint. Required.
	Key []byte
	// Timeout bounds each request; zero means DefaultWebhookTimeout.
	Timeout time.Duration
	// Client sends the requests; nil means a client without a global
	// timeout (Timeout applies per request).
	Client *http.Client
	// Now is the clock of the signature timestamp; nil means time.Now.
	Now func() time.Time
}

// Step implements Rotator.
func (w *WebhookRotator) Step(ctx context.Context, step Step, job Job) error {
	switch step {
	case StepCreate, StepSet, StepTest, StepFinish:
	default:
		return unknownStep(step)
	}
	body, err := json.Marshal(WebhookEvent{Step: step, SecretID: job.ARN, ClientRequestToken: job.Token})
	if err != nil {
		return fmt.Errorf("encoding the webhook event: %w", err)
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: building the request: %w", ErrWebhook, err)
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sigil-rotation")
	req.Header.Set(SignatureHeader, Sign(w.Key, body, now()))
	client := w.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s to %s: %w", ErrWebhook, step, redactURL(w.URL), err)
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused; the body is never
	// quoted in the error, since an endpoint may echo secret material.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%w: %s to %s answered %s", ErrWebhook, step, redactURL(w.URL), resp.Status)
	}
	return nil
}

// redactURL drops the query and user info of an endpoint URL, which may
// hold credentials, for error messages.
func redactURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.LastIndexByte(u[i+3:], '@'); j >= 0 {
			u = u[:i+3] + u[i+3+j+1:]
		}
	}
	return u
}

// Sign returns the X-Sigil-Signature value for body sent at now under key.
func Sign(key, body []byte, now time.Time) string {
	t := strconv.FormatInt(now.Unix(), 10)
	return "t=" + t + ",v1=" + hex.EncodeToString(signature(key, t, body))
}

func signature(key []byte, t string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(t))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// VerifySignature checks an X-Sigil-Signature header against body under
// key, for a webhook receiver. The header is "t=<unix>,v1=<hex>"; several
// v1 entries are allowed (one per key while a key is being replaced) and
// any one matching suffices; unknown entries are ignored. It returns an
// error wrapping [ErrSignatureMalformed] if the header does not parse,
// [ErrSignatureExpired] if t is more than maxSkew away from now (before or
// after), and [ErrSignatureMismatch] if no v1 matches. Comparison is in
// constant time.
//
// The timestamp limits replay to maxSkew; within it the same request can be
// replayed, so receivers should make each (ClientRequestToken, Step) pair
// idempotent (the rotation contract requires that anyway) or remember the
// signatures they have seen for maxSkew.
func VerifySignature(key []byte, header string, body []byte, now time.Time, maxSkew time.Duration) error {
	if len(header) > maxSignatureHeader {
		return fmt.Errorf("%w: longer than %d bytes", ErrSignatureMalformed, maxSignatureHeader)
	}
	if len(key) == 0 {
		return fmt.Errorf("%w: no key", ErrSignatureMismatch)
	}
	var (
		ts   string
		sigs [][]byte
	)
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: an entry is not key=value", ErrSignatureMalformed)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: more than one timestamp", ErrSignatureMalformed)
			}
			if v == "" {
				return fmt.Errorf("%w: empty timestamp", ErrSignatureMalformed)
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: a v1 signature is not 64 hex digits", ErrSignatureMalformed)
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: a timestamp and a v1 signature are required", ErrSignatureMalformed)
	}
	// Digits only: ParseInt would accept a sign, which would give one
	// timestamp two spellings.
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return fmt.Errorf("%w: the timestamp is not decimal seconds", ErrSignatureMalformed)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec > now.Unix()+1<<40 {
		return fmt.Errorf("%w: the timestamp is out of range", ErrSignatureMalformed)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("%w: signed at %s", ErrSignatureExpired, time.Unix(sec, 0).UTC().Format(time.RFC3339))
	}
	want := signature(key, ts, body)
	ok := 0
	for _, sig := range sigs {
		ok |= boolInt(hmac.Equal(sig, want))
	}
	if ok == 0 {
		return ErrSignatureMismatch
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// String describes the rotator without its key.
func (w *WebhookRotator) String() string {
	return fmt.Sprintf("webhook %s (key REDACTED)", redactURL(w.URL))
}

// GoString keeps the key out of %#v.
func (w *WebhookRotator) GoString() string { return w.String() }

// LogValue describes the rotator to log/slog without its key.
func (w *WebhookRotator) LogValue() slog.Value { return slog.StringValue(w.String()) }
