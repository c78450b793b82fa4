package dynamic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"sigil.dev/sigil/internal/store"
)

// reaperLockKey is the store key whose holder is the one active reaper.
const reaperLockKey = "dynamic/reaper/lock"

// lockRenewEvery is how many leases a pass handles between renewals of the
// lock.
const lockRenewEvery = 100

// defaultConcurrency is ReaperOptions.Concurrency's zero value: twice the
// default connection pool of a PostgresEngine (MaxConns 4), so that the
// pool stays busy while the other half of the workers write lease records
// to the store.
const defaultConcurrency = 8

// startBatch is how many leases a pass moves to revoking in one store
// transaction: far fewer than etcd's default limit of 128 operations per
// transaction, and a fraction of lockRenewEvery.
const startBatch = 25

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
	// another replica is not disturbed; zero means one minute. Leases this
	// replica (Leases' Options.Replica equal to ID) issued before the
	// reaper was made need no grace: after a restart they are undone on
	// the first pass.
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
	// OnRevoke, when set, is called after every revocation the reaper
	// attempts, with the lease as it was before and the failure if any;
	// the server audits them through it. With Concurrency above one it is
	// called from several goroutines at once and must be safe for
	// concurrent use.
	OnRevoke func(ctx context.Context, l Lease, err error)
	// Concurrency is how many leases a pass revokes at once; each
	// revocation is still one lease at a time through its engine, whose
	// own connection pool (PostgresConfig.MaxConns, Database.MaxConns)
	// bounds how many of them reach one database together. Zero means 8;
	// one revokes strictly in order.
	Concurrency int
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
	notify  func(ctx context.Context, l Lease, err error)
	workers int
	// born is when the reaper was made; see leftByEarlierRun.
	born time.Time
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
		notify: opts.OnRevoke, workers: opts.Concurrency,
	}
	if r.now == nil {
		r.now = opts.Leases.now
	}
	r.born = r.now()
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
	if r.workers == 0 {
		r.workers = defaultConcurrency
	}
	if r.every < 0 || r.lockTTL <= r.every || r.grace < 0 || r.minB < 0 || r.maxB < 0 {
		return nil, fmt.Errorf("%w: reaper intervals must be positive and LockTTL above Interval", ErrInvalidConfig)
	}
	if r.workers < 0 {
		return nil, fmt.Errorf("%w: negative reaper concurrency", ErrInvalidConfig)
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
//
// Up to Concurrency leases are handled at once, each revocation one lease
// at a time through its engine; expired and stale creating leases are
// moved to revoking in batches (one store transaction each) before their
// revocations are handed out. The lock is renewed before every
// lockRenewEvery-th listed lease; if it was lost, or ctx ends, or a store
// operation fails, no further lease is started, the ones in flight
// finish, and Pass returns the error with the counts of what was done,
// which are exact either way.
func (r *Reaper) Pass(ctx context.Context) (PassResult, error) {
	if err := r.acquire(ctx); err != nil {
		return PassResult{}, err
	}
	leases, err := r.leases.List(ctx, "")
	if err != nil {
		return PassResult{}, err
	}
	p := &pass{r: r, now: r.now()}
	sem := make(chan struct{}, r.workers)
	var wg sync.WaitGroup
	// dispatch hands l to a worker once one is free.
	dispatch := func(l Lease) bool {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			p.fail(ctx.Err())
		}
		if p.failed() {
			return false
		}
		wg.Go(func() {
			defer func() { <-sem }()
			p.handle(ctx, l)
		})
		return true
	}
	// Active and creating leases are moved to revoking in batches, one
	// store transaction (one fsync) for many, before their revocations
	// are handed out one by one.
	var batch []Lease
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		started, err := r.startAll(ctx, batch, p.now)
		batch = batch[:0]
		if err != nil {
			p.fail(err)
			return false
		}
		for _, l := range started {
			if !dispatch(l) {
				return false
			}
		}
		return true
	}
leases:
	for i, l := range leases {
		if p.failed() {
			break
		}
		if err := ctx.Err(); err != nil {
			p.fail(err)
			break
		}
		// A long pass keeps the lock alive, and stops if it was lost.
		if i > 0 && i%lockRenewEvery == 0 {
			if !flush() {
				break
			}
			if err := r.acquire(ctx); err != nil {
				p.fail(err)
				break
			}
		}
		if !p.due(l) {
			continue
		}
		switch l.State {
		case StateActive, StateCreating:
			if batch = append(batch, l); len(batch) == startBatch && !flush() {
				break leases
			}
		default:
			if !dispatch(l) {
				break leases
			}
		}
	}
	if !p.failed() {
		flush()
	}
	wg.Wait()
	return p.result()
}

// leftByEarlierRun reports whether a creating lease was issued by this
// replica before this reaper was made: a previous run of the process,
// which crashed or stopped mid-creation. No creation of this run can be
// behind it, so it needs no grace period.
func (r *Reaper) leftByEarlierRun(l Lease) bool {
	return l.Creator != "" && l.Creator == r.id && l.Issued.Before(r.born)
}

// pass is the state one Pass shares between its workers.
type pass struct {
	r   *Reaper
	now time.Time

	mu  sync.Mutex
	res PassResult
	err error // the first error that stops the pass
}

// due reports whether l needs work in this pass, judged from the listing;
// startAll and purge check again inside their transactions.
func (p *pass) due(l Lease) bool {
	now := p.now
	switch l.State {
	case StateActive:
		return !now.Before(l.Expires)
	case StateCreating:
		return p.r.leftByEarlierRun(l) || !now.Before(l.Issued.Add(p.r.grace))
	case StateRevoking:
		return !now.Before(l.NextAttempt)
	case StateRevoked:
		return p.r.keep > 0 && !now.Before(l.Revoked.Add(p.r.keep))
	}
	return false
}

// handle does one due lease's work: purge a revoked record, or carry out
// the revocation of a lease that is revoking (retried, or just started by
// startAll from active or creating).
func (p *pass) handle(ctx context.Context, l Lease) {
	r := p.r
	if l.State == StateRevoked {
		if l.FromCreating {
			// The user did not exist when the lease was undone, but a
			// creation still running somewhere (past the grace period)
			// may have created it since: remove it before the record,
			// the last trace of it, goes.
			if err := r.leases.revokeUser(ctx, l); errors.Is(err, ErrUnknownSecret) {
				// The secret and its configuration are gone: nothing can
				// reach its database any more.
				r.log.Warn("purging an undone lease whose dynamic secret no longer exists; its user was not rechecked", "lease", l.ID, "username", l.Username)
			} else if err != nil {
				r.log.Warn("rechecking the user of an undone lease before purging it failed; will retry", "lease", l.ID, "username", l.Username, "error", err)
				p.record(func(res *PassResult) { res.Failed++ }, nil)
				return
			}
		}
		ok, err := r.leases.purge(ctx, l.ID, p.now.Add(-r.keep).Add(time.Nanosecond))
		p.record(func(res *PassResult) {
			if ok {
				res.Purged++
			}
		}, err)
		return
	}
	err := r.leases.revoke(ctx, l.ID, r.minB, r.maxB)
	if r.notify != nil {
		r.notify(ctx, l, err)
	}
	if err != nil {
		r.log.Warn("revoking lease failed; will retry", "lease", l.ID, "username", l.Username, "error", err)
		p.record(func(res *PassResult) { res.Failed++ }, nil)
		return
	}
	r.log.Info("revoked lease", "lease", l.ID, "username", l.Username, "was", string(l.State))
	p.record(func(res *PassResult) { res.Revoked++ }, nil)
}

// record applies count to the result and keeps err if it is the first.
func (p *pass) record(count func(*PassResult), err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if count != nil {
		count(&p.res)
	}
	if err != nil && p.err == nil {
		p.err = err
	}
}

func (p *pass) fail(err error) { p.record(nil, err) }

func (p *pass) failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err != nil
}

func (p *pass) result() (PassResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.res, p.err
}

// startAll moves each of leases (active or creating, as listed) that is
// still in its listed state, and for an active one not renewed past now,
// to revoking, in one store transaction, so that a concurrent activation
// of a creating lease fails and undoes itself. It schedules their retry
// revokeInFlight later in case a revocation never finishes, and returns
// the leases it moved, as listed. Leases that are gone are left out.
func (r *Reaper) startAll(ctx context.Context, leases []Lease, now time.Time) ([]Lease, error) {
	var started []Lease
	_, err := store.Update(ctx, r.leases.st, func(v *store.View) error {
		started = started[:0]
		// As for Leases.Revoke: a reaper that takes the lock over while
		// these revocations are in flight leaves them alone until then,
		// and finishes any that this one does not.
		retry := r.now().UTC().Add(revokeInFlight)
		for _, l := range leases {
			rec, err := getRecord(v, l.ID)
			if errors.Is(err, ErrLeaseNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if rec.State != l.State || (l.State == StateActive && now.Before(rec.Expires)) {
				continue
			}
			if rec.State == StateCreating {
				rec.FromCreating = true
			}
			rec.State = StateRevoking
			rec.NextAttempt = retry
			if err := putRecord(v, rec); err != nil {
				return err
			}
			started = append(started, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("starting the revocation of %d leases: %w", len(leases), err)
	}
	return started, nil
}

// acquire takes the lock if it is free or expired, or renews it if this
// reaper holds it (store.AcquireLock: compare-and-swap on the lock key).
func (r *Reaper) acquire(ctx context.Context) error {
	err := store.AcquireLock(ctx, r.leases.st, reaperLockKey, r.id, r.lockTTL, r.now())
	if errors.Is(err, store.ErrLockHeld) {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return err
}

// release deletes the lock if this reaper holds it, so that another
// replica can take over without waiting for it to expire.
func (r *Reaper) release(ctx context.Context) {
	if err := store.ReleaseLock(ctx, r.leases.st, reaperLockKey, r.id); err != nil {
		r.log.Warn("releasing reaper lock", "error", err)
	}
}
