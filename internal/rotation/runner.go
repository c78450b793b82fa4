package rotation

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/secrets"
	"sigil.dev/sigil/internal/store"
)

// LockKey is the store key whose holder is the one active runner across
// replicas.
const LockKey = "rotation/runner/lock"

// Audit names of the runner's events, as CloudTrail names the events of
// Secrets Manager's own rotation.
const (
	AuditSource            = "secretsmanager.amazonaws.com"
	EventRotationStarted   = "RotationStarted"
	EventRotationSucceeded = "RotationSucceeded"
	EventRotationFailed    = "RotationFailed"
)

// auditErrorCode is the errorCode of RotationFailed events, so that a
// filter on errorCode finds failed rotations.
const auditErrorCode = "RotationFailed"

// maxCause bounds the failure cause recorded with FailRotation and in the
// audit log, in bytes.
const maxCause = 1024

// Defaults of [Config].
const (
	DefaultInterval    = time.Minute
	DefaultConcurrency = 4
	DefaultMinBackoff  = time.Minute
	DefaultMaxBackoff  = 6 * time.Hour
	DefaultClaimTTL    = 15 * time.Minute
	DefaultBatchSize   = 100
)

// Config configures a [Runner]. Secrets, Store, Audit and HolderID are
// required; every other field has the default documented on it.
type Config struct {
	// Secrets is the Secrets Manager service (*secrets.Service).
	Secrets Secrets
	// Store holds the runner lock and, unless Registry is set, the
	// registered rotators.
	Store store.Store
	// Registry resolves RotationLambdaARNs; nil means a Registry over
	// Store with this Config's Region, AccountID, Now, Rand and
	// HTTPClient.
	Registry *Registry
	// Audit receives RotationStarted, RotationSucceeded and RotationFailed
	// events. A rotation whose start cannot be recorded is not run.
	Audit audit.Sink
	// Now is the clock of schedules, claims, backoff and the lock; nil
	// means time.Now.
	Now func() time.Time
	// Rand is the source of backoff jitter and, through the default
	// Registry, of passwords and webhook keys; nil means crypto/rand. It
	// must be safe for concurrent use.
	Rand io.Reader
	// Logger receives one line per rotation outcome (never a secret
	// value); nil discards them.
	Logger *slog.Logger
	// Interval is the time between passes in Run; zero means
	// DefaultInterval.
	Interval time.Duration
	// LockTTL is how long the runner lock lasts without renewal; zero
	// means three Intervals. It must exceed Interval.
	LockTTL time.Duration
	// Concurrency bounds the rotations run at once; zero means
	// DefaultConcurrency.
	Concurrency int
	// HolderID names this replica in the lock and in claims; it must
	// differ between replicas.
	HolderID string
	// MinBackoff and MaxBackoff bound the delay before a failed rotation
	// is retried: MinBackoff doubled per earlier failed attempt, at most
	// MaxBackoff, less up to a quarter of random jitter. Zero means
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// ClaimTTL is how long a claimed rotation belongs to this runner; a
	// rotation interrupted by a crash is retried, with the same token, once
	// its claim expires. It also bounds the wall-clock time of one
	// rotation. Zero means DefaultClaimTTL.
	ClaimTTL time.Duration
	// BatchSize is how many due rotations a pass asks for at a time; zero
	// means DefaultBatchSize.
	BatchSize int
	// HTTPClient sends webhook requests of the default Registry; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// AccountID and Region are the account and region of this server: the
	// default Registry accepts only RotationLambdaARNs naming them, and
	// audit events carry them.
	AccountID, Region string
}

// Runner runs due rotations: one pass every Interval and whenever kicked,
// on the one replica holding the runner lock. It is safe for concurrent
// use.
type Runner struct {
	secrets     Secrets
	st          store.Store
	registry    *Registry
	audit       audit.Sink
	now         func() time.Time
	rand        io.Reader
	log         *slog.Logger
	every       time.Duration
	lockTTL     time.Duration
	concurrency int
	holder      string
	minB, maxB  time.Duration
	claimTTL    time.Duration
	batch       int
	account     string
	region      string

	kick   chan struct{}
	passMu sync.Mutex // one pass at a time
}

// PassResult counts what one pass did.
type PassResult struct {
	// Due counts the due rotations the pass found.
	Due int
	// Succeeded counts rotations that finished: AWSCURRENT moved.
	Succeeded int
	// Failed counts rotations that failed a step and were rescheduled.
	Failed int
	// Skipped counts rotations another runner had claimed or that were no
	// longer due.
	Skipped int
}

// New checks cfg and returns a Runner. It does no I/O.
func New(cfg Config) (*Runner, error) {
	switch {
	case cfg.Secrets == nil:
		return nil, fmt.Errorf("%w: Secrets is required", ErrInvalidConfig)
	case cfg.Store == nil:
		return nil, fmt.Errorf("%w: Store is required", ErrInvalidConfig)
	case cfg.Audit == nil:
		return nil, fmt.Errorf("%w: Audit is required", ErrInvalidConfig)
	case cfg.HolderID == "":
		return nil, fmt.Errorf("%w: HolderID is required", ErrInvalidConfig)
	}
	r := &Runner{
		secrets: cfg.Secrets, st: cfg.Store, registry: cfg.Registry, audit: cfg.Audit,
		now: cfg.Now, rand: cfg.Rand, log: cfg.Logger, every: cfg.Interval, lockTTL: cfg.LockTTL,
		concurrency: cfg.Concurrency, holder: cfg.HolderID, minB: cfg.MinBackoff, maxB: cfg.MaxBackoff,
		claimTTL: cfg.ClaimTTL, batch: cfg.BatchSize, account: cfg.AccountID, region: cfg.Region,
		kick: make(chan struct{}, 1),
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.rand == nil {
		r.rand = rand.Reader
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.every == 0 {
		r.every = DefaultInterval
	}
	if r.lockTTL == 0 {
		r.lockTTL = 3 * r.every
	}
	if r.concurrency == 0 {
		r.concurrency = DefaultConcurrency
	}
	if r.minB == 0 {
		r.minB = DefaultMinBackoff
	}
	if r.maxB == 0 {
		r.maxB = DefaultMaxBackoff
	}
	if r.claimTTL == 0 {
		r.claimTTL = DefaultClaimTTL
	}
	if r.batch == 0 {
		r.batch = DefaultBatchSize
	}
	switch {
	case r.every < 0 || r.lockTTL <= r.every:
		return nil, fmt.Errorf("%w: Interval must be positive and LockTTL above it", ErrInvalidConfig)
	case r.concurrency < 0 || r.batch < 0 || r.claimTTL < 0:
		return nil, fmt.Errorf("%w: Concurrency, BatchSize and ClaimTTL must be positive", ErrInvalidConfig)
	case r.minB < 0 || r.maxB < r.minB:
		return nil, fmt.Errorf("%w: backoff must satisfy 0 < MinBackoff <= MaxBackoff", ErrInvalidConfig)
	}
	if r.registry == nil {
		reg, err := NewRegistry(RegistryConfig{
			Store: cfg.Store, Region: cfg.Region, AccountID: cfg.AccountID,
			Now: r.now, Rand: r.rand, HTTPClient: cfg.HTTPClient,
		})
		if err != nil {
			return nil, err
		}
		r.registry = reg
	}
	return r, nil
}

// Registry returns the registry the runner resolves rotators with, for the
// native API (PutRotator, ...) and RotateSecret's rotator check.
func (r *Runner) Registry() *Registry { return r.registry }

// Kick asks Run for a pass now, as RotateSecret with RotateImmediately
// does. It never blocks; kicks during a pass coalesce into one more pass.
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run makes a pass at once, then every Interval and after every Kick,
// until ctx is done; then it releases the lock if it holds it and returns
// ctx's error. A failed pass is logged and the next one runs as usual.
func (r *Runner) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.release(context.WithoutCancel(ctx))
			return ctx.Err()
		case <-t.C:
		case <-r.kick:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		res, err := r.Pass(ctx)
		switch {
		case errors.Is(err, ErrNotLeader) || ctx.Err() != nil:
		case err != nil:
			r.log.Warn("rotation pass failed", "error", err)
		case res.Due > 0:
			r.log.Info("rotation pass", "due", res.Due, "succeeded", res.Succeeded, "failed", res.Failed, "skipped", res.Skipped)
		}
		t.Reset(r.every)
	}
}

func (r *Runner) release(ctx context.Context) {
	if err := store.ReleaseLock(ctx, r.st, LockKey, r.holder); err != nil && !errors.Is(err, store.ErrLockHeld) {
		r.log.Warn("releasing the rotation runner lock", "error", err)
	}
}

// Pass takes or renews the runner lock and, holding it, runs every due
// rotation, at most Concurrency at a time: it claims each (skipping those
// another runner holds), runs the rotator's four steps and records the
// outcome with FinishRotation or FailRotation. It returns an error
// wrapping [ErrNotLeader] and store.ErrLockHeld, having done nothing, when
// another runner holds the lock. Failed rotations are counted, not
// returned as errors; the error joins the failures of the pass itself
// (listing due rotations, claiming, recording outcomes and audit events).
func (r *Runner) Pass(ctx context.Context) (PassResult, error) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	var (
		res  PassResult
		mu   sync.Mutex
		errs []error
	)
	seen := map[string]bool{}
	for {
		now := r.now()
		if err := store.AcquireLock(ctx, r.st, LockKey, r.holder, r.lockTTL, now); err != nil {
			if errors.Is(err, store.ErrLockHeld) {
				err = fmt.Errorf("%w: %w", ErrNotLeader, err)
			} else {
				err = fmt.Errorf("taking the rotation runner lock: %w", err)
			}
			return res, errors.Join(append(errs, err)...)
		}
		due, err := r.secrets.DueRotations(ctx, now, r.batch)
		if err != nil {
			return res, errors.Join(append(errs, fmt.Errorf("listing due rotations: %w", err))...)
		}
		var fresh []DueRotation
		for _, d := range due {
			if !seen[d.Name] {
				seen[d.Name] = true
				fresh = append(fresh, d)
			}
		}
		res.Due += len(fresh)
		sem := make(chan struct{}, r.concurrency)
		var wg sync.WaitGroup
		for _, d := range fresh {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				out, err := r.rotate(ctx, d)
				mu.Lock()
				defer mu.Unlock()
				switch out {
				case outcomeSucceeded:
					res.Succeeded++
				case outcomeFailed:
					res.Failed++
				case outcomeSkipped:
					res.Skipped++
				}
				if err != nil {
					errs = append(errs, err)
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return res, errors.Join(append(errs, err)...)
		}
		// A full batch may hide more; a batch of nothing new means the
		// rest is what this pass already handled.
		if len(due) < r.batch || len(fresh) == 0 {
			return res, errors.Join(errs...)
		}
	}
}

type outcome int

const (
	outcomeNone outcome = iota
	outcomeSucceeded
	outcomeFailed
	outcomeSkipped
)

// rotate runs one due rotation. The error reports failures of the
// runner's own bookkeeping, not of the rotation.
func (r *Runner) rotate(ctx context.Context, d DueRotation) (outcome, error) {
	start := r.now()
	c, err := r.secrets.ClaimRotation(ctx, d.Name, r.holder, start, start.Add(r.claimTTL))
	if errors.Is(err, secrets.ErrRotationClaimed) {
		return outcomeSkipped, nil
	}
	if err != nil {
		return outcomeNone, fmt.Errorf("claiming the rotation of %q: %w", d.Name, err)
	}
	if c.Name == "" {
		c.Name = d.Name
	}
	job := Job{Name: c.Name, ARN: c.ARN, Token: c.Token, Secrets: r.secrets}
	if err := r.audit.Record(ctx, r.event(EventRotationStarted, c, "", "")); err != nil {
		// Fail closed: nothing changes unless its start is on record.
		cause := "the audit log could not record the start of the rotation"
		r.log.Error("rotation not started: recording its audit event failed", "secret", job.Name, "error", err)
		return outcomeFailed, errors.Join(fmt.Errorf("recording %s of %q: %w", EventRotationStarted, job.Name, err),
			r.fail(ctx, c, StepCreate, cause, false))
	}
	rot, step, err := r.runSteps(ctx, c.Rotator, job)
	if err == nil {
		if ferr := r.secrets.FinishRotation(ctx, job.Name, job.Token, r.now()); ferr != nil {
			step, err = StepFinish, fmt.Errorf("moving AWSCURRENT: %w", ferr)
		}
	}
	if err != nil {
		cause := fmt.Sprintf("%s: %v", step, err)
		interrupted := ctx.Err() != nil
		if interrupted {
			cause = fmt.Sprintf("%s: interrupted: the rotation runner stopped", step)
		}
		if rv, ok := rot.(Reverter); ok && step != StepCreate {
			if rerr := r.revert(ctx, rv, job); rerr != nil {
				cause += "; undoing setSecret failed too: " + rerr.Error()
			}
		}
		cause = truncate(cause)
		r.log.Warn("rotation failed; will retry", "secret", job.Name, "step", string(step), "attempts", c.Attempts+1, "cause", cause)
		ferr := r.fail(ctx, c, step, cause, interrupted)
		if aerr := r.audit.Record(context.WithoutCancel(ctx), r.event(EventRotationFailed, c, step, cause)); aerr != nil {
			ferr = errors.Join(ferr, fmt.Errorf("recording %s of %q: %w", EventRotationFailed, job.Name, aerr))
		}
		return outcomeFailed, ferr
	}
	r.log.Info("rotation succeeded", "secret", job.Name, "version", job.Token)
	if err := r.audit.Record(ctx, r.event(EventRotationSucceeded, c, "", "")); err != nil {
		return outcomeSucceeded, fmt.Errorf("recording %s of %q: %w", EventRotationSucceeded, job.Name, err)
	}
	return outcomeSucceeded, nil
}

// runSteps resolves the rotator and runs the four steps, within ClaimTTL
// of wall-clock time so that a rotation does not outlive its claim. It
// returns the rotator (nil if it did not resolve) and the step that
// failed.
func (r *Runner) runSteps(ctx context.Context, arn string, job Job) (Rotator, Step, error) {
	ctx, cancel := context.WithTimeout(ctx, r.claimTTL)
	defer cancel()
	rot, err := r.registry.Resolve(ctx, arn)
	if err != nil {
		return nil, StepCreate, fmt.Errorf("resolving the rotator: %w", err)
	}
	for _, step := range steps {
		if err := rot.Step(ctx, step, job); err != nil {
			return rot, step, err
		}
	}
	return rot, "", nil
}

// revertTimeout bounds one Revert, which runs even when the runner is
// stopping.
const revertTimeout = time.Minute

// revert asks rv to undo setSecret after a failed rotation. It first
// renews the claim for the revert's duration: if another runner has taken
// the rotation over (the steps ran past ClaimTTL), its retry must not be
// undone, so nothing is reverted.
func (r *Runner) revert(ctx context.Context, rv Reverter, job Job) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revertTimeout)
	defer cancel()
	now := r.now()
	if _, err := r.secrets.ClaimRotation(ctx, job.Name, r.holder, now, now.Add(revertTimeout+time.Minute)); err != nil {
		r.log.Warn("not undoing setSecret: the rotation's claim was lost to another runner", "secret", job.Name, "error", err)
		return fmt.Errorf("not undone, the claim was lost: %w", err)
	}
	if err := rv.Revert(ctx, job); err != nil {
		r.log.Error("undoing setSecret after a failed rotation failed: AWSCURRENT may not log in until the retry", "secret", job.Name, "error", err)
		return err
	}
	return nil
}

// fail records a failed attempt with a retry after the backoff, or at once
// when the runner was interrupted (the next leader should pick it up).
func (r *Runner) fail(ctx context.Context, c DueRotation, step Step, cause string, now bool) error {
	retry := r.now()
	if !now {
		retry = retry.Add(r.backoff(c.Attempts))
	}
	err := r.secrets.FailRotation(context.WithoutCancel(ctx), c.Name, c.Token, string(step), cause, retry)
	switch {
	case errors.Is(err, secrets.ErrRotationClaimed):
		// Cancelled, finished or deleted meanwhile: nothing to retry.
		r.log.Info("rotation ended elsewhere while it ran", "secret", c.Name, "error", err)
		return nil
	case err != nil:
		return fmt.Errorf("recording the failed rotation of %q: %w", c.Name, err)
	}
	return nil
}

// backoff returns the delay before retrying a rotation that has failed
// attempts times before this failure: MinBackoff doubled per attempt, at
// most MaxBackoff, less up to a quarter of jitter so that secrets failing
// together do not retry together.
func (r *Runner) backoff(attempts int) time.Duration {
	d := r.minB
	for i := 0; i < attempts && d < r.maxB; i++ {
		d *= 2
	}
	d = min(d, r.maxB)
	var b [8]byte
	if q := d / 4; q > 0 {
		if _, err := io.ReadFull(r.rand, b[:]); err == nil {
			d -= time.Duration(binary.BigEndian.Uint64(b[:]) % uint64(q))
		}
	}
	return d
}

// rotationParams are an event's requestParameters.
type rotationParams struct {
	SecretID           string `json:"secretId"`
	ClientRequestToken string `json:"clientRequestToken,omitempty"`
	RotationLambdaARN  string `json:"rotationLambdaARN,omitempty"`
	Step               string `json:"step,omitempty"`
}

// event builds the audit event of a rotation.
func (r *Runner) event(name string, c DueRotation, step Step, cause string) *audit.Event {
	ev := &audit.Event{
		Time:      r.now(),
		Source:    AuditSource,
		Action:    name,
		Resources: []string{c.ARN},
		Allowed:   true,
		Reason:    "service",
		AccountID: r.account,
		Region:    r.region,
		Identity:  &audit.UserIdentity{Type: "AWSService", PrincipalID: AuditSource, AccountID: r.account},
		EventType: audit.EventTypeService,
		RequestParameters: rotationParams{
			SecretID: c.ARN, ClientRequestToken: c.Token, RotationLambdaARN: c.Rotator, Step: string(step),
		},
	}
	if cause != "" {
		ev.ErrorCode, ev.ErrorMessage = auditErrorCode, cause
	}
	return ev
}

// truncate cuts s to maxCause bytes at a character boundary.
func truncate(s string) string {
	if len(s) <= maxCause {
		return s
	}
	s = s[:maxCause]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
