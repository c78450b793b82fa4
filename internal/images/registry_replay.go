package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"sigil.dev/sigil/internal/store"
)

// The replay cache
//
// Every accepted jti is written to images/jti/<jti> with MustNotExist, so
// that across all replicas sharing the store a jti is accepted once; the
// entry is kept until the assertion's exp plus the skew, then swept. The
// writes are group-committed: concurrent exchanges hand their entries to
// whichever of them is committing, which writes the whole batch in one
// transaction (one fsync for many exchanges). When the batch conflicts,
// because some jti already exists, each entry of it is retried alone, so
// only the replayed ones fail. A local map also refuses a jti already
// accepted or in flight here before any store access.

// maxReplayBatch bounds one group commit.
const maxReplayBatch = 256

type replayCache struct {
	store store.Store

	mu         sync.Mutex
	inflight   map[string]bool // jtis being committed
	pending    []*replayClaim
	committing bool
}

type replayClaim struct {
	jti   string
	until time.Time
	done  chan error
}

type replayEntry struct {
	Exp int64 `json:"exp"`
}

// claim records jti as used until until, or fails with ErrReplayed when it
// was used before (here or on any replica).
func (c *replayCache) claim(ctx context.Context, jti string, until time.Time) error {
	cl := &replayClaim{jti: jti, until: until, done: make(chan error, 1)}
	c.mu.Lock()
	if c.inflight[jti] {
		c.mu.Unlock()
		return ErrReplayed
	}
	c.inflight[jti] = true
	c.pending = append(c.pending, cl)
	lead := !c.committing
	if lead {
		c.committing = true
	}
	c.mu.Unlock()
	if lead {
		c.commitBatch(ctx)
	}
	select {
	case err := <-cl.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitBatch writes one batch of pending claims and hands leadership on:
// if more claims arrived meanwhile, a new goroutine commits them, so that
// the caller that led this batch is not held up by later ones.
func (c *replayCache) commitBatch(ctx context.Context) {
	c.mu.Lock()
	n := min(len(c.pending), maxReplayBatch)
	batch := c.pending[:n:n]
	c.pending = c.pending[n:]
	c.mu.Unlock()

	results := c.write(context.WithoutCancel(ctx), batch)
	c.mu.Lock()
	for _, cl := range batch {
		// From now on the store answers for this jti.
		delete(c.inflight, cl.jti)
	}
	more := len(c.pending) > 0
	if !more {
		c.committing = false
	}
	c.mu.Unlock()
	for i, cl := range batch {
		cl.done <- results[i]
	}
	if more {
		go c.commitBatch(context.WithoutCancel(ctx))
	}
}

// write stores the batch's entries, returning one result per claim.
func (c *replayCache) write(ctx context.Context, batch []*replayClaim) []error {
	results := make([]error, len(batch))
	cmps := make([]store.Compare, 0, len(batch))
	ops := make([]store.Op, 0, len(batch))
	for _, cl := range batch {
		b, _ := json.Marshal(replayEntry{Exp: cl.until.Unix()})
		cmps = append(cmps, store.Compare{Key: jtiPrefix + cl.jti, Revision: store.MustNotExist})
		ops = append(ops, store.Put(jtiPrefix+cl.jti, b))
	}
	_, err := c.store.Txn(ctx, cmps, ops)
	switch {
	case err == nil:
		return results
	case errors.Is(err, store.ErrConflict) && len(batch) > 1:
		for i := range batch {
			_, err := c.store.Txn(ctx, cmps[i:i+1], ops[i:i+1])
			results[i] = replayResult(err)
		}
		return results
	}
	for i := range results {
		results[i] = replayResult(err)
	}
	return results
}

func replayResult(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrConflict):
		return ErrReplayed
	}
	return fmt.Errorf("recording the assertion id: %w", err)
}

// sweepReplay drops stored replay-cache entries whose time has passed.
func (r *Registry) sweepReplay(ctx context.Context) error {
	now := r.now()
	after := ""
	dropped := 0
	for {
		ents, next, err := r.store.List(ctx, jtiPrefix, after, 500)
		if err != nil {
			return fmt.Errorf("listing the replay cache: %w", err)
		}
		var cmps []store.Compare
		var ops []store.Op
		for _, e := range ents {
			var ent replayEntry
			if json.Unmarshal(e.Value, &ent) == nil && now.Unix() <= ent.Exp {
				continue
			}
			cmps = append(cmps, store.Compare{Key: e.Key, Revision: e.Revision})
			ops = append(ops, store.Delete(e.Key))
		}
		if len(ops) > 0 {
			if _, err := r.store.Txn(ctx, cmps, ops); err != nil && !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("sweeping the replay cache: %w", err)
			}
			dropped += len(ops)
		}
		if next == "" {
			break
		}
		after = next
	}
	if dropped > 0 {
		r.log.Debug("images: swept expired assertion ids", "count", dropped)
	}
	return nil
}
