package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/store"
)

// metrics holds the server's Prometheus collectors in a registry of its own,
// so several servers in one test process never share state.
type metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec   // operation, outcome
	latency      *prometheus.HistogramVec // operation, outcome
	storeLatency *prometheus.HistogramVec // op
	sealed       prometheus.Gauge
	inFlight     prometheus.Gauge
	panics       prometheus.Counter
	decisions    *prometheus.CounterVec // source, decision
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigil_http_requests_total",
			Help: "Requests served, by operation and outcome (ok, or the AWS error code).",
		}, []string{"operation", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sigil_http_request_duration_seconds",
			Help:    "Time from request start to response written, by operation and outcome.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"operation", "outcome"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sigil_store_operation_duration_seconds",
			Help:    "Latency of storage backend operations (below the barrier), by operation.",
			Buckets: []float64{.000005, .00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .1},
		}, []string{"op"}),
		sealed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sigil_sealed",
			Help: "1 while the barrier is sealed (no secret can be read), 0 when unsealed.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sigil_http_requests_in_flight",
			Help: "Requests currently being served.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sigil_http_panics_total",
			Help: "Handler panics recovered (each answered with a 500).",
		}),
	}
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sigil_authz_decisions_total",
		Help: "Authorization decisions recorded for audit, by event source and decision (allow or deny).",
	}, []string{"source", "decision"})
	m.reg.MustRegister(m.requests, m.latency, m.storeLatency, m.sealed, m.inFlight, m.panics, m.decisions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.sealed.Set(1)
	return m
}

// instrumentedStore measures the latency of every backend call.
type instrumentedStore struct {
	store.Store
	get, list, put, del, txn prometheus.Observer
}

func instrument(s store.Store, m *metrics) store.Store {
	return &instrumentedStore{
		Store: s,
		get:   m.storeLatency.WithLabelValues("get"),
		list:  m.storeLatency.WithLabelValues("list"),
		put:   m.storeLatency.WithLabelValues("put"),
		del:   m.storeLatency.WithLabelValues("delete"),
		txn:   m.storeLatency.WithLabelValues("txn"),
	}
}

func since(o prometheus.Observer, t time.Time) { o.Observe(time.Since(t).Seconds()) }

func (s *instrumentedStore) Get(ctx context.Context, key string) (store.Entry, error) {
	defer since(s.get, time.Now())
	return s.Store.Get(ctx, key)
}

func (s *instrumentedStore) List(ctx context.Context, prefix, after string, limit int) ([]store.Entry, string, error) {
	defer since(s.list, time.Now())
	return s.Store.List(ctx, prefix, after, limit)
}

func (s *instrumentedStore) Put(ctx context.Context, key string, value []byte) (int64, error) {
	defer since(s.put, time.Now())
	return s.Store.Put(ctx, key, value)
}

func (s *instrumentedStore) Delete(ctx context.Context, key string) error {
	defer since(s.del, time.Now())
	return s.Store.Delete(ctx, key)
}

func (s *instrumentedStore) Txn(ctx context.Context, cmps []store.Compare, ops []store.Op) (int64, error) {
	defer since(s.txn, time.Now())
	return s.Store.Txn(ctx, cmps, ops)
}

// countingLog counts every authorization decision it passes to the audit
// log, for the sigil_authz_decisions_total metric.
type countingLog struct {
	auditLog
	decisions *prometheus.CounterVec
}

func (c countingLog) Record(ctx context.Context, ev *audit.Event) error {
	d := "deny"
	if ev.Allowed {
		d = "allow"
	}
	c.decisions.WithLabelValues(ev.Source, d).Inc()
	return c.auditLog.Record(ctx, ev)
}
