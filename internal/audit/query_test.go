package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/authn"
)

// queryLog writes a log with varied events and returns its directory.
func queryLog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentSize: 4 << 10})
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	admin := &authn.Principal{Kind: authn.KindRoot, AccountID: "123456789012", ARN: "arn:aws:iam::123456789012:root", ID: "123456789012"}
	for i := range 20 {
		ev := sampleEvent(i)
		ev.Time = base.Add(time.Duration(i) * time.Minute)
		switch i % 4 {
		case 1:
			ev.Allowed, ev.Reason = false, "implicit deny"
			ev.ErrorCode = "AccessDeniedException"
			ev.SourceIP = "192.0.2.9"
		case 2:
			ev.Principal = admin
			ev.Action = "CreateSecret"
			ev.ReadOnly = false
			ev.Resources = []string{"arn:aws:secretsmanager:us-east-1:123456789012:secret:new-QwErTy"}
		case 3:
			ev.Source = "sts.amazonaws.com"
			ev.Action = "GetCallerIdentity"
			ev.Resources = nil
		}
		record(t, l, ev)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestQueryFilters(t *testing.T) {
	dir := queryLog(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		f    Filter
		want []int // event numbers (request id suffix)
	}{
		{"all", Filter{}, seq(0, 20, 1)},
		{"since", Filter{Since: base.Add(15 * time.Minute)}, seq(15, 20, 1)},
		{"until", Filter{Until: base.Add(3 * time.Minute)}, []int{0, 1, 2}},
		{"window", Filter{Since: base.Add(4 * time.Minute), Until: base.Add(6 * time.Minute)}, []int{4, 5}},
		{"principal", Filter{Principal: ":root"}, seq(2, 20, 4)},
		{"principal id", Filter{Principal: "AIDAEXAMPLE"}, []int{0, 1, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17, 19}},
		{"action", Filter{Action: "createsecret"}, seq(2, 20, 4)},
		{"service action", Filter{Action: "sts:GetCallerIdentity"}, seq(3, 20, 4)},
		{"wrong service", Filter{Action: "iam:GetCallerIdentity"}, nil},
		{"resource", Filter{Resource: "secret:new-"}, seq(2, 20, 4)},
		{"deny", Filter{Decision: "deny"}, seq(1, 20, 4)},
		{"allow and error", Filter{Decision: "allow", Outcome: "error"}, nil},
		{"error", Filter{Outcome: "error"}, seq(1, 20, 4)},
		{"success from ip", Filter{Outcome: "success", SourceIP: "10.0.0.7"}, []int{0, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19}},
		{"ip", Filter{SourceIP: "192.0.2.9"}, seq(1, 20, 4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			err := Query(dir, tt.f, func(r Record) error {
				var n int
				if _, err := fmt.Sscanf(r.RequestID, "req-%d", &n); err != nil {
					return err
				}
				if len(r.Raw) == 0 {
					return errors.New("record without Raw")
				}
				got = append(got, n)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func seq(from, to, step int) []int {
	var out []int
	for i := from; i < to; i += step {
		out = append(out, i)
	}
	return out
}

func TestQueryBadFilter(t *testing.T) {
	dir := queryLog(t)
	for _, f := range []Filter{{Decision: "maybe"}, {Outcome: "meh"}, {Since: time.Unix(10, 0), Until: time.Unix(5, 0)}} {
		if err := Query(dir, f, func(Record) error { return nil }); !errors.Is(err, ErrBadFilter) {
			t.Fatalf("filter %+v: %v", f, err)
		}
	}
	if err := Query(t.TempDir(), Filter{}, func(Record) error { return nil }); !errors.Is(err, ErrNoLog) {
		t.Fatalf("empty dir: %v", err)
	}
	stop := errors.New("stop")
	n := 0
	if err := Query(dir, Filter{}, func(Record) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("callback error: %v after %d", err, n)
	}
}

func TestQueryPage(t *testing.T) {
	dir := queryLog(t)
	var ids []string
	req := QueryRequest{Decision: "allow", Limit: 4}
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("paging does not end")
		}
		resp, err := QueryPage(dir, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range resp.Records {
			var r Record
			if err := json.Unmarshal(raw, &r); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.RequestID)
		}
		if !resp.Truncated {
			break
		}
		if len(resp.Records) != 4 {
			t.Fatalf("a truncated page holds %d records", len(resp.Records))
		}
		req.AfterSequence = resp.LastSequence
	}
	if len(ids) != 15 {
		t.Fatalf("paged %d records: %v", len(ids), ids)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("%s returned twice", id)
		}
		seen[id] = true
	}
	for _, bad := range []QueryRequest{{Since: "yesterday"}, {Limit: MaxQueryLimit + 1}, {Outcome: "x"}} {
		if _, err := QueryPage(dir, bad); !errors.Is(err, ErrBadFilter) {
			t.Fatalf("request %+v: %v", bad, err)
		}
	}
	resp, err := QueryPage(dir, QueryRequest{Since: "2026-03-01T12:18:00Z"})
	if err != nil || len(resp.Records) != 2 || resp.Truncated {
		t.Fatalf("since page: %+v %v", resp, err)
	}
}

// TestFollow tails a log while it is written, rotated and restarted.
func TestFollow(t *testing.T) {
	dir := t.TempDir()
	keys := testKeys(t)
	l := openLog(t, dir, Options{Keys: keys, SegmentSize: 3 << 10})
	record(t, l, sampleEvent(0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []string
	errc := make(chan error, 1)
	go func() {
		errc <- Follow(ctx, dir, Filter{Action: "GetSecretValue"}, time.Millisecond, func(r Record) error {
			mu.Lock()
			got = append(got, r.RequestID)
			mu.Unlock()
			return nil
		})
	}()
	for i := 1; i < 30; i++ {
		record(t, l, sampleEvent(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, Options{Keys: keys, SegmentSize: 3 << 10})
	for i := 30; i < 40; i++ {
		record(t, l2, sampleEvent(i))
	}
	waitFor(t, "followed records", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 40
	})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v", err)
	}
	if len(segmentPaths(t, dir)) < 4 {
		t.Fatal("the log did not rotate")
	}
	mu.Lock()
	defer mu.Unlock()
	for i, id := range got {
		if want := fmt.Sprintf("req-%06d", i); id != want || i >= 40 {
			t.Fatalf("record %d is %s, want %s (all: %v)", i, id, want, got)
		}
	}
}

func TestLastSequence(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	seq, err := l.Append(context.Background(), sampleEvent(1))
	if err != nil {
		t.Fatal(err)
	}
	last, err := LastSequence(dir)
	if err != nil || last != seq {
		t.Fatalf("LastSequence = %d, %v; want %d", last, err, seq)
	}
}
