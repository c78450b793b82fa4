package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// commit operations besides appending records.
type commitOp int

const (
	opNone       commitOp = iota
	opCheckpoint          // also write a checkpoint if records were written since the last
	opFinal               // also write the final checkpoint
)

// Start reasons written in segment headers.
const (
	reasonStart   = "start"   // first start, or after a clean Close
	reasonRecover = "recover" // after a crash: the previous run left no final checkpoint
	reasonRotate  = "rotate"  // the previous segment reached SegmentSize
	reasonRetry   = "retry"   // the previous segment failed to write and was abandoned
)

// chainState is where the chain stands after some line.
type chainState struct {
	seq       uint64   // sequence of the last line
	hash      [32]byte // SHA-256 of the last line
	sinceCkpt int      // lines since the last checkpoint
	segBytes  int64    // length of the current segment
	segLines  int      // lines in the current segment
}

// lineKind classifies lines for metrics.
type lineKind int

const (
	kindEvent lineKind = iota
	kindCheckpoint
	kindHeader
)

var kindNames = [...]string{"event", "checkpoint", "header"}

// writer owns the segment files. Only the Log's writer goroutine (and Open,
// before it starts) uses it.
type writer struct {
	l       *Log
	signing ed25519.PrivateKey
	keyID   string

	f          File
	segNum     int
	segName    string
	segDurable bool // the current segment's header is fsynced
	// segOff is how many bytes of the current segment are written and
	// durable: the offset the next batch is written at. segCap is the
	// file's size: [segOff, segCap) holds zeros written ahead of the data
	// (see extend).
	segOff   int64
	segCap   int64
	noExtend bool   // zero-filling failed for this segment: stop trying
	zeros    []byte // a zero chunk for extend, allocated on first use

	// The next segment to start, and what its header declares.
	nextNum    int
	nextReason string
	prevName   string
	prevBytes  int64
	// failedName is a segment created but never made durable: it holds
	// nothing acknowledged, so starting it again truncates it.
	failedName string

	durable chainState // as of the last successful fsync
	cur     chainState // including buffered lines

	buf      []byte
	lineEnds []int
	kinds    [3]int
}

func newWriter(l *Log) *writer {
	return &writer{
		l:       l,
		signing: l.opts.Keys.Signing,
		keyID:   KeyID(l.opts.Keys.Public()),
	}
}

// recover finds where the chain stands in an existing directory: after the
// last complete line of the newest segment that has one.
func (w *writer) recover() error {
	segs, odd, err := listSegments(w.l.dir)
	if err != nil {
		return err
	}
	if len(odd) > 0 {
		return fmt.Errorf("%w: unexpected file %s in %s", ErrCorrupt, odd[0], w.l.dir)
	}
	w.nextNum, w.nextReason = 1, reasonStart
	reuse := -1 // index of an empty newest segment to start again
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		line, end, err := lastLine(filepath.Join(w.l.dir, s.name))
		if err != nil {
			return err
		}
		if line == nil {
			if i != len(segs)-1 {
				return fmt.Errorf("%w: segment %s holds no complete record but is not the newest", ErrCorrupt, s.name)
			}
			reuse = i
			continue
		}
		seq, prev, ok := parseChain(line)
		if !ok {
			return fmt.Errorf("%w: the last record of %s does not parse: run sigil audit verify %s", ErrCorrupt, s.name, w.l.dir)
		}
		w.durable = chainState{seq: seq, hash: sha256.Sum256(line), sinceCkpt: 1}
		w.prevName, w.prevBytes = s.name, end
		w.nextNum = s.num + 1
		w.nextReason = reasonRecover
		if bytes.HasPrefix(line, []byte(controlPrefix+NameCheckpoint)) {
			if c, err := parseControl(line, seq, &prev); err == nil && c.AdditionalEventData.Final {
				w.nextReason = reasonStart
				w.durable.sinceCkpt = 0
			}
		}
		break
	}
	if reuse >= 0 {
		s := segs[reuse]
		if s.first != w.durable.seq+1 || (reuse > 0 && s.num != segs[reuse-1].num+1) || (reuse == 0 && s.num != 1) {
			return fmt.Errorf("%w: empty segment %s does not follow sequence %d", ErrCorrupt, s.name, w.durable.seq)
		}
		w.nextNum, w.failedName = s.num, s.name
	}
	w.cur = w.durable
	return nil
}

// lastLine returns the last complete line of a file (without its newline)
// and the offset just past that newline; nil when the file has none. The
// zero tail of a preallocated segment is not part of any line; bytes after
// it are ErrCorrupt.
func lastLine(path string) (line []byte, end int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("opening segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("opening segment: %w", err)
	}
	size, junk, err := dataEnd(f, fi.Size())
	if err != nil {
		return nil, 0, fmt.Errorf("reading segment %s: %w", path, err)
	}
	if junk >= 0 {
		return nil, 0, fmt.Errorf("%w: %s holds data at offset %d, after the zero-filled end of its records at offset %d", ErrCorrupt, path, junk, size)
	}
	const window = 2*MaxRecordBytes + 2
	off := max(size-window, 0)
	chunk := make([]byte, size-off)
	if _, err := f.ReadAt(chunk, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("reading segment %s: %w", path, err)
	}
	nl := bytes.LastIndexByte(chunk, '\n')
	if nl < 0 {
		if off > 0 {
			return nil, 0, fmt.Errorf("%w: %s ends with more than %d bytes without a newline", ErrCorrupt, path, window)
		}
		return nil, 0, nil
	}
	start := bytes.LastIndexByte(chunk[:nl], '\n') + 1
	if start == 0 && off > 0 {
		return nil, 0, fmt.Errorf("%w: the last record of %s is longer than %d bytes", ErrCorrupt, path, MaxRecordBytes)
	}
	return chunk[start:nl], off + int64(nl) + 1, nil
}

// commit appends batch (and whatever op asks for) to the log with one
// write and one fsync per segment touched, then tells every waiting
// caller the outcome.
func (w *writer) commit(batch []*entry, op commitOp) {
	done := 0 // batch[:done] is durable and acknowledged
	if w.f == nil {
		if err := w.startSegment(w.nextReason); err != nil {
			w.fail(batch, err)
			return
		}
	}
	segLimit := w.l.opts.SegmentSize
	for i, e := range batch {
		if w.cur.segLines > 1 && w.cur.segBytes+int64(len(e.body)+chainSuffixMax+1) > segLimit {
			w.appendCheckpoint(false)
			if err := w.flush(); err != nil {
				w.fail(batch[done:], err)
				return
			}
			w.ack(batch[done:i])
			done = i
			w.closeSegment()
			if err := w.startSegment(reasonRotate); err != nil {
				w.fail(batch[done:], err)
				return
			}
		}
		w.appendLine(e.body, kindEvent)
		e.seq = w.cur.seq
		if w.cur.sinceCkpt >= w.l.opts.CheckpointEvery {
			w.appendCheckpoint(false)
		}
	}
	switch {
	case op == opFinal:
		w.appendCheckpoint(true)
	case op == opCheckpoint && w.cur.sinceCkpt > 0:
		w.appendCheckpoint(false)
	}
	if err := w.flush(); err != nil {
		w.fail(batch[done:], err)
		return
	}
	w.ack(batch[done:])
	if op != opFinal {
		w.extend()
	}
}

// Zero-filling segments ahead of their data. A batch written into space
// that already holds (durable) zeros changes neither the file's size nor
// its block map, so its fdatasync writes the data blocks and flushes the
// device cache and nothing else: on ext4 that saves the inode and block
// bitmap writes an append needs, about a third of each fsync's time and
// most of its CPU on this kind of virtual disk. Each extension grows the
// segment geometrically, from minExtend to maxExtend bytes at a time, up to
// SegmentSize, so a short-lived segment stays small and a busy one pays a
// size-changing fsync only once per maxExtend bytes. The zeros become
// durable with the next batch's fsync (whose fdatasync includes the size
// change); until then they are not needed for anything: durability never
// depends on the preallocation, only the cost of an fsync does. Their
// writeback starts at once, so that it is done (and the zeros are on disk
// before the inode records the new size) by the time a batch lands on
// them; maxExtend stays small because that next fdatasync waits for
// whatever of the zeros is still being written, which on a busy disk adds
// that wait to one batch's latency.
const (
	minExtend = 64 << 10
	maxExtend = 1 << 20
)

// extend zero-fills the current segment ahead of its data when less than
// half an extension of zeros is left. It runs after a batch is
// acknowledged, off the requests' path, and its failure only costs speed.
func (w *writer) extend() {
	if w.f == nil || w.noExtend {
		return
	}
	size := max(w.segCap, w.segOff)
	step := min(max(size, minExtend), maxExtend)
	target := min(size+step, w.l.opts.SegmentSize)
	if size-w.segOff >= step/2 || target <= size {
		return
	}
	if len(w.zeros) < int(target-size) {
		w.zeros = make([]byte, min(2*(target-size), maxExtend))
	}
	n, err := w.f.WriteAt(w.zeros[:target-size], size)
	w.segCap = size + int64(n)
	if err != nil {
		w.noExtend = true
		w.l.log.Warn("audit: cannot zero-fill the segment ahead of its records; writing without preallocation", "segment", w.segName, "err", err)
		return
	}
	if ws, ok := w.f.(writebackStarter); ok {
		ws.startWriteback(size, target-size)
	}
}

// dropZeroTail cuts the unused zeros off a segment the writer is done
// with, so that closed segments hold exactly their records. Failing is
// harmless: readers treat a zero tail as the end of the segment.
func (w *writer) dropZeroTail() {
	if w.segCap <= w.segOff {
		return
	}
	if err := w.f.Truncate(w.segOff); err != nil {
		w.l.log.Warn("audit: cannot drop the zero tail of a segment", "segment", w.segName, "err", err)
		return
	}
	w.segCap = w.segOff
}

// ack tells waiting callers their records are durable.
func (w *writer) ack(batch []*entry) {
	for _, e := range batch {
		if e.done != nil {
			e.done <- result{seq: e.seq}
		}
	}
}

// fail abandons the current segment and tells waiting callers their
// records are not durable.
func (w *writer) fail(batch []*entry, cause error) {
	err := fmt.Errorf("%w: %w", ErrUnavailable, cause)
	w.abandon()
	w.l.setHealth(err)
	async := 0
	for _, e := range batch {
		if e.done != nil {
			e.done <- result{err: err}
			w.l.m.failed.Inc()
		} else {
			async++
		}
	}
	if async > 0 {
		w.l.dropped("unavailable", async)
	}
}

// startSegment creates the next segment file and buffers its header.
func (w *writer) startSegment(reason string) error {
	w.nextReason = reason
	name := segmentName(w.nextNum, w.cur.seq+1)
	flag := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if name == w.failedName {
		flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := w.l.opts.OpenFile(filepath.Join(w.l.dir, name), flag, 0o600)
	if err != nil {
		return fmt.Errorf("creating segment %s: %w", name, err)
	}
	w.f, w.segNum, w.segName, w.segDurable = f, w.nextNum, name, false
	w.segOff, w.segCap, w.noExtend = 0, 0, false
	w.failedName = name
	w.cur.segBytes, w.cur.segLines = 0, 0
	id, err := w.l.enc.uuid()
	if err != nil {
		return err
	}
	hdr := newControl(NameSegmentStart, w.now(), w.l.opts.Region, w.l.opts.AccountID, id, controlData{
		Segment:              w.segNum,
		StartReason:          reason,
		PreviousSegment:      w.prevName,
		PreviousSegmentBytes: w.prevBytes,
	})
	w.appendLine(hdr.body(), kindHeader)
	return nil
}

func (w *writer) now() string { return w.l.opts.Now().UTC().Format(TimeLayout) }

// appendLine buffers one line: body, chain fields, newline.
func (w *writer) appendLine(body []byte, kind lineKind) {
	seq := w.cur.seq + 1
	start := len(w.buf)
	w.buf = append(w.buf, body...)
	w.buf = appendChainSuffix(w.buf, seq, &w.cur.hash)
	w.cur.hash = sha256.Sum256(w.buf[start:])
	w.buf = append(w.buf, '\n')
	w.lineEnds = append(w.lineEnds, len(w.buf))
	w.cur.seq = seq
	w.cur.sinceCkpt++
	w.cur.segBytes += int64(len(w.buf) - start)
	w.cur.segLines++
	w.kinds[kind]++
}

// appendCheckpoint buffers a checkpoint signed over the chain so far.
func (w *writer) appendCheckpoint(final bool) {
	id, err := w.l.enc.uuid()
	if err != nil {
		// The event-id source failing is not a reason to leave the chain
		// unsigned; a checkpoint's id only has to be unique in this log.
		id = fmt.Sprintf("00000000-0000-4000-8000-%012x", (w.cur.seq+1)&0xffffffffffff)
	}
	c := newControl(NameCheckpoint, w.now(), w.l.opts.Region, w.l.opts.AccountID, id, controlData{Final: final, KeyID: w.keyID})
	signCheckpoint(c, w.cur.seq+1, &w.cur.hash, w.signing)
	w.appendLine(c.body(), kindCheckpoint)
	w.cur.sinceCkpt = 0
}

// flush writes the buffer in place after the segment's durable bytes,
// over zeros when extend got there first, and fsyncs it. On failure the
// segment is abandoned by the caller (fail).
//
// File.Sync is fdatasync(2) by default, which is enough for durability:
// it writes the data and whatever metadata reading it back needs (the size
// and block map when a write grew the file), and only skips timestamps.
// A batch is acknowledged only after it returns.
func (w *writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	start := time.Now()
	_, err := w.f.WriteAt(w.buf, w.segOff)
	if err == nil {
		err = w.f.Sync()
	}
	w.l.m.fsync.Observe(time.Since(start).Seconds())
	if err == nil && !w.segDurable {
		err = syncDir(w.l.dir)
	}
	if err != nil {
		return fmt.Errorf("writing segment %s: %w", w.segName, err)
	}
	w.segDurable = true
	w.failedName = ""
	w.durable = w.cur
	w.segOff = w.cur.segBytes
	w.l.setHealth(nil)
	if n := w.kinds[kindEvent]; n > 0 {
		w.l.m.batch.Observe(float64(n))
	}
	for k, n := range w.kinds {
		if n > 0 {
			w.l.m.written.WithLabelValues(kindNames[k]).Add(float64(n))
		}
	}
	if len(w.l.exporters) > 0 {
		cp := bytes.Clone(w.buf)
		from := 0
		for _, end := range w.lineEnds {
			line := cp[from : end-1 : end-1]
			for _, r := range w.l.exporters {
				r.offer(line)
			}
			from = end
		}
	}
	w.reset()
	return nil
}

func (w *writer) reset() {
	w.buf = w.buf[:0]
	w.lineEnds = w.lineEnds[:0]
	w.kinds = [3]int{}
}

// abandon drops the buffered lines and the current segment after a write
// failure: nothing more is written to it, and the next segment's header
// declares how much of it counts.
func (w *writer) abandon() {
	w.reset()
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
		if w.segDurable {
			w.prevName, w.prevBytes = w.segName, w.durable.segBytes
			w.nextNum = w.segNum + 1
			w.nextReason = reasonRetry
		} else {
			w.nextNum = w.segNum
		}
	}
	w.cur = w.durable
}

// closeSegment closes a fully written segment before rotation.
func (w *writer) closeSegment() {
	w.dropZeroTail()
	if err := w.f.Close(); err != nil {
		w.l.log.Warn("audit: closing rotated segment", "segment", w.segName, "err", err)
	}
	w.prevName, w.prevBytes = w.segName, w.durable.segBytes
	w.nextNum = w.segNum + 1
	w.f = nil
}

// closeFile closes the current segment at shutdown.
func (w *writer) closeFile() error {
	if w.f == nil {
		return nil
	}
	if w.segCap > w.segOff {
		w.dropZeroTail()
		if err := w.f.Sync(); err != nil {
			w.l.log.Warn("audit: syncing the closed segment", "segment", w.segName, "err", err)
		}
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("closing segment %s: %w", w.segName, err)
	}
	return nil
}
