package audit

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// syncBuffer is a bytes.Buffer safe for the exporter goroutine and the
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func TestWriterExporterGetsTheSameLines(t *testing.T) {
	dir := t.TempDir()
	var out syncBuffer
	l := openLog(t, dir, Options{Exporters: []Exporter{NewWriterExporter("stdout", &out)}})
	for i := range 25 {
		record(t, l, sampleEvent(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := bytes.Join(allLines(t, dir), []byte("\n"))
	want = append(want, '\n')
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("stdout sink differs from the file log:\n%s\n---\n%s", out.Bytes(), want)
	}
}

// TestWebhookRetriesAndRecovers: a webhook that fails at first gets every
// record once it recovers; the failures are counted and the file log is
// complete throughout.
func TestWebhookRetriesAndRecovers(t *testing.T) {
	var mu sync.Mutex
	failures := 3
	var got [][]byte
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		auth = append(auth, r.Header.Get("Authorization"))
		if failures > 0 {
			failures--
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var doc struct {
			Records []json.RawMessage `json:"Records"`
		}
		if err := json.Unmarshal(body, &doc); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		for _, rec := range doc.Records {
			got = append(got, rec)
		}
	}))
	defer srv.Close()
	hook, err := NewWebhook(WebhookOptions{URL: srv.URL, Header: http.Header{"Authorization": {"Bearer t0k"}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keys := testKeys(t)
	l := openLog(t, dir, Options{Keys: keys, Exporters: []Exporter{hook}, ExportBackoff: time.Millisecond, ExportMaxBackoff: 4 * time.Millisecond})
	for i := range 50 {
		record(t, l, sampleEvent(i))
	}
	lines := allLines(t, dir)
	waitFor(t, "the webhook to receive every record", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= len(lines)
	})
	mu.Lock()
	for i, rec := range got[:len(lines)] {
		if !bytes.Equal(rec, lines[i]) {
			t.Fatalf("webhook record %d differs:\n%s\n%s", i, rec, lines[i])
		}
	}
	for _, a := range auth {
		if a != "Bearer t0k" {
			t.Fatalf("request without the configured header: %q", a)
		}
	}
	mu.Unlock()
	if n := testutil.ToFloat64(l.m.sinkErrors.WithLabelValues("webhook")); n < 3 {
		t.Fatalf("sink errors %v, want at least 3", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, dir, keys, true); !rep.OK() || rep.Records != 50 {
		t.Fatalf("file log: %+v %v", rep, rep.Problem)
	}
}

// TestStuckSinkNeverBlocks: a webhook that never answers fills its bounded
// queue; records beyond it are dropped from the sink (counted), Record
// keeps succeeding, and the file log has everything.
func TestStuckSinkNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	hook, err := NewWebhook(WebhookOptions{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keys := testKeys(t)
	l := openLog(t, dir, Options{Keys: keys, Exporters: []Exporter{hook}, ExportQueue: 8, ExportBatch: 2, ExportDrainTimeout: time.Millisecond})
	for i := range 100 {
		record(t, l, sampleEvent(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(l.m.sinkDrops.WithLabelValues("webhook")); n < 100-8-2 {
		t.Fatalf("sink drops %v", n)
	}
	if rep := mustVerify(t, dir, keys, true); !rep.OK() || rep.Records != 100 {
		t.Fatalf("file log: %+v %v", rep, rep.Problem)
	}
}

func TestNewWebhookRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "://"} {
		if _, err := NewWebhook(WebhookOptions{URL: u}); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
}

func TestCollectorsRegister(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{})
	reg := prometheus.NewRegistry()
	for _, c := range l.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	record(t, l, sampleEvent(1))
	l.m.sinkErrors.WithLabelValues("x")
	l.m.sinkDrops.WithLabelValues("x")
	l.m.dropped.WithLabelValues("queue_full")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"sigil_audit_queue_depth", "sigil_audit_healthy", "sigil_audit_fsync_duration_seconds",
		"sigil_audit_batch_records", "sigil_audit_records_written_total", "sigil_audit_records_dropped_total",
		"sigil_audit_sink_errors_total", "sigil_audit_sink_dropped_total"} {
		if !names[want] {
			t.Errorf("metric %s missing (have %v)", want, names)
		}
	}
	if v := testutil.ToFloat64(l.m.written.WithLabelValues("event")); v != 1 {
		t.Errorf("records written %v, want 1", v)
	}
}

func TestWebhookErrorsHideCredentials(t *testing.T) {
	hook, err := NewWebhook(WebhookOptions{URL: "http://user:pa55@127.0.0.1:1/hook?token=s3cr3t"})
	if err != nil {
		t.Fatal(err)
	}
	err = hook.Export(t.Context(), [][]byte{[]byte(`{}`)})
	if err == nil {
		t.Fatal("export to a closed port succeeded")
	}
	for _, s := range []string{"pa55", "s3cr3t", "user"} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error %q reveals %q", err, s)
		}
	}
	if _, err := NewWebhook(WebhookOptions{URL: "ftp://u:pa55@h/x?token=s3cr3t"}); err == nil || strings.Contains(err.Error(), "pa55") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("bad URL error %v", err)
	}
}
