package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain lets the test binary act as the child server, as the bench
// binary does: startChild re-executes os.Executable() with -serve.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve" {
		os.Exit(mainWith(os.Args[1:], testScenarios(), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// testScenarios adds to the real scenarios two that misbehave.
func testScenarios() []scenario {
	bare := bareScenario()
	flaky := scenario{
		name:  "flaky",
		about: "answers 503 to every third request after the first",
		serve: func(ctx context.Context, ln net.Listener, ready func(map[string]string)) error {
			var n atomic.Int64
			h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if i := n.Add(1); i > 1 && i%3 == 0 {
					http.Error(w, "try later", http.StatusServiceUnavailable)
					return
				}
				_, _ = w.Write([]byte("ok"))
			})
			return serveHTTP(ctx, ln, h, ready)
		},
		// bare's request, without bare's check of the body.
		prepare: func(addr string, info map[string]string) (*request, error) {
			req, err := bare.prepare(addr, info)
			if err != nil {
				return nil, err
			}
			req.check = nil
			return req, nil
		},
	}
	broken := scenario{
		name:  "broken",
		about: "fails before it is ready",
		serve: func(context.Context, net.Listener, func(map[string]string)) error {
			return errors.New("cannot open the pretend database")
		},
		prepare: bare.prepare,
	}
	return append(scenarios(), flaky, broken)
}

// runJSON runs the command with args plus -json and decodes its report.
func runJSON(t *testing.T, args ...string) (int, *report, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := mainWith(append(args, "-json"), testScenarios(), &stdout, &stderr)
	var rep report
	if code != 2 {
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("decoding report: %v\n%s\n%s", err, stdout.String(), stderr.String())
		}
	}
	return code, &rep, stderr.String()
}

var quick = []string{"-duration", "300ms", "-warmup", "100ms", "-conns", "4"}

func TestRunBare(t *testing.T) {
	code, rep, stderr := runJSON(t, append([]string{"-scenarios", "bare"}, quick...)...)
	if code != 0 || !rep.OK {
		t.Fatalf("exit %d, ok %v\n%s", code, rep.OK, stderr)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results, want 1", len(rep.Results))
	}
	r := rep.Results[0]
	switch {
	case r.Scenario != "bare":
		t.Errorf("scenario %q", r.Scenario)
	case r.Requests <= 0 || r.RequestsPerSecond <= 0:
		t.Errorf("no requests measured: %+v", r)
	case r.Errors != 0 || r.TransportErrors != 0 || len(r.NonSuccess) != 0:
		t.Errorf("errors in a clean run: %+v", r)
	case !(0 < r.P50NS && r.P50NS <= r.P99NS && r.P99NS <= r.MaxNS):
		t.Errorf("latencies out of order: p50 %d p99 %d max %d", r.P50NS, r.P99NS, r.MaxNS)
	case r.PeakRSSBytes < 1<<20:
		t.Errorf("peak RSS %d bytes: not a real process's", r.PeakRSSBytes)
	case r.RatioToBare == nil || *r.RatioToBare != 1:
		t.Errorf("bare's ratio to itself = %v", r.RatioToBare)
	}
	if !strings.Contains(stderr, "bench: bare:") {
		t.Errorf("no progress line on stderr: %q", stderr)
	}
}

func TestRunFailsOnErrors(t *testing.T) {
	code, rep, _ := runJSON(t, append([]string{"-scenarios", "bare,flaky,broken"}, quick...)...)
	if code != 1 || rep.OK {
		t.Fatalf("exit %d, ok %v; want a failed run", code, rep.OK)
	}
	byName := map[string]*result{}
	for _, r := range rep.Results {
		byName[r.Scenario] = r
	}
	if r := byName["bare"]; r == nil || r.failed() {
		t.Errorf("bare should be clean: %+v", r)
	}
	flaky := byName["flaky"]
	if flaky == nil || flaky.Failure != "" {
		t.Fatalf("flaky should have been measured: %+v", flaky)
	}
	if flaky.NonSuccess["503"] == 0 || flaky.Errors < flaky.NonSuccess["503"] {
		t.Errorf("503s not counted as errors: %+v", flaky)
	}
	if flaky.RatioToBare == nil || *flaky.RatioToBare <= 0 {
		t.Errorf("flaky has no ratio to bare: %v", flaky.RatioToBare)
	}
	broken := byName["broken"]
	if broken == nil || !strings.Contains(broken.Failure, "cannot open the pretend database") {
		t.Errorf("broken's failure should quote the child log: %+v", broken)
	}

	// The table says the same.
	var stdout, stderr bytes.Buffer
	if code := mainWith(append([]string{"-scenarios", "flaky"}, quick...), testScenarios(), &stdout, &stderr); code != 1 {
		t.Fatalf("table run exit %d, want 1", code)
	}
	if !strings.Contains(stdout.String(), "flaky errors: non-2xx [503 x") {
		t.Errorf("table does not detail the errors:\n%s", stdout.String())
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"unknown scenario", []string{"-scenarios", "nope"}, 2},
		{"empty scenario list", []string{"-scenarios", ","}, 2},
		{"zero conns", []string{"-conns", "0"}, 2},
		{"too many conns", []string{"-conns", "100000"}, 2},
		{"tiny duration", []string{"-duration", "1ms"}, 2},
		{"negative warmup", []string{"-warmup", "-1s"}, 2},
		{"stray argument", []string{"extra"}, 2},
		{"unknown flag", []string{"-nope"}, 2},
		{"child without lifetime", []string{"-serve", "bare"}, 2},
		{"child of unknown scenario", []string{"-serve", "nope", "-serve-lifetime", "1s"}, 2},
		{"list", []string{"-list"}, 0},
		{"help", []string{"-help"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := mainWith(tt.args, testScenarios(), &stdout, &stderr); got != tt.want {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", got, tt.want, stdout.String(), stderr.String())
			}
		})
	}
}

func TestLoadReconnectsWhenServerCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() {
		h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
			_, _ = w.Write([]byte("bye"))
		})
		served <- serveHTTP(ctx, ln, h, func(map[string]string) {})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serving: %v", err)
		}
	})

	req, err := bareScenario().prepare(ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	stats := runLoad(t.Context(), loadSpec{addr: ln.Addr().String(), raw: req.raw, conns: 2, warmup: 50 * time.Millisecond, measure: 200 * time.Millisecond})
	if stats.errors() != 0 {
		t.Fatalf("%d errors (first: %s)", stats.errors(), stats.firstError)
	}
	if stats.hist.n == 0 || stats.reconnects < stats.hist.n {
		t.Fatalf("%d requests, %d reconnects: want one reconnect per request", stats.hist.n, stats.reconnects)
	}
}

func TestLoadCountsTransportErrors(t *testing.T) {
	// A port nobody listens on: every dial is refused, and the generator
	// must give up by itself and report it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	stats := runLoad(t.Context(), loadSpec{addr: addr, raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), conns: 2, measure: 100 * time.Millisecond})
	if stats.transportErrors == 0 || !strings.Contains(stats.firstError, "connecting to") {
		t.Fatalf("transport errors %d, first %q", stats.transportErrors, stats.firstError)
	}
	if stats.hist.n != 0 {
		t.Fatalf("%d requests measured against a closed port", stats.hist.n)
	}
}

func TestHistogramBuckets(t *testing.T) {
	values := []uint64{0, 1, 255, 256, 257, 383, 384, 511, 512, 1000, 123456, 1 << 40, 1<<63 - 1}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		values = append(values, rng.Uint64N(1<<63))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, histBuckets)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("%d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if lo > 0 && float64(hi-lo)/float64(lo) > 1.0/128 {
			t.Fatalf("bucket %d = [%d, %d] wider than 1/128", i, lo, hi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d's bounds [%d, %d] land in %d, %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h histogram
	var exact []time.Duration
	for range 50000 {
		// A long-tailed mix around a millisecond, like real latencies.
		d := time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
		exact = append(exact, d)
		h.record(d)
	}
	slices.Sort(exact)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		want := exact[int(q*float64(len(exact))+0.999999)-1]
		got := h.quantile(q)
		if diff := float64(got-want) / float64(want); diff > 0.01 || diff < -0.01 {
			t.Errorf("quantile(%v) = %v, exact %v", q, got, want)
		}
	}
	if h.max != exact[len(exact)-1] || h.quantile(1) != h.max {
		t.Errorf("max %v, quantile(1) %v, exact max %v", h.max, h.quantile(1), exact[len(exact)-1])
	}
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Errorf("empty histogram quantile = %v", empty.quantile(0.5))
	}
}

func TestParseVmHWM(t *testing.T) {
	tests := []struct {
		name   string
		status string
		want   int64
	}{
		{"typical", "Name:\tbench\nVmPeak:\t  800000 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 1 kB\n", 12345 << 10},
		{"missing", "Name:\tbench\nVmRSS:\t 1 kB\n", 0},
		{"no unit", "VmHWM:\t12345\n", 0},
		{"wrong unit", "VmHWM:\t12345 MB\n", 0},
		{"not a number", "VmHWM:\tlots kB\n", 0},
		{"zero", "VmHWM:\t0 kB\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmHWM([]byte(tt.status))
			if tt.want == 0 {
				if !errors.Is(err, errNoVmHWM) {
					t.Fatalf("parseVmHWM = %d, %v; want errNoVmHWM", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseVmHWM = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
	if rss, err := peakRSS(os.Getpid()); err != nil || rss < 1<<20 {
		t.Fatalf("peakRSS(self) = %d, %v", rss, err)
	}
}

func TestBareBody(t *testing.T) {
	body := bareBody()
	if len(body) != bareBodySize {
		t.Fatalf("bare body is %d bytes, want %d", len(body), bareBodySize)
	}
	var v struct{ ARN, Name, VersionId, SecretString string }
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("bare body is not JSON: %v", err)
	}
	if v.Name != "bench" || v.SecretString == "" {
		t.Fatalf("bare body %+v", v)
	}
}

func TestEncodeRequest(t *testing.T) {
	signed, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", strings.NewReader(`{"SecretId":"db"}`))
	if err != nil {
		t.Fatal(err)
	}
	signed.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/...")
	raw, err := encodeRequest(signed)
	if err != nil {
		t.Fatalf("encodeRequest: %v", err)
	}
	for _, want := range []string{"POST / HTTP/1.1\r\n", "Host: 127.0.0.1:1\r\n", "Content-Length: 17\r\n", "Authorization: AWS4-HMAC-SHA256", "\r\n\r\n{\"SecretId\":\"db\"}"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("encoded request lacks %q:\n%s", want, raw)
		}
	}
	if bytes.Contains(raw, []byte("Connection: close")) {
		t.Errorf("encoded request closes the connection:\n%s", raw)
	}

	closing, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
	closing.Close = true
	if _, err := encodeRequest(closing); err == nil {
		t.Error("accepted a request that closes the connection")
	}
	unknown, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", nil)
	unknown.Body = io.NopCloser(strings.NewReader("streamed"))
	unknown.ContentLength = -1
	if _, err := encodeRequest(unknown); err == nil {
		t.Error("accepted a body of unknown length")
	}
}
