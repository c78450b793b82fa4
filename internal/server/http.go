package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sigil.dev/sigil/internal/awsproto"
)

// Handler returns the server's HTTP handler: every route with its
// middleware. Start serves it; tests and benchmarks may call it directly.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/sys/seal-status", s.handleSealStatus)
	mux.HandleFunc("POST /v1/sys/init", s.handleInit)
	mux.HandleFunc("POST /v1/sys/unseal", s.handleUnseal)
	mux.HandleFunc("POST /v1/sys/rotate", s.handleRotate)
	mux.HandleFunc("POST /v1/audit", s.handleAuditQuery)
	mux.HandleFunc("POST /v1/sessions/revoke", s.handleRevokeSessions)
	mux.HandleFunc("POST /v1/images/register", s.handleRegisterImage)
	mux.HandleFunc("POST /v1/images/deregister", s.handleDeregisterImage)
	mux.HandleFunc("POST /v1/images/list", s.handleListImages)
	mux.HandleFunc("POST /v1/images/revoke", s.handleRevokeImage)
	mux.HandleFunc("POST /v1/databases/put", s.handlePutDatabase)
	mux.HandleFunc("POST /v1/databases/get", s.handleGetDatabase)
	mux.HandleFunc("POST /v1/databases/list", s.handleListDatabases)
	mux.HandleFunc("POST /v1/databases/delete", s.handleDeleteDatabase)
	mux.HandleFunc("POST /v1/databases/rotate-root", s.handleRotateRoot)
	mux.HandleFunc("POST /v1/dynamic-secrets/put", s.handlePutDynamicSecret)
	mux.HandleFunc("POST /v1/dynamic-secrets/get", s.handleGetDynamicSecret)
	mux.HandleFunc("POST /v1/leases/list", s.handleListLeases)
	mux.HandleFunc("POST /v1/leases/get", s.handleGetLease)
	mux.HandleFunc("POST /v1/leases/renew", s.handleRenewLease)
	mux.HandleFunc("POST /v1/leases/revoke", s.handleRevokeLease)
	mux.HandleFunc("POST /v1/leases/revoke-prefix", s.handleRevokeLeasePrefix)
	mux.HandleFunc("POST /v1/rotators/put", s.handlePutRotator)
	mux.HandleFunc("POST /v1/rotators/get", s.handleGetRotator)
	mux.HandleFunc("POST /v1/rotators/list", s.handleListRotators)
	mux.HandleFunc("POST /v1/rotators/delete", s.handleDeleteRotator)
	mux.HandleFunc("POST /{$}", s.handleAWS)
	mux.HandleFunc("GET /{$}", s.handleQuery)
	return s.middleware(mux)
}

// requestIDs generates request ids shaped like AWS's (UUIDs): a random
// per-process prefix and a counter, so ids are unique without a syscall per
// request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [10]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return &requestIDs{prefix: h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-"}
}

func (g *requestIDs) next() string {
	n := g.n.Add(1)
	var buf [64]byte
	out := append(buf[:0], g.prefix...)
	var digits [16]byte
	d := strconv.AppendUint(digits[:0], n, 16)
	for i := len(d); i < 12; i++ {
		out = append(out, '0')
	}
	return string(append(out, d...))
}

// reqInfo is per-request state the middleware shares with handlers.
type reqInfo struct {
	start     time.Time // when the middleware received the request
	id        string
	operation string // for metrics and the access log; "" until known
	outcome   string // "ok" or an AWS error code
	// sessionToken is the verified request's X-Amz-Security-Token, for STS
	// calls made with session credentials.
	sessionToken string
}

type ctxKey struct{}

func info(r *http.Request) *reqInfo {
	ri, _ := r.Context().Value(ctxKey{}).(*reqInfo)
	if ri == nil {
		return &reqInfo{}
	}
	return ri
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// requestState is everything the middleware keeps for one request, in one
// allocation.
type requestState struct {
	sw statusWriter
	ri reqInfo
	// idHeader is the X-Amzn-Requestid header value.
	idHeader [1]string
}

// requestMetrics caches the Prometheus children of each operation and
// outcome, so a request costs one lock-free map lookup instead of two
// label-hashing WithLabelValues calls. The map is copied on write (a pair is
// added once) and holds at most maxRequestMetrics pairs; pairs beyond that
// (there should be none: both labels come from fixed sets) are looked up in
// the vectors every time.
type requestMetrics struct {
	m        *metrics
	mu       sync.Mutex // serializes writers
	children atomic.Pointer[map[[2]string]requestMetric]
}

// requestMetric is one operation and outcome's counter and histogram.
type requestMetric struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

const maxRequestMetrics = 1024

func (rm *requestMetrics) get(op, outcome string) requestMetric {
	key := [2]string{op, outcome}
	if m := rm.children.Load(); m != nil {
		if c, ok := (*m)[key]; ok {
			return c
		}
	}
	c := requestMetric{
		requests: rm.m.requests.WithLabelValues(op, outcome),
		latency:  rm.m.latency.WithLabelValues(op, outcome),
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	var old map[[2]string]requestMetric
	if p := rm.children.Load(); p != nil {
		old = *p
	}
	if len(old) >= maxRequestMetrics {
		return c
	}
	next := make(map[[2]string]requestMetric, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[key] = c
	rm.children.Store(&next)
	return c
}

// middleware adds request ids, body limits, panic recovery, metrics and the
// access log. The access log never contains request or response bodies.
func (s *Server) middleware(next http.Handler) http.Handler {
	ids := newRequestIDs()
	rm := &requestMetrics{m: s.metrics}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &requestState{sw: statusWriter{ResponseWriter: w}}
		ri, sw := &st.ri, &st.sw
		ri.start = start
		ri.id = ids.next()
		st.idHeader[0] = ri.id
		w.Header()["X-Amzn-Requestid"] = st.idHeader[:]
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, ri))
		r.Body = http.MaxBytesReader(sw, r.Body, s.cfg.MaxRequestBytes)
		s.metrics.inFlight.Inc()
		defer func() {
			s.metrics.inFlight.Dec()
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.metrics.panics.Inc()
				s.log.Error("handler panic", "request_id", ri.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				ri.outcome = "InternalFailure"
				if sw.status == 0 {
					awsproto.WriteJSONError(sw, &awsproto.Error{Code: "InternalFailure", Status: http.StatusInternalServerError,
						Message: "the server failed while handling this request; see the server log for this request id"})
				}
			}
			op, outcome := ri.operation, ri.outcome
			if op == "" {
				op = routeLabel(r)
			}
			if outcome == "" {
				outcome = outcomeFromStatus(sw.status)
			}
			d := time.Since(start)
			m := rm.get(op, outcome)
			m.requests.Inc()
			m.latency.Observe(d.Seconds())
			if s.log.Enabled(r.Context(), slog.LevelInfo) {
				s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
					slog.String("request_id", ri.id),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.String("operation", op),
					slog.Int("status", sw.status),
					slog.String("outcome", outcome),
					slog.Int("bytes", sw.bytes),
					slog.Duration("duration", d),
					slog.String("remote", remoteIP(r)),
					slog.String("user_agent", r.UserAgent()))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// routeLabel is the metrics label for requests no handler named: a fixed set,
// never the raw path, so label cardinality stays bounded.
func routeLabel(r *http.Request) string {
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		return r.URL.Path[1:]
	}
	return "other"
}

func outcomeFromStatus(status int) string {
	switch {
	case status == 0 || status < 400:
		return "ok"
	case status < 500:
		return "client_error"
	default:
		return "server_error"
	}
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// readBody reads the whole (size-limited) request body. A body over the
// limit is an AWS-shaped 413.
func readBody(r *http.Request) ([]byte, *awsproto.Error) {
	b, err := readAll(r.Body, r.ContentLength)
	if err == nil {
		return b, nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, awsproto.Errorf("RequestEntityTooLarge", http.StatusRequestEntityTooLarge,
			"request body exceeds the server limit of %d bytes", mbe.Limit)
	}
	return nil, awsproto.Errorf("IncompleteBody", http.StatusBadRequest, "reading the request body failed before it was complete")
}

// maxBodyHint bounds the buffer readAll allocates up front on the word of
// a Content-Length header, so that a client announcing a large body and
// sending nothing holds little memory; larger bodies grow as they arrive.
const maxBodyHint = 4 << 10

// readAll is io.ReadAll starting from a buffer of the declared length (if
// at most maxBodyHint) plus one byte, so that reading the end needs no
// growth: a small body costs one allocation of its own size instead of
// io.ReadAll's 512 bytes. The length is only a hint; the body reader (which
// enforces both Content-Length and the size limit) decides what is read.
func readAll(r io.Reader, length int64) ([]byte, error) {
	if length < 0 || length > maxBodyHint {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, length+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}
