package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPanicIsRecoveredAs500(t *testing.T) {
	var logs strings.Builder
	s := &Server{cfg: Config{MaxRequestBytes: 1 << 20}, metrics: newMetrics(),
		log: slog.New(slog.NewTextHandler(&logs, nil))}
	h := s.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for i := 0; i < 2; i++ { // the second request proves the server survived
		resp, err := http.Post(srv.URL+"/", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 500 || !strings.Contains(string(b), `"__type":"InternalFailure"`) {
			t.Fatalf("panic answered %d %s", resp.StatusCode, b)
		}
		if strings.Contains(string(b), "boom") {
			t.Errorf("the panic value leaked to the client")
		}
	}
	if got := testutil.ToFloat64(s.metrics.panics); got != 2 {
		t.Errorf("panics metric = %v, want 2", got)
	}
	if !strings.Contains(logs.String(), "boom") || !strings.Contains(logs.String(), "stack") {
		t.Errorf("the panic was not logged with its stack")
	}
}

func TestRequestIDsAreUniqueUUIDs(t *testing.T) {
	g := newRequestIDs()
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := g.next()
		if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
			t.Fatalf("request id %q is not UUID-shaped", id)
		}
		if seen[id] {
			t.Fatalf("request id %q repeated", id)
		}
		seen[id] = true
	}
}
