package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Mode says when Record returns.
type Mode int

const (
	// ModeSync makes every Record wait until its record is fsynced. It is
	// the default.
	ModeSync Mode = iota
	// ModeAsync makes Record return once the record is queued, except for
	// events with ReturnsSecret, which always wait. A record that finds
	// the queue full is dropped, counted and logged.
	ModeAsync
)

// File is what a segment is written through; tests inject faulty ones
// with [Options.OpenFile]. The writer fills a segment with zeros ahead of
// its records and writes each batch in place with WriteAt, then calls Sync
// once (see FORMAT.md, "Zero tail").
type File interface {
	// WriteAt writes p at offset off.
	WriteAt(p []byte, off int64) (int, error)
	// Sync makes everything written so far durable, including a change of
	// the file's size: fdatasync(2) is enough.
	Sync() error
	// Truncate cuts the file to size bytes; the writer uses it to drop the
	// unused zero tail of a segment it is done with.
	Truncate(size int64) error
	Close() error
}

// osFile is the default File: an *os.File whose Sync is fdatasync(2)
// where the system has it.
type osFile struct{ *os.File }

// Sync implements File.
func (f osFile) Sync() error { return datasync(f.File) }

// startWriteback starts writing [off, off+n) to disk without waiting.
func (f osFile) startWriteback(off, n int64) { startWriteback(f.File, off, n) }

// writebackStarter is implemented by Files that can start writeback early.
type writebackStarter interface{ startWriteback(off, n int64) }

// Options configure Open. Zero values mean the documented defaults.
type Options struct {
	// Keys sign checkpoints and hide sensitive values. Required.
	Keys *Keys
	// Mode is ModeSync (default) or ModeAsync.
	Mode Mode
	// QueueSize bounds the records waiting for the writer; default 4096.
	QueueSize int
	// MaxBatch bounds the records one fsync covers; default 1024.
	MaxBatch int
	// CheckpointEvery writes a checkpoint after this many records;
	// default 1000.
	CheckpointEvery int
	// CheckpointInterval writes a checkpoint this long after the last one
	// when records were written since; default 10 s.
	CheckpointInterval time.Duration
	// SegmentSize starts a new segment once the current one would grow
	// past it; default 64 MiB.
	SegmentSize int64
	// RetryInterval is how often a log that failed closed tries writing
	// again when no record arrives; default 1 s.
	RetryInterval time.Duration
	// Region and AccountID fill awsRegion and recipientAccountId when the
	// event does not say, and of control records.
	Region    string
	AccountID string
	// Now is the clock for record times; default time.Now.
	Now func() time.Time
	// Rand is the source of event ids; default crypto/rand.Reader. It is
	// used from many goroutines; a non-default Rand is serialised.
	Rand io.Reader
	// Logger receives the log's own messages (never record contents);
	// default discards them.
	Logger *slog.Logger
	// Exporters receive copies of durable records (stdout, webhook).
	Exporters []Exporter
	// ExportQueue bounds the lines queued per exporter; default 10000.
	ExportQueue int
	// ExportBatch bounds the lines per Export call; default 500.
	ExportBatch int
	// ExportBackoff and ExportMaxBackoff bound the wait between retries
	// of a failed export; defaults 100 ms and 30 s.
	ExportBackoff    time.Duration
	ExportMaxBackoff time.Duration
	// ExportDrainTimeout is how long Close lets exporters deliver what is
	// queued; default 5 s.
	ExportDrainTimeout time.Duration
	// OpenFile opens segment files; default os.OpenFile, with Sync done by
	// fdatasync(2) on Linux.
	OpenFile func(name string, flag int, perm fs.FileMode) (File, error)
}

func (o *Options) withDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.QueueSize, 4096)
	def(&o.MaxBatch, 1024)
	def(&o.CheckpointEvery, 1000)
	def(&o.ExportQueue, 10000)
	def(&o.ExportBatch, 500)
	defDur(&o.CheckpointInterval, 10*time.Second)
	defDur(&o.RetryInterval, time.Second)
	defDur(&o.ExportBackoff, 100*time.Millisecond)
	defDur(&o.ExportMaxBackoff, 30*time.Second)
	defDur(&o.ExportDrainTimeout, 5*time.Second)
	if o.SegmentSize <= 0 {
		o.SegmentSize = 64 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	} else {
		o.Rand = &lockedReader{r: o.Rand}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OpenFile == nil {
		o.OpenFile = func(name string, flag int, perm fs.FileMode) (File, error) {
			f, err := os.OpenFile(name, flag, perm)
			if err != nil {
				return nil, err
			}
			return osFile{f}, nil
		}
	}
}

// lockedReader serialises reads from an injected Rand.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

// Read implements io.Reader.
func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// Log is the durable audit log. It implements Sink; its methods are safe
// for concurrent use.
type Log struct {
	dir  string
	opts Options
	enc  encoder
	m    *metrics
	log  *slog.Logger

	q      chan *entry
	mu     sync.RWMutex // guards closed against sends on q
	closed bool
	done   chan struct{}
	// closeErr is set by the writer goroutine before done is closed.
	closeErr error

	// entries recycles the entries (record memory and reply channel) of
	// callers that wait for their record. What a pooled entry holds
	// between uses is a redacted record body and redacted payloads: the
	// same bytes the log writes to disk, never a secret value in the clear
	// (redaction happens while encoding, before anything reaches these
	// buffers), so reusing the memory exposes nothing the log file does
	// not already hold.
	entries sync.Pool

	health      atomic.Pointer[error]
	lastDropLog atomic.Int64

	w         *writer
	exporters []*exportRunner
	unlock    func()
}

// entry is one record on its way to the writer.
type entry struct {
	body []byte
	// buf is the memory body lives in for pooled entries.
	buf recordBuf
	// seq is assigned by the writer.
	seq uint64
	// done receives the outcome; nil when nobody waits (async).
	done chan result
}

type result struct {
	seq uint64
	err error
}

// Open opens (or creates, mode 0700) the log in dir and starts its writer.
// Every Open starts a new segment whose header links to the last complete
// record of the previous one, so a crash's torn tail is left behind
// untouched. Open fails when the directory or its lock file cannot be
// created, when another process holds the directory ([ErrLocked]), or when
// the newest segment cannot be continued ([ErrCorrupt]). When the first
// segment cannot be written (disk full, I/O error) Open still returns the
// Log, failing closed and retrying every [Options.RetryInterval].
func Open(dir string, opts Options) (*Log, error) {
	if opts.Keys == nil {
		return nil, ErrNoKeys
	}
	if err := opts.Keys.validate(); err != nil {
		return nil, err
	}
	if opts.Mode != ModeSync && opts.Mode != ModeAsync {
		return nil, fmt.Errorf("audit: unknown mode %d", opts.Mode)
	}
	opts.withDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating audit directory: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir:  dir,
		opts: opts,
		log:  opts.Logger,
		q:    make(chan *entry, opts.QueueSize),
		done: make(chan struct{}),
		enc: encoder{
			hmacKey:   opts.Keys.HMAC,
			region:    opts.Region,
			accountID: opts.AccountID,
			now:       opts.Now,
			uuid:      func() (string, error) { return newUUID(opts.Rand) },
		},
		unlock: unlock,
	}
	l.m = newMetrics(l)
	l.w = newWriter(l)
	if err := l.w.recover(); err != nil {
		unlock()
		return nil, err
	}
	for _, ex := range opts.Exporters {
		r := newExportRunner(ex, &l.opts, l.m, l.log)
		l.exporters = append(l.exporters, r)
		go r.run()
	}
	l.w.commit(nil, opNone)
	go l.run()
	return l, nil
}

// Record implements Sink: it appends ev and, in ModeSync or when
// ev.ReturnsSecret, returns only once the record is fsynced. An error
// wrapping ErrUnavailable means the record is not durable and the caller
// must fail closed; in ModeAsync Record also returns that error while the
// log is unhealthy, though the record stays queued.
func (l *Log) Record(ctx context.Context, ev *Event) error {
	_, err := l.Append(ctx, ev)
	return err
}

// Append is Record returning the record's sequence number, which is 0 when
// Append did not wait for the record to be written.
func (l *Log) Append(ctx context.Context, ev *Event) (uint64, error) {
	e := l.getEntry()
	body, err := l.enc.encodeInto(&e.buf, ev)
	if err != nil {
		l.putEntry(e)
		return 0, fmt.Errorf("recording %s event: %w", eventName(ev), err)
	}
	if l.opts.Mode != ModeSync && !ev.ReturnsSecret {
		// Nobody waits for an async record, so nobody could tell when
		// its memory is free again: it gets its own.
		l.putEntry(e)
		return 0, l.enqueueAsync(&entry{body: bytes.Clone(body)})
	}
	e.body = body
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		l.putEntry(e)
		return 0, ErrClosed
	}
	select {
	case l.q <- e:
	case <-ctx.Done():
		l.mu.RUnlock()
		l.putEntry(e)
		return 0, fmt.Errorf("recording %s event: %w", ev.Action, ctx.Err())
	}
	l.mu.RUnlock()
	select {
	case r := <-e.done:
		// The writer is done with e once it has answered (see
		// writer.ack and writer.fail), so e can be used again.
		l.putEntry(e)
		return r.seq, r.err
	case <-ctx.Done():
		// The writer still holds e and will answer into e.done: leave
		// it to the garbage collector.
		return 0, fmt.Errorf("waiting for the %s audit record: %w", ev.Action, ctx.Err())
	}
}

// enqueueAsync queues an entry nobody waits for.
func (l *Log) enqueueAsync(e *entry) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	select {
	case l.q <- e:
	default:
		l.dropped("queue_full", 1)
	}
	return l.Err()
}

// maxPooledBuf bounds the buffers kept for reuse, so one huge record does
// not pin a megabyte per pooled entry.
const maxPooledBuf = 64 << 10

func (l *Log) getEntry() *entry {
	if e, ok := l.entries.Get().(*entry); ok {
		return e
	}
	return &entry{done: make(chan result, 1)}
}

func (l *Log) putEntry(e *entry) {
	if cap(e.buf.body) > maxPooledBuf || cap(e.buf.payload) > maxPooledBuf {
		return
	}
	e.body, e.seq = nil, 0
	l.entries.Put(e)
}

func eventName(ev *Event) string {
	if ev == nil || ev.Action == "" {
		return "an"
	}
	return ev.Action
}

// dropped counts and (at most every 10 s) logs async records lost.
func (l *Log) dropped(reason string, n int) {
	l.m.dropped.WithLabelValues(reason).Add(float64(n))
	now := l.opts.Now().UnixNano()
	last := l.lastDropLog.Load()
	if now-last >= int64(10*time.Second) && l.lastDropLog.CompareAndSwap(last, now) {
		l.log.Error("audit: dropping async audit records", "reason", reason, "count", n)
	}
}

// Healthy reports whether the last write succeeded. While it is false,
// Record fails closed; /readyz should fail.
func (l *Log) Healthy() bool { return l.health.Load() == nil }

// Err returns why the log is unhealthy (wrapping ErrUnavailable), or nil.
func (l *Log) Err() error {
	if p := l.health.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *Log) setHealth(err error) {
	old := l.health.Load()
	switch {
	case err == nil && old != nil:
		l.health.Store(nil)
		l.log.Info("audit: log writable again")
	case err != nil:
		if old == nil {
			l.log.Error("audit: cannot write the audit log; failing closed", "err", err)
		}
		l.health.Store(&err)
	}
}

// Collectors returns the log's Prometheus collectors for the caller to
// register: queue depth, health, fsync latency, batch size, records
// written, dropped and failed, and sink errors and drops by sink.
func (l *Log) Collectors() []prometheus.Collector { return l.m.collectors() }

// Dir returns the log directory.
func (l *Log) Dir() string { return l.dir }

// Close stops accepting records, writes what is queued and a final
// checkpoint, fsyncs, and gives exporters up to
// [Options.ExportDrainTimeout] to deliver. It returns an error wrapping
// ErrUnavailable when the final records could not be written. Close is
// idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return l.closeErr
	}
	l.closed = true
	close(l.q)
	l.mu.Unlock()
	<-l.done
	return l.closeErr
}

// run is the writer goroutine: it batches whatever is queued into one
// write and one fsync (group commit), and writes timed checkpoints and
// retries.
func (l *Log) run() {
	defer close(l.done)
	ckpt := time.NewTicker(l.opts.CheckpointInterval)
	defer ckpt.Stop()
	retry := time.NewTicker(l.opts.RetryInterval)
	defer retry.Stop()
	batch := make([]*entry, 0, l.opts.MaxBatch)
	for {
		select {
		case e, ok := <-l.q:
			if !ok {
				l.finish()
				return
			}
			batch = append(batch[:0], e)
			open := true
		fill:
			for len(batch) < l.opts.MaxBatch {
				select {
				case e, ok := <-l.q:
					if !ok {
						open = false
						break fill
					}
					batch = append(batch, e)
				default:
					break fill
				}
			}
			l.w.commit(batch, opNone)
			clear(batch)
			if !open {
				l.finish()
				return
			}
		case <-ckpt.C:
			if l.Healthy() && l.w.durable.sinceCkpt > 0 {
				l.w.commit(nil, opCheckpoint)
			}
		case <-retry.C:
			if !l.Healthy() {
				l.w.commit(nil, opNone)
			}
		}
	}
}

// finish writes the final checkpoint and releases everything.
func (l *Log) finish() {
	l.w.commit(nil, opFinal)
	l.closeErr = l.Err()
	if err := l.w.closeFile(); err != nil && l.closeErr == nil {
		l.closeErr = err
	}
	for _, r := range l.exporters {
		r.close(l.opts.ExportDrainTimeout)
	}
	l.unlock()
	if l.closeErr != nil && !errors.Is(l.closeErr, ErrUnavailable) {
		l.closeErr = fmt.Errorf("%w: %w", ErrUnavailable, l.closeErr)
	}
}
