package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Exporter is an extra destination for records: it receives copies of the
// lines the file log has already made durable, control records included.
// The file log stays the source of truth: an Exporter that fails or falls
// behind loses only its own copies, counted in
// sigil_audit_sink_dropped_total, and never delays Record.
//
// The log calls Export from one goroutine per exporter, with batches of
// complete lines (no newlines); it retries a failed batch with exponential
// backoff until it succeeds or the log closes. Export must return when ctx
// is done.
type Exporter interface {
	// Name labels the exporter's metrics and log lines.
	Name() string
	Export(ctx context.Context, lines [][]byte) error
}

// NewWriterExporter returns an Exporter that writes each record as one
// JSON line to w (os.Stdout for the stdout sink).
func NewWriterExporter(name string, w io.Writer) Exporter {
	return &writerExporter{name: name, w: w}
}

type writerExporter struct {
	name string
	w    io.Writer
	buf  []byte
}

// Name implements Exporter.
func (e *writerExporter) Name() string { return e.name }

// Export implements Exporter.
func (e *writerExporter) Export(_ context.Context, lines [][]byte) error {
	e.buf = e.buf[:0]
	for _, l := range lines {
		e.buf = append(e.buf, l...)
		e.buf = append(e.buf, '\n')
	}
	if _, err := e.w.Write(e.buf); err != nil {
		return fmt.Errorf("writing audit records: %w", err)
	}
	return nil
}

// WebhookOptions configure NewWebhook.
type WebhookOptions struct {
	// Name labels the exporter; "webhook" when empty.
	Name string
	// URL receives POST requests.
	URL string
	// Client sends them; nil means a client with a 10 s timeout.
	Client *http.Client
	// Header is added to every request (for example an Authorization
	// header the receiver expects). It is never logged.
	Header http.Header
}

// NewWebhook returns an Exporter that POSTs each batch to o.URL as a
// CloudTrail log document, {"Records":[...]} with Content-Type
// application/json, and treats any 2xx answer as delivered.
func NewWebhook(o WebhookOptions) (Exporter, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, errors.New("audit webhook URL does not parse: want an http or https URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("audit webhook URL %q: want an http or https URL", displayURL(u))
	}
	if o.Name == "" {
		o.Name = "webhook"
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	return &webhook{o: o, shown: displayURL(u)}, nil
}

// displayURL is u without user info, query or fragment, which may hold
// credentials, for messages.
func displayURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

type webhook struct {
	o     WebhookOptions
	shown string
}

// Name implements Exporter.
func (w *webhook) Name() string { return w.o.Name }

// Export implements Exporter.
func (w *webhook) Export(ctx context.Context, lines [][]byte) error {
	var body bytes.Buffer
	body.WriteString(`{"Records":[`)
	for i, l := range lines {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(l)
	}
	body.WriteString(`]}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.URL, &body)
	if err != nil {
		return fmt.Errorf("building webhook request to %s: %w", w.shown, err)
	}
	for k, vs := range w.o.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.o.Client.Do(req)
	if err != nil {
		// *url.Error repeats the full URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("posting audit records to %s: %w", w.shown, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("posting audit records to %s: answered %s", w.shown, resp.Status)
	}
	return nil
}

// exportRunner feeds one Exporter from a bounded queue.
type exportRunner struct {
	ex         Exporter
	q          chan []byte
	stop       chan struct{}
	done       chan struct{}
	ctx        context.Context
	cancel     context.CancelFunc
	batch      int
	backoff    time.Duration
	maxBackoff time.Duration
	m          *metrics
	log        *slog.Logger
}

func newExportRunner(ex Exporter, o *Options, m *metrics, log *slog.Logger) *exportRunner {
	ctx, cancel := context.WithCancel(context.Background())
	return &exportRunner{
		ex: ex, q: make(chan []byte, o.ExportQueue), stop: make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel, batch: o.ExportBatch, backoff: o.ExportBackoff, maxBackoff: o.ExportMaxBackoff,
		m: m, log: log,
	}
}

// offer queues a line without blocking; a full queue drops it.
func (r *exportRunner) offer(line []byte) {
	select {
	case r.q <- line:
	default:
		r.m.sinkDrops.WithLabelValues(r.ex.Name()).Inc()
	}
}

func (r *exportRunner) run() {
	defer close(r.done)
	buf := make([][]byte, 0, r.batch)
	for {
		select {
		case l := <-r.q:
			r.send(r.fill(append(buf[:0], l)))
		case <-r.stop:
			for len(r.q) > 0 && r.ctx.Err() == nil {
				r.send(r.fill(buf[:0]))
			}
			if n := len(r.q); n > 0 {
				r.m.sinkDrops.WithLabelValues(r.ex.Name()).Add(float64(n))
			}
			return
		}
	}
}

// fill adds queued lines to b without blocking, up to the batch size.
func (r *exportRunner) fill(b [][]byte) [][]byte {
	for len(b) < r.batch {
		select {
		case l := <-r.q:
			b = append(b, l)
		default:
			return b
		}
	}
	return b
}

// send delivers one batch, retrying with exponential backoff until it
// succeeds or the runner is cancelled.
func (r *exportRunner) send(b [][]byte) {
	if len(b) == 0 {
		return
	}
	delay := r.backoff
	for attempt := 1; ; attempt++ {
		err := r.ex.Export(r.ctx, b)
		if err == nil {
			if attempt > 1 {
				r.log.Info("audit: sink delivering again", "sink", r.ex.Name(), "attempts", attempt)
			}
			return
		}
		r.m.sinkErrors.WithLabelValues(r.ex.Name()).Inc()
		if attempt == 1 || attempt%10 == 0 {
			r.log.Warn("audit: sink delivery failed; retrying", "sink", r.ex.Name(), "attempt", attempt, "records", len(b), "err", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			r.m.sinkDrops.WithLabelValues(r.ex.Name()).Add(float64(len(b)))
			return
		}
		delay = min(delay*2, r.maxBackoff)
	}
}

// close stops the runner, giving it until the deadline of drain to
// deliver what is queued.
func (r *exportRunner) close(drain time.Duration) {
	close(r.stop)
	t := time.NewTimer(drain)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
	}
	r.cancel()
	<-r.done
}
