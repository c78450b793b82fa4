package main

import (
	"bufio"
	"context"
	"fmt"
	"math/bits"
	"net"
	"sync"
	"time"
)

// Bounds on the load generator. Every loop stops at the end of the run;
// these caps make sure it stops even if the clock misbehaves or a server
// keeps closing connections.
const (
	dialTimeout        = 5 * time.Second
	responseGrace      = 10 * time.Second // a response may arrive this late after the end
	maxRequestsPerConn = 1 << 30
	maxDialsPerConn    = 1000
	readBufferSize     = 16 << 10
)

// loadSpec describes one closed-loop load run.
type loadSpec struct {
	// addr is the 127.0.0.1:PORT to connect to.
	addr string
	// raw is the request every connection replays.
	raw []byte
	// conns is the number of connections, each with one request in flight.
	conns int
	// warmup is how long the load runs before measuring starts.
	warmup time.Duration
	// measure is how long the measured window lasts.
	measure time.Duration
}

// loadStats is what one load run observed.
type loadStats struct {
	// hist holds the latencies of the requests that started and completed
	// inside the measured window.
	hist histogram
	// window is the length of the measured window.
	window time.Duration
	// warmupRequests counts requests started before the window.
	warmupRequests int64
	// non2xx counts responses by status, over the whole run including
	// warmup.
	non2xx map[int]int64
	// transportErrors counts failed dials, writes and reads and malformed
	// responses, over the whole run.
	transportErrors int64
	// firstError describes the first transport error, if any.
	firstError string
	// reconnects counts connections the server closed and that were
	// opened again.
	reconnects int64
}

// errors returns the number of failed requests of every kind.
func (s *loadStats) errors() int64 {
	n := s.transportErrors
	for _, c := range s.non2xx {
		n += c
	}
	return n
}

// phases are the instants that divide a run, fixed before any request is
// sent.
type phases struct {
	measureStart time.Time
	end          time.Time
}

// runLoad drives spec.addr with spec.conns closed-loop connections, warms up,
// measures, and returns what it saw. It returns once every connection has
// finished, at the latest responseGrace (plus a dial timeout) after the end
// of the window, or soon after ctx is cancelled.
func runLoad(ctx context.Context, spec loadSpec) *loadStats {
	workers := make([]*worker, spec.conns)
	var dialed, done sync.WaitGroup
	start := make(chan struct{})
	var ph phases
	for i := range workers {
		w := &worker{spec: &spec, non2xx: map[int]int64{}}
		workers[i] = w
		dialed.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			// Connect before the clock starts, so the warmup is spent on
			// requests rather than on the dial storm.
			if err := w.dial(time.Now().Add(dialTimeout + spec.warmup + spec.measure + responseGrace)); err != nil {
				w.fail(err)
			}
			dialed.Done()
			<-start
			w.run(ctx, ph)
		}()
	}
	dialed.Wait()
	now := time.Now()
	ph = phases{measureStart: now.Add(spec.warmup), end: now.Add(spec.warmup + spec.measure)}
	close(start)
	stop := context.AfterFunc(ctx, func() {
		for _, w := range workers {
			w.interrupt()
		}
	})
	done.Wait()
	stop()

	stats := &loadStats{window: spec.measure, non2xx: map[int]int64{}}
	for _, w := range workers {
		stats.hist.merge(&w.hist)
		stats.warmupRequests += w.warm
		stats.transportErrors += w.transport
		stats.reconnects += w.reconnects
		for code, n := range w.non2xx {
			stats.non2xx[code] += n
		}
		if stats.firstError == "" && w.firstErr != nil {
			stats.firstError = w.firstErr.Error()
		}
	}
	return stats
}

// worker is one connection of the load generator and what it counted.
type worker struct {
	spec *loadSpec

	mu   sync.Mutex // guards conn against interrupt
	conn net.Conn
	br   *bufio.Reader

	dials      int
	hist       histogram
	warm       int64
	non2xx     map[int]int64
	transport  int64
	reconnects int64
	firstErr   error
}

// run is the closed loop: send, read the whole response, record, repeat,
// until the end of the run.
func (w *worker) run(ctx context.Context, ph phases) {
	defer w.closeConn()
	deadline := ph.end.Add(responseGrace)
	for range maxRequestsPerConn {
		if ctx.Err() != nil {
			return
		}
		if w.conn == nil {
			if w.dials >= maxDialsPerConn {
				return
			}
			if !time.Now().Before(ph.end) {
				return
			}
			if err := w.dial(deadline); err != nil {
				w.fail(err)
				continue
			}
			w.reconnects++
		}
		t0 := time.Now()
		if !t0.Before(ph.end) {
			return
		}
		if _, err := w.conn.Write(w.spec.raw); err != nil {
			w.fail(fmt.Errorf("writing request: %w", err))
			continue
		}
		resp, err := readResponse(w.br, nil)
		t1 := time.Now()
		if err != nil {
			w.fail(fmt.Errorf("reading response: %w", err))
			continue
		}
		if resp.status < 200 || resp.status > 299 {
			w.non2xx[resp.status]++
		}
		switch {
		case t0.Before(ph.measureStart):
			w.warm++
		case !t1.After(ph.end):
			w.hist.record(t1.Sub(t0))
		}
		if resp.close {
			w.closeConn()
		}
	}
}

// dial opens the worker's connection, with reads and writes bounded by
// deadline.
func (w *worker) dial(deadline time.Time) error {
	w.dials++
	conn, err := net.DialTimeout("tcp", w.spec.addr, dialTimeout)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", w.spec.addr, err)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		_ = conn.Close()
		return fmt.Errorf("setting deadline: %w", err)
	}
	w.mu.Lock()
	w.conn = conn
	w.mu.Unlock()
	if w.br == nil {
		w.br = bufio.NewReaderSize(conn, readBufferSize)
	} else {
		w.br.Reset(conn)
	}
	return nil
}

// fail records a transport error and drops the connection, which may be in
// the middle of a response.
func (w *worker) fail(err error) {
	w.transport++
	if w.firstErr == nil {
		w.firstErr = err
	}
	w.closeConn()
}

// closeConn closes the worker's connection, if any.
func (w *worker) closeConn() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
}

// interrupt unblocks a worker waiting on its connection, for cancellation.
func (w *worker) interrupt() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		_ = w.conn.SetDeadline(time.Now())
	}
}

// histogram records durations in log-linear buckets, like an HDR
// histogram: exact below 256ns, and within 1/128 (0.8%) above, in constant
// memory however long the run.
type histogram struct {
	counts [histBuckets]int64
	n      int64
	max    time.Duration
}

// subBits is log2 of the number of buckets per power of two.
const (
	subBits     = 7
	histBuckets = (64 - subBits) << subBits
)

// bucketOf returns the bucket of v (nanoseconds, at least 0).
func bucketOf(v uint64) int {
	if v < 2<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1)
	return shift<<subBits + int(v>>shift)
}

// bucketRange returns the smallest and largest value that land in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < 2<<subBits {
		return uint64(i), uint64(i)
	}
	shift := i>>subBits - 1
	mantissa := uint64(i - shift<<subBits)
	lo = mantissa << shift
	return lo, lo + 1<<shift - 1
}

// record adds one duration; negative durations count as zero.
func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// merge adds every duration recorded in o.
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the nearest-rank q-quantile (0 < q <= 1): the middle of
// the bucket holding the ceil(q*n)-th smallest duration, never more than the
// maximum. It returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			return min(time.Duration(lo+(hi-lo)/2), h.max)
		}
	}
	return h.max
}
