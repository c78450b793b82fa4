package dynamic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"sigil.dev/sigil/internal/store"
)

// reaperLockKey is the store key whose holder is the one active reaper.
const reaperLockKey = "dynamic/reaper/lock"

// lockRenewEvery is how many leases a pass handles between renewals of the
// lock.
const lockRenewEvery = 100

// ReaperOptions configures a [Reaper]. Zero values are documented per field.
type ReaperOptions struct {
	// Leases is what the reaper cleans up. Required.
	Leases *Leases
	// ID names this replica in the lock; it must differ between replicas.
	// Required.
	ID string
	// Now is the clock; nil means the clock of Leases.
	Now func() time.Time
	// Interval is the time between passes in Run; zero means ten seconds.
	Interval time.Duration
	// LockTTL is how long the lock stays held without renewal; zero means
	// three Intervals. It must exceed Interval.
	LockTTL time.Duration
	// CreatingGrace is how old a lease left in state creating must be
	// before the reaper undoes it, so that a creation still in flight on
	// another replica is not disturbed; zero means one minute.
	CreatingGrace time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// failed revocations of one lease; zero means one second and ten
	// minutes.
	MinBackoff, MaxBackoff time.Duration
	// Retention is how long the record of a revoked lease is kept before
	// a pass deletes it; zero means 24 hours, negative keeps records forever.
	Retention time.Duration
	// Logger receives one line per revocation and failure; nil means the
	// logger of Leases.
	Logger *slog.Logger
}

// Reaper revokes expired leases and cleans up after crashes. Several
// replicas may run one each over the same store: only the holder of the
// lock does work in a pass.
type Reaper struct {
	leases  *Leases
	id      string
	now     func() time.Time
	every   time.Duration
	lockTTL time.Duration
	grace   time.Duration
	minB    time.Duration
	maxB    time.Duration
	keep    time.Duration
	log     *slog.Logger
}

// lock is the stored value of the reaper lock.
type lock struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// NewReaper checks opts and returns a Reaper.
func NewReaper(opts ReaperOptions) (*Reaper, error) {
	if opts.Leases == nil || opts.ID == "" {
		return nil, fmt.Errorf("%w: a reaper needs leases and an id", ErrInvalidConfig)
	}
	r := &Reaper{
		leases: opts.Leases, id: opts.ID, now: opts.Now, every: opts.Interval,
		lockTTL: opts.LockTTL, grace: opts.CreatingGrace,
		minB: opts.MinBackoff, maxB: opts.MaxBackoff, keep: opts.Retention, log: opts.Logger,
	}
	if r.now == nil {
		r.now = opts.Leases.now
	}
	if r.log == nil {
		r.log = opts.Leases.log
	}
	if r.every == 0 {
		r.every = 10 * time.Second
	}
	if r.lockTTL == 0 {
		r.lockTTL = 3 * r.every
	}
	if r.grace == 0 {
		r.grace = time.Minute
	}
	if r.keep == 0 {
		r.keep = 24 * time.Hour
	}
	if r.every < 0 || r.lockTTL <= r.every || r.grace < 0 || r.minB < 0 || r.maxB < 0 {
		return nil, fmt.Errorf("%w: reaper intervals must be positive and LockTTL above Interval", ErrInvalidConfig)
	}
	return r, nil
}

// Run makes a pass at once and then every Interval until ctx is done, and
// returns ctx's error. A pass that fails is logged and retried at the next
// interval. On return Run releases the lock if it holds it.
func (r *Reaper) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.release(context.WithoutCancel(ctx))
			return ctx.Err()
		case <-t.C:
		}
		if _, err := r.Pass(ctx); err != nil && !errors.Is(err, ErrNotLeader) && ctx.Err() == nil {
			r.log.Warn("reaper pass failed", "error", err)
		}
		t.Reset(r.every)
	}
}

// PassResult counts what one pass did.
type PassResult struct {
	// Revoked counts leases revoked in this pass.
	Revoked int
	// Failed counts revocations that failed and were rescheduled.
	Failed int
	// Purged counts records of revoked leases deleted after Retention.
	Purged int
}

// Pass takes or renews the lock and, if this reaper holds it, revokes
// every expired active lease, retries every revoking lease whose backoff
// has passed, and undoes every lease left creating for longer than the
// grace period (removing the user if it exists, then marking the lease
// revoked). It also deletes the records of leases revoked longer than
// Retention ago. It returns an error wrapping [ErrNotLeader] if another
// replica holds the lock.
func (r *Reaper) Pass(ctx context.Context) (PassResult, error) {
	var res PassResult
	if err := r.acquire(ctx); err != nil {
		return res, err
	}
	leases, err := r.leases.List(ctx, "")
	if err != nil {
		return res, err
	}
	now := r.now()
	for i, l := range leases {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		// A long pass keeps the lock alive, and stops if it was lost.
		if i > 0 && i%lockRenewEvery == 0 {
			if err := r.acquire(ctx); err != nil {
				return res, err
			}
		}
		switch {
		case l.State == StateActive && !now.Before(l.Expires),
			l.State == StateCreating && !now.Before(l.Issued.Add(r.grace)):
			ok, err := r.start(ctx, l.ID, l.State, now)
			if err != nil {
				return res, err
			}
			if !ok {
				continue
			}
		case l.State == StateRevoking && !now.Before(l.NextAttempt):
		case l.State == StateRevoked && r.keep > 0 && !now.Before(l.Revoked.Add(r.keep)):
			ok, err := r.leases.purge(ctx, l.ID, now.Add(-r.keep).Add(time.Nanosecond))
			if err != nil {
				return res, err
			}
			if ok {
				res.Purged++
			}
			continue
		default:
			continue
		}
		if err := r.leases.revoke(ctx, l.ID, r.minB, r.maxB); err != nil {
			res.Failed++
			r.log.Warn("revoking lease failed; will retry", "lease", l.ID, "username", l.Username, "error", err)
			continue
		}
		res.Revoked++
		r.log.Info("revoked lease", "lease", l.ID, "username", l.Username, "was", string(l.State))
	}
	return res, nil
}

// start moves a lease from state from to revoking, so that a concurrent
// activation of a creating lease fails and undoes itself. It reports false,
// changing nothing, if the lease has meanwhile left state from, was renewed
// past now, or is gone.
func (r *Reaper) start(ctx context.Context, id string, from State, now time.Time) (bool, error) {
	started := false
	_, err := store.Update(ctx, r.leases.st, func(v *store.View) error {
		started = false
		rec, err := getRecord(v, id)
		if err != nil {
			return err
		}
		if rec.State != from || (from == StateActive && now.Before(rec.Expires)) {
			return nil
		}
		rec.State = StateRevoking
		started = true
		return putRecord(v, rec)
	})
	if errors.Is(err, ErrLeaseNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("starting revocation of lease %q: %w", id, err)
	}
	return started, nil
}

// acquire takes the lock if it is free or expired, or renews it if this
// reaper holds it, with compare-and-swap on the lock key's revision.
func (r *Reaper) acquire(ctx context.Context) error {
	_, err := store.Update(ctx, r.leases.st, func(v *store.View) error {
		now := r.now()
		e, err := v.Get(reaperLockKey)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return fmt.Errorf("reading reaper lock: %w", err)
		default:
			var cur lock
			if err := json.Unmarshal(e.Value, &cur); err != nil {
				return fmt.Errorf("decoding reaper lock: %w", err)
			}
			if cur.Holder != r.id && now.Before(cur.Expires) {
				return fmt.Errorf("%w: held by %q until %s", ErrNotLeader, cur.Holder, cur.Expires.Format(time.RFC3339))
			}
		}
		b, err := json.Marshal(lock{Holder: r.id, Expires: now.Add(r.lockTTL)})
		if err != nil {
			return fmt.Errorf("encoding reaper lock: %w", err)
		}
		v.Put(reaperLockKey, b)
		return nil
	})
	return err
}

// release deletes the lock if this reaper holds it, so that another
// replica can take over without waiting for it to expire.
func (r *Reaper) release(ctx context.Context) {
	_, err := store.Update(ctx, r.leases.st, func(v *store.View) error {
		e, err := v.Get(reaperLockKey)
		if err != nil {
			return nil
		}
		var cur lock
		if json.Unmarshal(e.Value, &cur) == nil && cur.Holder == r.id {
			v.Delete(reaperLockKey)
		}
		return nil
	})
	if err != nil {
		r.log.Warn("releasing reaper lock", "error", err)
	}
}
