package audit

import "github.com/prometheus/client_golang/prometheus"

// metrics are a Log's Prometheus collectors. They are registered by the
// caller (Collectors), never globally.
type metrics struct {
	queueDepth prometheus.GaugeFunc
	healthy    prometheus.GaugeFunc
	fsync      prometheus.Histogram
	batch      prometheus.Histogram
	written    *prometheus.CounterVec // kind: event, checkpoint, header
	dropped    *prometheus.CounterVec // reason: queue_full, unavailable
	failed     prometheus.Counter
	sinkErrors *prometheus.CounterVec // sink
	sinkDrops  *prometheus.CounterVec // sink
}

func newMetrics(l *Log) *metrics {
	return &metrics{
		queueDepth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sigil_audit_queue_depth",
			Help: "Audit records waiting for the writer.",
		}, func() float64 { return float64(len(l.q)) }),
		healthy: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sigil_audit_healthy",
			Help: "1 while the audit log can be written, 0 while it fails closed.",
		}, func() float64 {
			if l.Healthy() {
				return 1
			}
			return 0
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sigil_audit_fsync_duration_seconds",
			Help:    "Time to write and fsync one batch of audit records, as the writer goroutine sees it (including any wait for a CPU after fsync returns).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sigil_audit_batch_records",
			Help:    "Records made durable by one fsync (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigil_audit_records_written_total",
			Help: "Audit records made durable, by kind (event, checkpoint, header).",
		}, []string{"kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigil_audit_records_dropped_total",
			Help: "Async-mode audit records lost, by reason (queue_full, unavailable).",
		}, []string{"reason"}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sigil_audit_records_failed_total",
			Help: "Audit records whose Record call returned an error because the log could not be written.",
		}),
		sinkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigil_audit_sink_errors_total",
			Help: "Failed deliveries of audit records to an extra sink, by sink.",
		}, []string{"sink"}),
		sinkDrops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigil_audit_sink_dropped_total",
			Help: "Audit records an extra sink never received (queue full or shutdown), by sink.",
		}, []string{"sink"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.queueDepth, m.healthy, m.fsync, m.batch, m.written, m.dropped, m.failed, m.sinkErrors, m.sinkDrops}
}
