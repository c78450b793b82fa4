package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// PublicKey checks checkpoint signatures. Required. Take it from a
	// trusted copy: someone able to rewrite the log may also have replaced
	// the public key file beside it.
	PublicKey ed25519.PublicKey
	// RequireSealed makes a log that does not end with the final
	// checkpoint of a clean Close a problem (ProblemNotSealed) instead of
	// a warning: for archived logs, where a cut at a record boundary must
	// not pass.
	RequireSealed bool
}

// ProblemKind classifies the first problem Verify finds.
type ProblemKind string

// Problem kinds.
const (
	// ProblemModified: a record's bytes changed (its hash no longer
	// matches the next record's previousHash).
	ProblemModified ProblemKind = "modified"
	// ProblemDeleted: sequence numbers skip, records are missing.
	ProblemDeleted ProblemKind = "deleted"
	// ProblemReordered: records appear out of sequence order.
	ProblemReordered ProblemKind = "reordered"
	// ProblemInserted: a record that was not written by the log appears
	// (a sequence number repeats).
	ProblemInserted ProblemKind = "inserted"
	// ProblemMalformed: a line is not a record in the form the log writes.
	ProblemMalformed ProblemKind = "malformed"
	// ProblemSignature: a checkpoint's signature does not verify, or was
	// made with another key.
	ProblemSignature ProblemKind = "bad-signature"
	// ProblemMissingSegment: a segment file is missing.
	ProblemMissingSegment ProblemKind = "missing-segment"
	// ProblemTruncated: a segment is shorter than the next segment's
	// header says, or ends in a partial record that no header accounts
	// for.
	ProblemTruncated ProblemKind = "truncated"
	// ProblemUnexpectedFile: a file named like a segment does not parse
	// as a segment name.
	ProblemUnexpectedFile ProblemKind = "unexpected-file"
	// ProblemNotSealed: with RequireSealed, the log does not end with a
	// final checkpoint.
	ProblemNotSealed ProblemKind = "not-sealed"
)

// Problem locates the first sign of tampering.
type Problem struct {
	Kind ProblemKind `json:"kind"`
	// Segment and Line (1-based) locate the broken record; Offset is its
	// byte offset in the segment.
	Segment string `json:"segment,omitempty"`
	Line    int    `json:"line,omitempty"`
	Offset  int64  `json:"offset,omitempty"`
	// Sequence is the sequence number the log should have there.
	Sequence uint64 `json:"sequence,omitempty"`
	Message  string `json:"message"`
}

// String describes the problem in one sentence.
func (p *Problem) String() string {
	if p.Segment == "" {
		return fmt.Sprintf("%s: %s", p.Kind, p.Message)
	}
	return fmt.Sprintf("%s: %s line %d (offset %d): %s", p.Kind, p.Segment, p.Line, p.Offset, p.Message)
}

// TornTail is a partial last record: the writer was stopped in the middle
// of a write. It is not tampering; the record was never acknowledged.
type TornTail struct {
	Segment string `json:"segment"`
	Offset  int64  `json:"offset"`
	Bytes   int64  `json:"bytes"`
}

// Abandoned is the end of a segment that the next segment's header
// excludes: the partial record of a crash, or the lines of a batch whose
// write or fsync failed (never acknowledged).
type Abandoned struct {
	Segment string `json:"segment"`
	Offset  int64  `json:"offset"`
	Bytes   int64  `json:"bytes"`
	// Reason is the next header's start reason ("recover", "retry").
	Reason string `json:"reason"`
}

// Report is what Verify found. The log is intact when Problem is nil; Torn
// and a positive Unsigned are warnings.
type Report struct {
	Segments    int `json:"segments"`
	Records     int `json:"records"`
	Checkpoints int `json:"checkpoints"`
	// LastSequence is the sequence of the last complete line.
	LastSequence uint64 `json:"lastSequence"`
	// LastCheckpoint is the sequence of the last verified checkpoint.
	LastCheckpoint uint64 `json:"lastCheckpoint"`
	// Unsigned counts the lines after the last checkpoint: chained, but
	// not covered by a signature yet.
	Unsigned int `json:"unsigned"`
	// Sealed is true when the log ends with the final checkpoint of a
	// clean Close.
	Sealed    bool        `json:"sealed"`
	KeyID     string      `json:"keyId"`
	Torn      *TornTail   `json:"torn,omitempty"`
	Abandoned []Abandoned `json:"abandoned,omitempty"`
	Problem   *Problem    `json:"problem,omitempty"`
}

// OK reports whether no tampering was found.
func (r *Report) OK() bool { return r.Problem == nil }

// Verify reads every segment in dir, recomputes the hash chain across
// them, checks each checkpoint signature with opts.PublicKey, and reports
// counts or the first broken record. The error is for a log that cannot be
// read at all (missing directory, I/O error, ErrNoLog); tampering is
// reported in Report.Problem.
func Verify(dir string, opts VerifyOptions) (*Report, error) {
	if len(opts.PublicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: verifying needs an Ed25519 public key", ErrBadKey)
	}
	segs, odd, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 && len(odd) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoLog, dir)
	}
	v := newVerifier(opts)
	if len(odd) > 0 {
		v.rep.Problem = &Problem{Kind: ProblemUnexpectedFile, Segment: odd[0], Message: "a file named like a segment does not follow the audit-NNNNNN-SSSSSSSSSSSS.jsonl pattern: it was not written by the log"}
		return &v.rep, nil
	}
	read := func(i int) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, segs[i].name))
		if err != nil {
			return nil, fmt.Errorf("reading segment: %w", err)
		}
		return b, nil
	}
	if err := v.run(segs, read); err != nil {
		return nil, err
	}
	return &v.rep, nil
}

// verifier holds the chain state while segments are checked in order.
type verifier struct {
	opts    VerifyOptions
	keyID   string
	rep     Report
	seq     uint64
	hash    [32]byte
	lastFin bool // the last line was a final checkpoint
	last    position
	// prevName and prevBytes describe the segment before the current one
	// as its successor's header must name it.
	prevName  string
	prevBytes int64
}

// position locates a line.
type position struct {
	seg  string
	line int
	off  int64
}

func newVerifier(opts VerifyOptions) *verifier {
	v := &verifier{opts: opts, keyID: KeyID(opts.PublicKey)}
	v.rep.KeyID = v.keyID
	return v
}

// run checks segs in order; read returns a segment's bytes.
func (v *verifier) run(segs []segmentFile, read func(int) ([]byte, error)) error {
	var next []byte
	for i := range segs {
		s := segs[i]
		want := i + 1
		if s.num != want {
			missing := want
			msg := fmt.Sprintf("segment %d is missing: the log goes from %s to %s", missing, v.prevName, s.name)
			if i == 0 {
				msg = fmt.Sprintf("segment %d is missing: the log starts at %s", missing, s.name)
			}
			v.rep.Problem = &Problem{Kind: ProblemMissingSegment, Sequence: v.seq + 1, Message: msg}
			return nil
		}
		data := next
		if data == nil {
			var err error
			if data, err = read(i); err != nil {
				return err
			}
		}
		next = nil
		declared := int64(-1)
		reason := ""
		if i+1 < len(segs) {
			var err error
			if next, err = read(i + 1); err != nil {
				return err
			}
			if segs[i+1].num == s.num+1 {
				declared, reason = declaredLength(next)
			}
		}
		v.rep.Segments++
		if !v.segment(s, data, declared, reason, i+1 == len(segs)) {
			return nil
		}
	}
	v.rep.LastSequence = v.seq
	// Nothing follows a final checkpoint in its segment, not even a torn
	// record.
	v.rep.Sealed = v.lastFin && v.rep.Torn == nil
	switch {
	case !v.opts.RequireSealed || v.rep.Sealed:
	case v.lastFin:
		v.rep.Problem = &Problem{Kind: ProblemNotSealed, Segment: v.rep.Torn.Segment, Offset: v.rep.Torn.Offset, Sequence: v.seq + 1,
			Message: "the final checkpoint is followed by a partial record, which a clean shutdown never leaves"}
	default:
		v.rep.Problem = &Problem{Kind: ProblemNotSealed, Sequence: v.seq + 1, Message: fmt.Sprintf(
			"the log ends at sequence %d, %d lines after the last checkpoint (sequence %d), without the final checkpoint of a clean shutdown: it was truncated, or the server did not close it",
			v.seq, v.rep.Unsigned, v.rep.LastCheckpoint)}
	}
	return nil
}

// declaredLength reads previousSegmentBytes from a segment's first line
// without trusting it further; -1 when it is not a readable header.
func declaredLength(data []byte) (int64, string) {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return -1, ""
	}
	line := data[:nl]
	seq, prev, ok := parseChain(line)
	if !ok || !bytes.HasPrefix(line, []byte(controlPrefix+NameSegmentStart)) {
		return -1, ""
	}
	c, err := parseControl(line, seq, &prev)
	if err != nil {
		return -1, ""
	}
	return c.AdditionalEventData.PreviousSegmentBytes, c.AdditionalEventData.StartReason
}

// segment checks one segment. declared is the length of it the next
// segment's header counts (-1 for the last segment). The chain is checked
// before the length, so that a record deleted or inserted is reported as
// such rather than as a length mismatch.
//
// When declared is a usable line boundary, the bytes after it are
// abandoned (or an unused zero tail) whatever they hold. Otherwise the
// segment's records end at its zero tail, and any byte other than zero
// after that point is a problem: zeros are never followed by data.
func (v *verifier) segment(s segmentFile, data []byte, declared int64, reason string, last bool) bool {
	fileSize := int64(len(data))
	end, junk := zeroTail(data)
	limit := end
	counted := declared >= 0 && declared < fileSize && (declared == 0 || data[declared-1] == '\n')
	if counted {
		limit = declared
	}
	line, pos := 0, 0
	for pos < int(limit) {
		nl := bytes.IndexByte(data[pos:limit], '\n')
		if nl < 0 {
			if last {
				v.rep.Torn = &TornTail{Segment: s.name, Offset: int64(pos), Bytes: limit - int64(pos)}
				break
			}
			if declared >= 0 && declared != end {
				break // reported below
			}
			v.rep.Problem = &Problem{Kind: ProblemTruncated, Segment: s.name, Line: line + 1, Offset: int64(pos), Sequence: v.seq + 1, Message: fmt.Sprintf(
				"the segment ends with a partial record (%d bytes) that the next segment's header does not account for", limit-int64(pos))}
			return false
		}
		line++
		rec := data[pos : pos+nl]
		rest := data[pos+nl+1 : limit]
		if p := v.line(s, line, int64(pos), rec, rest); p != nil {
			v.rep.Problem = p
			return false
		}
		pos += nl + 1
	}
	if !counted && junk >= 0 {
		v.rep.Problem = &Problem{Kind: ProblemMalformed, Segment: s.name, Line: line + 1, Offset: junk, Sequence: v.seq + 1, Message: fmt.Sprintf(
			"data at offset %d follows the zero-filled end of the records at offset %d, which the writer never leaves: records were zeroed out, or bytes were written past the end of the log", junk, end)}
		return false
	}
	switch {
	case declared > end && !counted:
		v.rep.Problem = &Problem{Kind: ProblemTruncated, Segment: s.name, Line: line, Offset: end, Sequence: v.seq + 1, Message: fmt.Sprintf(
			"the segment holds %d bytes of records but the next segment's header says its first %d bytes do: it was truncated", end, declared)}
		return false
	case declared >= 0 && limit != declared:
		v.rep.Problem = &Problem{Kind: ProblemTruncated, Segment: s.name, Line: line, Offset: declared, Sequence: v.seq + 1, Message: fmt.Sprintf(
			"the next segment's header says the first %d bytes count, which is not a record boundary", declared)}
		return false
	case counted:
		// What follows the counted bytes is an unused zero tail, or the
		// abandoned end of a batch (possibly followed by zeros).
		if n := lastNonZero(data[declared:]); n >= 0 {
			v.rep.Abandoned = append(v.rep.Abandoned, Abandoned{Segment: s.name, Offset: declared, Bytes: int64(n) + 1, Reason: reason})
		}
	}
	if line == 0 {
		if last {
			// A segment created just before a crash, before its header
			// was written: nothing in it was acknowledged.
			if v.rep.Torn == nil {
				v.rep.Torn = &TornTail{Segment: s.name}
			}
			return true
		}
		v.rep.Problem = &Problem{Kind: ProblemTruncated, Segment: s.name, Sequence: v.seq + 1, Message: "the segment holds no complete record"}
		return false
	}
	v.prevName, v.prevBytes = s.name, limit
	return true
}

// line checks one record; rest is the segment after it, for lookahead.
func (v *verifier) line(s segmentFile, lineNo int, off int64, rec, rest []byte) *Problem {
	prob := func(kind ProblemKind, format string, args ...any) *Problem {
		return &Problem{Kind: kind, Segment: s.name, Line: lineNo, Offset: off, Sequence: v.seq + 1, Message: fmt.Sprintf(format, args...)}
	}
	seq, prev, ok := parseChain(rec)
	if !ok {
		return prob(ProblemMalformed, "the line does not end with the sequence and previousHash fields: it was modified or not written by the log")
	}
	want := v.seq + 1
	if seq != want {
		return v.sequenceProblem(prob, seq, want, rest)
	}
	if prev != v.hash {
		if nseq, _, ok := nextChain(rest); ok && nseq == seq {
			return prob(ProblemInserted, "two records claim sequence %d (this line and the next): this one was inserted or replaced", seq)
		}
		return &Problem{Kind: ProblemModified, Segment: v.last.seg, Line: v.last.line, Offset: v.last.off, Sequence: v.seq, Message: fmt.Sprintf(
			"record %d was modified: its hash does not match the previousHash of the record after it (%s line %d), or that link was", v.seq, s.name, lineNo)}
	}
	control := bytes.HasPrefix(rec, []byte(controlPrefix))
	if lineNo == 1 || control {
		if p := v.control(prob, s, lineNo, rec, seq, &prev, control); p != nil {
			return p
		}
	} else {
		v.rep.Records++
		v.lastFin = false
	}
	v.seq, v.hash = seq, sha256.Sum256(rec)
	v.last = position{s.name, lineNo, off}
	v.rep.Unsigned++
	if v.lastCkpt() {
		v.rep.Unsigned = 0
	}
	return nil
}

// lastCkpt reports whether the line just accepted was a checkpoint.
func (v *verifier) lastCkpt() bool { return v.rep.LastCheckpoint == v.seq && v.seq != 0 }

// sequenceProblem explains a sequence number that is not the next one.
func (v *verifier) sequenceProblem(prob func(ProblemKind, string, ...any) *Problem, seq, want uint64, rest []byte) *Problem {
	nseq, _, nok := nextChain(rest)
	switch {
	case seq > want && nok && nseq == want:
		return prob(ProblemReordered, "sequence %d comes before %d: records were reordered", seq, want)
	case seq > want:
		if seq-1 == want {
			return prob(ProblemDeleted, "sequence jumps from %d to %d: record %d was deleted", v.seq, seq, want)
		}
		return prob(ProblemDeleted, "sequence jumps from %d to %d: records %d to %d were deleted", v.seq, seq, want, seq-1)
	case seq == v.seq:
		return prob(ProblemInserted, "sequence %d appears twice (this line and the one before): one of them was inserted", seq)
	default:
		return prob(ProblemReordered, "sequence %d comes after %d: records were reordered or inserted", seq, v.seq)
	}
}

// nextChain parses the chain fields of the first line in rest.
func nextChain(rest []byte) (uint64, [32]byte, bool) {
	nl := bytes.IndexByte(rest, '\n')
	if nl < 0 {
		return 0, [32]byte{}, false
	}
	return parseChain(rest[:nl])
}

// control checks a segment header or checkpoint.
func (v *verifier) control(prob func(ProblemKind, string, ...any) *Problem, s segmentFile, lineNo int, rec []byte, seq uint64, prev *[32]byte, control bool) *Problem {
	if !control {
		return prob(ProblemMalformed, "the segment does not start with a segment header")
	}
	c, err := parseControl(rec, seq, prev)
	if err != nil {
		return prob(ProblemMalformed, "control record was modified: %v", err)
	}
	d := c.AdditionalEventData
	switch c.EventName {
	case NameSegmentStart:
		switch {
		case lineNo != 1:
			return prob(ProblemInserted, "a segment header inside the segment: it was inserted")
		case d.Segment != s.num || seq != s.first:
			return prob(ProblemMalformed, "the header says segment %d starting at sequence %d, but the file is named %s: the file was renamed", d.Segment, seq, s.name)
		case d.PreviousSegment != v.prevName || d.PreviousSegmentBytes != v.prevBytes:
			return prob(ProblemMalformed, "the header names previous segment %q (%d bytes), but the log has %q (%d bytes)", d.PreviousSegment, d.PreviousSegmentBytes, v.prevName, v.prevBytes)
		}
		v.lastFin = false
	case NameCheckpoint:
		if lineNo == 1 {
			return prob(ProblemMalformed, "the segment does not start with a segment header")
		}
		if d.KeyID != v.keyID {
			return prob(ProblemSignature, "the checkpoint was signed with key %s but the verifying key is %s: pass the log's public key with --pubkey, or the log was re-signed with another key", d.KeyID, v.keyID)
		}
		if !checkSignature(c, seq, prev, v.opts.PublicKey) {
			from := v.rep.LastCheckpoint + 1
			return prob(ProblemSignature, "the checkpoint's signature does not verify: it was replaced, or records %d to %d were altered and the chain recomputed", from, seq-1)
		}
		v.rep.Checkpoints++
		v.rep.LastCheckpoint = seq
		v.lastFin = d.Final
	}
	return nil
}

// VerifyLine checks that line is one well-formed record of the log and
// returns its sequence number and previous hash: the per-line parsing
// Verify does, exposed for fuzzing and tools.
func VerifyLine(line []byte) (seq uint64, prev [32]byte, err error) {
	seq, prev, ok := parseChain(line)
	if !ok {
		return 0, prev, errors.New("the line does not end with the chain fields")
	}
	if bytes.HasPrefix(line, []byte(controlPrefix)) {
		if _, err := parseControl(line, seq, &prev); err != nil {
			return 0, prev, err
		}
	}
	return seq, prev, nil
}
