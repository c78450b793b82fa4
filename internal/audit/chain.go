package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// The chain fields end every line in exactly this form:
//
//	...,"sequence":<decimal>,"previousHash":"<64 lower-case hex>"}}
//
// so that the writer can append them to a body encoded outside its lock and
// Verify can read them without decoding the whole record.
const (
	seqField   = `,"sequence":`
	prevField  = `,"previousHash":"`
	lineEnd    = `"}}`
	hashHexLen = 64
	// chainTailLen is the fixed-length end of a line after the sequence.
	chainTailLen = len(prevField) + hashHexLen + len(lineEnd)
	// chainSuffixMax bounds the chain fields' length.
	chainSuffixMax = len(seqField) + 20 + chainTailLen
)

// controlPrefix starts every segment header and checkpoint line. Event
// records never start this way (their second field is eventTime), which
// lets Verify pick control records out without decoding events.
const controlPrefix = `{"eventVersion":"` + EventVersion + `","eventType":"` + EventTypeService + `","eventSource":"` + SourceSigil + `","eventName":"`

// appendChainSuffix appends the chain fields and closes the record.
func appendChainSuffix(dst []byte, seq uint64, prev *[32]byte) []byte {
	dst = append(dst, seqField...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, prevField...)
	dst = hex.AppendEncode(dst, prev[:])
	return append(dst, lineEnd...)
}

// parseChain reads the chain fields from the end of a line. It accepts only
// the exact form appendChainSuffix writes.
func parseChain(line []byte) (seq uint64, prev [32]byte, ok bool) {
	if len(line) < chainTailLen+len(seqField)+2 {
		return 0, prev, false
	}
	tail := line[len(line)-chainTailLen:]
	if !bytes.HasPrefix(tail, []byte(prevField)) || !bytes.HasSuffix(tail, []byte(lineEnd)) {
		return 0, prev, false
	}
	hx := tail[len(prevField) : len(prevField)+hashHexLen]
	for _, c := range hx {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return 0, prev, false
		}
	}
	if _, err := hex.Decode(prev[:], hx); err != nil {
		return 0, prev, false
	}
	rest := line[:len(line)-chainTailLen]
	i := len(rest)
	for i > 0 && rest[i-1] >= '0' && rest[i-1] <= '9' {
		i--
	}
	digits := rest[i:]
	if len(digits) == 0 || len(digits) > 20 || (digits[0] == '0' && len(digits) > 1) {
		return 0, prev, false
	}
	if !bytes.HasSuffix(rest[:i], []byte(seqField)) {
		return 0, prev, false
	}
	seq, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0, prev, false
	}
	return seq, prev, true
}

// Segment files.

const (
	segPrefix = "audit-"
	segSuffix = ".jsonl"
)

// segmentName names segment num whose first record has sequence first.
// Names sort by number for the first 999,999 segments; readers sort by the
// parsed number regardless.
func segmentName(num int, first uint64) string {
	return fmt.Sprintf("%s%06d-%012d%s", segPrefix, num, first, segSuffix)
}

// parseSegmentName is the inverse of segmentName.
func parseSegmentName(name string) (num int, first uint64, ok bool) {
	s, ok1 := strings.CutPrefix(name, segPrefix)
	s, ok2 := strings.CutSuffix(s, segSuffix)
	a, b, ok3 := strings.Cut(s, "-")
	if !ok1 || !ok2 || !ok3 || len(a) < 6 || len(b) < 12 || !allDigits(a) || !allDigits(b) {
		return 0, 0, false
	}
	n, err1 := strconv.Atoi(a)
	f, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || n < 1 || f < 1 {
		return 0, 0, false
	}
	return n, f, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// segmentFile is one segment found in a log directory.
type segmentFile struct {
	name  string
	num   int
	first uint64
}

// listSegments returns the directory's segments ordered by number, and the
// names that look like segments (audit-*.jsonl) but do not parse.
func listSegments(dir string) (segs []segmentFile, odd []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading audit directory: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		num, first, ok := parseSegmentName(name)
		if !ok || !e.Type().IsRegular() {
			odd = append(odd, name)
			continue
		}
		segs = append(segs, segmentFile{name: name, num: num, first: first})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].num < segs[j].num })
	return segs, odd, nil
}

// Control records: segment headers and checkpoints.

// controlRecord is the encoded form of a control record. Its field order
// puts eventType first (see controlPrefix).
type controlRecord struct {
	EventVersion        string      `json:"eventVersion"`
	EventType           string      `json:"eventType"`
	EventSource         string      `json:"eventSource"`
	EventName           string      `json:"eventName"`
	EventTime           string      `json:"eventTime"`
	AWSRegion           string      `json:"awsRegion"`
	EventID             string      `json:"eventID"`
	ReadOnly            bool        `json:"readOnly"`
	ManagementEvent     bool        `json:"managementEvent"`
	RecipientAccountID  string      `json:"recipientAccountId"`
	EventCategory       string      `json:"eventCategory"`
	AdditionalEventData controlData `json:"additionalEventData"`
}

// controlData is additionalEventData of a control record.
type controlData struct {
	Segment              int    `json:"segment,omitempty"`
	StartReason          string `json:"startReason,omitempty"`
	PreviousSegment      string `json:"previousSegment,omitempty"`
	PreviousSegmentBytes int64  `json:"previousSegmentBytes,omitempty"`
	Final                bool   `json:"final,omitempty"`
	KeyID                string `json:"keyId,omitempty"`
	Signature            string `json:"signature,omitempty"`
	Sequence             uint64 `json:"sequence,omitempty"`
	PreviousHash         string `json:"previousHash,omitempty"`
}

func newControl(name, eventTime, region, account, eventID string, d controlData) *controlRecord {
	return &controlRecord{
		EventVersion:        EventVersion,
		EventType:           EventTypeService,
		EventSource:         SourceSigil,
		EventName:           name,
		EventTime:           eventTime,
		AWSRegion:           region,
		EventID:             eventID,
		ReadOnly:            false,
		ManagementEvent:     true,
		RecipientAccountID:  account,
		EventCategory:       CategoryManagement,
		AdditionalEventData: d,
	}
}

// body encodes c without its chain fields, like encoder.encodeEvent.
func (c *controlRecord) body() []byte {
	cc := *c
	cc.AdditionalEventData.Sequence, cc.AdditionalEventData.PreviousHash = 0, ""
	b, err := marshalCompact(&cc)
	if err != nil {
		panic("audit: internal error: encoding a control record: " + err.Error())
	}
	body, ok := bytes.CutSuffix(b, []byte("}}"))
	if !ok || !bytes.HasPrefix(body, []byte(controlPrefix)) {
		panic("audit: internal error: control record has an unexpected shape")
	}
	return body
}

// parseControl decodes a control line and checks that it is exactly what
// the writer would have produced from the decoded values, so no byte of a
// control record can change unnoticed by re-encoding.
func parseControl(line []byte, seq uint64, prev *[32]byte) (*controlRecord, error) {
	var c controlRecord
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("control record does not decode: %w", err)
	}
	if c.EventName != NameSegmentStart && c.EventName != NameCheckpoint {
		return nil, fmt.Errorf("unknown control record %q", c.EventName)
	}
	want := appendChainSuffix(c.body(), seq, prev)
	if !bytes.Equal(want, line) {
		return nil, fmt.Errorf("control record is not in canonical form")
	}
	return &c, nil
}

// checkpointMessage is what a checkpoint's signature covers: the
// checkpoint's sequence, the chain hash before it (the SHA-256 of the
// previous line), its time, and every other field the line holds.
func checkpointMessage(c *controlRecord, seq uint64, prev *[32]byte) []byte {
	return fmt.Appendf(nil, "sigil-audit-checkpoint-v1\nsequence %d\nchain %x\ntime %s\nfinal %t\nkey %s\nevent %s\nregion %s\naccount %s\n",
		seq, prev[:], c.EventTime, c.AdditionalEventData.Final, c.AdditionalEventData.KeyID, c.EventID, c.AWSRegion, c.RecipientAccountID)
}

// signCheckpoint fills in the signature of a checkpoint.
func signCheckpoint(c *controlRecord, seq uint64, prev *[32]byte, key ed25519.PrivateKey) {
	sig := ed25519.Sign(key, checkpointMessage(c, seq, prev))
	c.AdditionalEventData.Signature = base64.StdEncoding.EncodeToString(sig)
}

// checkSignature verifies a decoded checkpoint against pub.
func checkSignature(c *controlRecord, seq uint64, prev *[32]byte, pub ed25519.PublicKey) bool {
	sig, err := base64.StdEncoding.Strict().DecodeString(c.AdditionalEventData.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, checkpointMessage(c, seq, prev), sig)
}

// Zero tails. A segment may end with zeros that the writer wrote ahead of
// its records (see FORMAT.md, "Zero tail"). No record holds a NUL byte
// (records are JSON, and the encoders escape control characters), so the
// records of a segment end at its first NUL byte.

// zeroTail returns where the records of data end (its first NUL byte, or
// its length) and the offset of the first non-zero byte after that point,
// or -1 when only zeros follow.
func zeroTail(data []byte) (end, junk int64) {
	z := bytes.IndexByte(data, 0)
	if z < 0 {
		return int64(len(data)), -1
	}
	if j := firstNonZero(data[z:]); j >= 0 {
		return int64(z), int64(z + j)
	}
	return int64(z), -1
}

// lastNonZero returns the index of the last non-zero byte of b, or -1.
func lastNonZero(b []byte) int {
	for len(b) >= len(zeroBlock) && bytes.Equal(b[len(b)-len(zeroBlock):], zeroBlock[:]) {
		b = b[:len(b)-len(zeroBlock)]
	}
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i
		}
	}
	return -1
}

// zeroBlock is compared against in bulk.
var zeroBlock [4096]byte

// firstNonZero returns the index of the first non-zero byte of b, or -1.
func firstNonZero(b []byte) int {
	off := 0
	for len(b)-off >= len(zeroBlock) && bytes.Equal(b[off:off+len(zeroBlock)], zeroBlock[:]) {
		off += len(zeroBlock)
	}
	for i := off; i < len(b); i++ {
		if b[i] != 0 {
			return i
		}
	}
	return -1
}

// dataEnd is zeroTail for a file of the given size, read in chunks.
func dataEnd(r io.ReaderAt, size int64) (end, junk int64, err error) {
	buf := make([]byte, min(size, 1<<20))
	end = -1
	for off := int64(0); off < size; {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		if n == 0 {
			break
		}
		chunk := buf[:n]
		if end < 0 {
			z := bytes.IndexByte(chunk, 0)
			if z < 0 {
				off += int64(n)
				continue
			}
			end = off + int64(z)
			chunk, off = chunk[z:], end
			n = len(chunk)
		}
		if j := firstNonZero(chunk); j >= 0 {
			return end, off + int64(j), nil
		}
		off += int64(n)
	}
	if end < 0 {
		end = size
	}
	return end, -1, nil
}
