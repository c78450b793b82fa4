package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Filter selects records. Zero fields match everything; a record must
// match every field set.
type Filter struct {
	// Since (inclusive) and Until (exclusive) bound eventTime.
	Since, Until time.Time
	// Principal is a substring of userIdentity.arn or principalId.
	Principal string
	// Action is an eventName ("GetSecretValue", case-insensitive), or
	// "service:Name" to also match the eventSource's first label
	// ("secretsmanager:GetSecretValue").
	Action string
	// Resource is a substring of any resources[].ARN.
	Resource string
	// Decision is "allow" or "deny".
	Decision string
	// Outcome is "success" (no errorCode) or "error".
	Outcome string
	// SourceIP is sourceIPAddress, exactly.
	SourceIP string
	// IncludeControl also yields segment headers and checkpoints, which
	// are skipped by default.
	IncludeControl bool
	// AfterSequence skips records with a sequence up to and including it
	// (a cursor: the LastSequence of a previous page).
	AfterSequence uint64
}

// Validate checks the enumerated fields.
func (f *Filter) Validate() error {
	switch f.Decision {
	case "", "allow", "deny":
	default:
		return fmt.Errorf("%w: decision %q: want allow or deny", ErrBadFilter, f.Decision)
	}
	switch f.Outcome {
	case "", "success", "error":
	default:
		return fmt.Errorf("%w: outcome %q: want success or error", ErrBadFilter, f.Outcome)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return fmt.Errorf("%w: until must be after since", ErrBadFilter)
	}
	return nil
}

// Match reports whether r passes the filter (AfterSequence aside).
func (f *Filter) Match(r *Record) bool {
	if r.Control() && !f.IncludeControl {
		return false
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		t, err := time.Parse(TimeLayout, r.EventTime)
		if err != nil || (!f.Since.IsZero() && t.Before(f.Since)) || (!f.Until.IsZero() && !t.Before(f.Until)) {
			return false
		}
	}
	if f.Principal != "" {
		u := r.UserIdentity
		if u == nil || !(strings.Contains(u.ARN, f.Principal) || strings.Contains(u.PrincipalID, f.Principal)) {
			return false
		}
	}
	if f.Action != "" {
		svc, name, ok := strings.Cut(f.Action, ":")
		if !ok {
			svc, name = "", f.Action
		}
		if !strings.EqualFold(r.EventName, name) {
			return false
		}
		if svc != "" {
			src, _, _ := strings.Cut(r.EventSource, ".")
			if !strings.EqualFold(src, svc) {
				return false
			}
		}
	}
	if f.Resource != "" && !anyResource(r.Resources, f.Resource) {
		return false
	}
	if f.Decision != "" && r.AdditionalEventData.Decision != f.Decision {
		return false
	}
	switch f.Outcome {
	case "success":
		if r.ErrorCode != "" {
			return false
		}
	case "error":
		if r.ErrorCode == "" {
			return false
		}
	}
	return f.SourceIP == "" || r.SourceIPAddress == f.SourceIP
}

func anyResource(rs []Resource, sub string) bool {
	for _, r := range rs {
		if strings.Contains(r.ARN, sub) {
			return true
		}
	}
	return false
}

// Query calls fn for every record in dir that matches f, in log order.
// It does not verify the chain (use Verify for that): it skips torn tails,
// the abandoned ends of segments, and lines that do not decode. An error
// from fn stops the query and is returned.
func Query(dir string, f Filter, fn func(Record) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	return scan(dir, f.AfterSequence, func(seq uint64, line []byte) error {
		r, ok := decodeRecord(line)
		if !ok || !f.Match(&r) {
			return nil
		}
		return fn(r)
	})
}

func decodeRecord(line []byte) (Record, bool) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return r, false
	}
	r.Raw = line
	return r, true
}

// scan calls fn with every complete line (and its sequence) after the
// sequence after, honouring the lengths segment headers declare.
func scan(dir string, after uint64, fn func(seq uint64, line []byte) error) error {
	segs, _, err := listSegments(dir)
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		return fmt.Errorf("%w in %s", ErrNoLog, dir)
	}
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].first <= after+1 {
			continue
		}
		limit := int64(-1)
		if i+1 < len(segs) {
			limit = peekDeclared(filepath.Join(dir, segs[i+1].name))
		}
		if _, err := scanSegment(filepath.Join(dir, s.name), 0, limit, after, fn); err != nil {
			return err
		}
	}
	return nil
}

// peekDeclared reads the previousSegmentBytes of a segment's header, or -1.
func peekDeclared(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 4096)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return -1
	}
	n, _ := declaredLength(line)
	return n
}

// scanSegment reads complete lines from offset off (up to limit bytes of
// the file when limit >= 0) and returns the offset after the last complete
// line. It stops at the segment's zero tail (the first NUL byte), so a
// preallocated live segment costs one buffer of zeros per call, not its
// whole size.
func scanSegment(path string, off, limit int64, after uint64, fn func(uint64, []byte) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return off, fmt.Errorf("opening segment: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return off, fmt.Errorf("reading segment: %w", err)
	}
	var r io.Reader = f
	if limit >= 0 {
		r = io.LimitReader(f, max(limit-off, 0))
	}
	br := bufio.NewReaderSize(r, 256<<10)
	var long []byte // a line longer than br's buffer, so far
	for {
		chunk, err := br.ReadSlice('\n')
		if bytes.IndexByte(chunk, 0) >= 0 {
			return off, nil // the zero tail: no record starts in or after it
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return off, nil
			}
			return off, fmt.Errorf("reading segment: %w", err)
		}
		line := append(long, chunk...)
		long = nil
		off += int64(len(line))
		line = line[:len(line)-1]
		seq, _, ok := parseChain(line)
		if !ok || seq <= after {
			continue
		}
		if err := fn(seq, line); err != nil {
			return off, err
		}
	}
}

// Follow is Query that keeps going: after the records already in dir it
// polls the newest segment every poll interval for new complete lines, and
// moves on when a newer segment appears (rotation, restart). It returns
// ctx.Err() when ctx is done, or fn's error.
func Follow(ctx context.Context, dir string, f Filter, poll time.Duration, fn func(Record) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if poll <= 0 {
		poll = time.Second
	}
	after := f.AfterSequence
	emit := func(seq uint64, line []byte) error {
		after = seq
		r, ok := decodeRecord(line)
		if !ok || !f.Match(&r) {
			return nil
		}
		return fn(r)
	}
	num, off := 0, int64(0)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		segs, _, err := listSegments(dir)
		if err != nil {
			return err
		}
		for i := 0; i < len(segs); i++ {
			s := segs[i]
			if s.num < num || (i+1 < len(segs) && segs[i+1].first <= after+1) {
				continue
			}
			if s.num > num {
				// Lines of a batch whose fsync failed may have been shown
				// already; the next segment reuses their sequence numbers.
				if num != 0 && s.first-1 < after {
					after = s.first - 1
				}
				num, off = s.num, 0
			}
			limit := int64(-1)
			if i+1 < len(segs) {
				limit = peekDeclared(filepath.Join(dir, segs[i+1].name))
			}
			if off, err = scanSegment(filepath.Join(dir, s.name), off, limit, after, emit); err != nil {
				return err
			}
		}
		t.Reset(poll)
	}
}

// LastSequence returns the sequence of the last complete line in dir, for
// starting Follow at the end of the log.
func LastSequence(dir string) (uint64, error) {
	segs, _, err := listSegments(dir)
	if err != nil {
		return 0, err
	}
	for i := len(segs) - 1; i >= 0; i-- {
		line, _, err := lastLine(filepath.Join(dir, segs[i].name))
		if err != nil {
			return 0, err
		}
		if line == nil {
			continue
		}
		seq, _, ok := parseChain(line)
		if !ok {
			return 0, fmt.Errorf("%w: the last record of %s does not parse", ErrCorrupt, segs[i].name)
		}
		return seq, nil
	}
	return 0, fmt.Errorf("%w in %s", ErrNoLog, dir)
}

// QueryRequest is the body of the native API's POST /v1/audit (action
// sigil:ReadAudit): a Filter in wire form plus paging.
type QueryRequest struct {
	// Since and Until are RFC 3339 times.
	Since          string `json:"Since,omitempty"`
	Until          string `json:"Until,omitempty"`
	Principal      string `json:"Principal,omitempty"`
	Action         string `json:"Action,omitempty"`
	Resource       string `json:"Resource,omitempty"`
	Decision       string `json:"Decision,omitempty"`
	Outcome        string `json:"Outcome,omitempty"`
	SourceIP       string `json:"SourceIp,omitempty"`
	IncludeControl bool   `json:"IncludeControl,omitempty"`
	AfterSequence  uint64 `json:"AfterSequence,omitempty"`
	// Limit bounds the records returned: default 1000, at most
	// MaxQueryLimit.
	Limit int `json:"Limit,omitempty"`
}

// MaxQueryLimit bounds QueryRequest.Limit.
const MaxQueryLimit = 10000

// Filter converts the request into a validated Filter.
func (q *QueryRequest) Filter() (Filter, error) {
	f := Filter{
		Principal: q.Principal, Action: q.Action, Resource: q.Resource, Decision: q.Decision,
		Outcome: q.Outcome, SourceIP: q.SourceIP, IncludeControl: q.IncludeControl, AfterSequence: q.AfterSequence,
	}
	for _, b := range []struct {
		name string
		in   string
		out  *time.Time
	}{{"Since", q.Since, &f.Since}, {"Until", q.Until, &f.Until}} {
		if b.in == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, b.in)
		if err != nil {
			return Filter{}, fmt.Errorf("%w: %s %q is not an RFC 3339 time", ErrBadFilter, b.name, b.in)
		}
		*b.out = t
	}
	if q.Limit < 0 || q.Limit > MaxQueryLimit {
		return Filter{}, fmt.Errorf("%w: Limit %d: want 1 to %d", ErrBadFilter, q.Limit, MaxQueryLimit)
	}
	return f, f.Validate()
}

// QueryResponse is the answer to a QueryRequest: a CloudTrail log document
// ({"Records":[...]}) plus a cursor.
type QueryResponse struct {
	Records []json.RawMessage `json:"Records"`
	// LastSequence is where the page ends: pass it as AfterSequence to get
	// the next page, or to poll for new records.
	LastSequence uint64 `json:"LastSequence"`
	// Truncated is true when Limit ended the page before the end of the
	// log.
	Truncated bool `json:"Truncated"`
}

// errPageFull stops a scan once a page is full.
var errPageFull = errors.New("page full")

// QueryPage answers one QueryRequest against dir: what a /v1/audit handler
// needs after authorizing sigil:ReadAudit.
func QueryPage(dir string, req QueryRequest) (*QueryResponse, error) {
	f, err := req.Filter()
	if err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit == 0 {
		limit = 1000
	}
	resp := &QueryResponse{Records: []json.RawMessage{}, LastSequence: f.AfterSequence}
	err = scan(dir, f.AfterSequence, func(seq uint64, line []byte) error {
		if len(resp.Records) == limit {
			resp.Truncated = true
			return errPageFull
		}
		resp.LastSequence = seq
		r, ok := decodeRecord(line)
		if ok && f.Match(&r) {
			resp.Records = append(resp.Records, json.RawMessage(bytes.Clone(line)))
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return nil, err
	}
	return resp, nil
}
