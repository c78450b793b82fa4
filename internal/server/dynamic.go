package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/dynamic"
	"sigil.dev/sigil/internal/secrets"
	"sigil.dev/sigil/internal/store"
)

// Dynamic database credentials: a dynamic secret is a Secrets Manager
// secret whose GetSecretValue is answered by internal/dynamic with a
// database user issued for the caller's session (dynamicIssuer). Databases,
// dynamic secret configurations and leases are managed through the native
// API below, authorized with sigil:* actions on
// arn:aws:sigil:REGION:ACCOUNT:database/NAME, the secret's ARN, and
// arn:aws:sigil:REGION:ACCOUNT:lease/SECRET/ID.

// dynamicIssuer answers GetSecretValue for dynamic secrets.
type dynamicIssuer struct {
	catalog *dynamic.Catalog
	leases  *dynamic.Leases
	log     *slog.Logger

	// encoded holds the SecretString of recently served leases, keyed by
	// lease id and expiry (a renewal changes the value), so that a session
	// reading its lease again is not re-encoded. It only spares work: the
	// lease is read from the store on every call first.
	mu      sync.Mutex
	encoded map[encodedKey]encodedValue
}

// encodedValue is a lease's SecretString and its JSON string encoding.
type encodedValue struct {
	str  string
	json []byte
}

type encodedKey struct {
	lease   string
	expires int64
}

// maxEncoded bounds dynamicIssuer.encoded; past it the map starts over.
const maxEncoded = 4096

var _ secrets.DynamicIssuer = (*dynamicIssuer)(nil)

// DynamicCredential is the SecretString of a dynamic database secret: the
// fields of AWS's RDS secret JSON, which application code already reads,
// and the expiry.
type DynamicCredential struct {
	Engine   string    `json:"engine"`
	Host     string    `json:"host"`
	Port     int       `json:"port"`
	DBName   string    `json:"dbname,omitempty"`
	Username string    `json:"username"`
	Password string    `json:"password"`
	Expires  time.Time `json:"expires"`
}

// wireEngine is the engine name AWS's secret JSON uses.
func wireEngine(e string) string {
	if e == dynamic.EnginePostgres {
		return "postgres"
	}
	return e
}

// leaseVersionID shows a lease id (SECRET/32 hex digits) as a UUID, the
// shape of a Secrets Manager VersionId.
func leaseVersionID(id string) string {
	h := id[strings.LastIndexByte(id, '/')+1:]
	if len(h) != 32 {
		return h
	}
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (d *dynamicIssuer) IssueDynamic(ctx context.Context, req secrets.DynamicRequest) (secrets.DynamicValue, error) {
	lease, cred, err := d.leases.Issue(ctx, req.Secret, req.Session)
	if err != nil {
		d.log.ErrorContext(ctx, "issuing a dynamic database user failed", "secret", req.Secret, "request_id", req.RequestID, "err", err)
		switch {
		case errors.Is(err, dynamic.ErrStatement), errors.Is(err, dynamic.ErrTemplate), errors.Is(err, dynamic.ErrUnsafeValue):
			return secrets.DynamicValue{}, awsproto.Errorf("InternalServiceError", http.StatusInternalServerError,
				"the database refused to create a user for %s; the server log for this request id has the cause", req.Secret)
		case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed), errors.Is(err, store.ErrConflict):
			return secrets.DynamicValue{}, err
		}
		return secrets.DynamicValue{}, awsproto.Internal()
	}
	key := encodedKey{lease: lease.ID, expires: cred.Expires.UnixNano()}
	d.mu.Lock()
	ev, ok := d.encoded[key]
	d.mu.Unlock()
	if !ok {
		b, err := json.Marshal(DynamicCredential{
			Engine: wireEngine(lease.Connection.Engine), Host: lease.Connection.Host, Port: lease.Connection.Port,
			DBName: lease.Connection.DBName, Username: cred.Username, Password: cred.Password, Expires: cred.Expires.UTC(),
		})
		if err != nil {
			return secrets.DynamicValue{}, err
		}
		ev = encodedValue{str: string(b)}
		ev.json = secrets.QuotedJSON(ev.str)
		d.mu.Lock()
		if d.encoded == nil || len(d.encoded) >= maxEncoded {
			d.encoded = make(map[encodedKey]encodedValue)
		}
		d.encoded[key] = ev
		d.mu.Unlock()
	}
	return secrets.DynamicValue{VersionID: leaseVersionID(lease.ID), String: ev.str, JSON: ev.json, Created: lease.Issued}, nil
}

// PurgedDynamic revokes every lease of a purged dynamic secret and then
// drops its configuration. If a revocation fails the configuration stays,
// so the reaper can still revoke the rest when they expire.
func (d *dynamicIssuer) PurgedDynamic(ctx context.Context, name string) {
	n, err := revokeSecretLeases(ctx, d.leases, name)
	if err != nil {
		d.log.WarnContext(ctx, "revoking the leases of a purged dynamic secret failed; the reaper revokes them as they expire", "secret", name, "revoked", n, "err", err)
		return
	}
	if err := d.catalog.DeleteSecret(ctx, name); err != nil && !errors.Is(err, dynamic.ErrUnknownSecret) {
		d.log.WarnContext(ctx, "dropping the configuration of a purged dynamic secret failed", "secret", name, "err", err)
	}
	d.log.InfoContext(ctx, "purged dynamic secret", "secret", name, "leases_revoked", n)
}

// liveLeases returns the leases of dynamic secret name (not those of
// secrets whose names merely start with it) that are not revoked.
func liveLeases(ctx context.Context, leases *dynamic.Leases, name string) ([]dynamic.Lease, error) {
	all, err := leases.List(ctx, name+"/")
	if err != nil {
		return nil, err
	}
	var out []dynamic.Lease
	for _, l := range all {
		if l.Secret == name && l.State != dynamic.StateRevoked {
			out = append(out, l)
		}
	}
	return out, nil
}

// revokeSecretLeases revokes every live lease of dynamic secret name and
// returns how many it revoked; it stops at the first failure.
func revokeSecretLeases(ctx context.Context, leases *dynamic.Leases, name string) (int, error) {
	live, err := liveLeases(ctx, leases, name)
	if err != nil {
		return 0, err
	}
	return leases.RevokeAll(ctx, live)
}

// auditRevocation records a revocation the reaper made: an AwsServiceEvent
// by sigil itself.
func (s *Server) auditRevocation(sink audit.Sink, accountID string) func(context.Context, dynamic.Lease, error) {
	return func(ctx context.Context, l dynamic.Lease, err error) {
		ev := &audit.Event{
			Time:      s.now(),
			Source:    "sigil",
			Action:    "RevokeLease",
			Resources: []string{s.leaseARN(accountID, l.ID)},
			Allowed:   true,
			Reason:    "lease expired",
			Identity:  &audit.UserIdentity{Type: "AWSService", PrincipalID: "sigil"},
			EventType: audit.EventTypeService,
			AccountID: accountID,
			RequestParameters: map[string]string{
				"leaseId": l.ID, "username": l.Username, "state": string(l.State),
			},
		}
		if l.State == dynamic.StateCreating {
			ev.Reason = "creation interrupted"
		}
		if err != nil {
			ev.ErrorCode, ev.ErrorMessage = "RevocationFailed", err.Error()
		}
		if aerr := sink.Record(ctx, ev); aerr != nil {
			s.log.Error("recording a lease revocation in the audit log failed", "lease", l.ID, "err", aerr)
		}
	}
}

func (s *Server) leaseARN(account, id string) string {
	return "arn:aws:sigil:" + s.cfg.Region + ":" + account + ":lease/" + id
}

func (s *Server) databaseARN(account, name string) string {
	return "arn:aws:sigil:" + s.cfg.Region + ":" + account + ":database/" + name
}

// dynamicWireError maps internal/dynamic's errors to the JSON 1.1 wire.
func dynamicWireError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dynamic.ErrInvalidConfig), errors.Is(err, dynamic.ErrTemplate), errors.Is(err, dynamic.ErrUnsafeValue):
		return awsproto.InvalidParameter("%v", err)
	case errors.Is(err, dynamic.ErrDatabaseNotFound), errors.Is(err, dynamic.ErrLeaseNotFound), errors.Is(err, dynamic.ErrUnknownSecret):
		return awsproto.ResourceNotFound("%v", err)
	case errors.Is(err, dynamic.ErrInUse), errors.Is(err, dynamic.ErrLeaseNotActive):
		return awsproto.Errorf("InvalidRequestException", http.StatusBadRequest, "%v", err)
	case errors.Is(err, secrets.ErrNotDynamic):
		return awsproto.Errorf("ResourceExistsException", http.StatusBadRequest, "%v", err)
	}
	return err
}

// Databases.

// DatabaseRequest is the body of POST /v1/databases/put.
type DatabaseRequest struct {
	dynamic.Database
	// Verify connects with the given login before storing it.
	Verify bool `json:"verify,omitempty"`
}

// NameRequest names one object.
type NameRequest struct {
	Name string `json:"name"`
}

// DatabasesResponse lists databases.
type DatabasesResponse struct {
	Databases []dynamic.Database `json:"databases"`
}

func (s *Server) handlePutDatabase(w http.ResponseWriter, r *http.Request) {
	var req DatabaseRequest
	c := s.beginNative(w, r, "sigil:PutDatabase", false, &req)
	if c == nil || !c.authorize(s.databaseARN(c.svc.account.ID, req.Name)) {
		return
	}
	ctx := r.Context()
	if err := s.refuseMovingLiveDatabase(ctx, c, req.Database); err != nil {
		c.finish(nil, err)
		return
	}
	if err := c.svc.catalog.PutDatabase(ctx, req.Database); err != nil {
		c.finish(nil, dynamicWireError(err))
		return
	}
	if req.Verify {
		if err := c.svc.catalog.Check(ctx, req.Name); err != nil {
			s.log.Warn("database registered but the connection check failed", "database", req.Name, "err", err)
			c.finish(nil, awsproto.InvalidParameter("database %s was stored, but connecting to it failed: %v", req.Name, err))
			return
		}
	}
	db, err := c.svc.catalog.Database(ctx, req.Name)
	c.finish(db, dynamicWireError(err))
}

// refuseMovingLiveDatabase refuses a registration that changes where a
// database is (host, port, dbname) while users issued on it are live:
// revocation would then look for them in the wrong place, find nothing,
// and leave them working.
func (s *Server) refuseMovingLiveDatabase(ctx context.Context, c *nativeCall, db dynamic.Database) error {
	old, err := c.svc.catalog.Database(ctx, db.Name)
	if errors.Is(err, dynamic.ErrDatabaseNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	port := db.Port
	if port == 0 {
		port = old.Port
	}
	if old.Host == db.Host && old.Port == port && old.DBName == db.DBName {
		return nil
	}
	cfgs, err := c.svc.catalog.Secrets(ctx)
	if err != nil {
		return err
	}
	for _, cfg := range cfgs {
		if cfg.Database != db.Name {
			continue
		}
		live, err := liveLeases(ctx, c.svc.leases, cfg.Secret)
		if err != nil {
			return err
		}
		if len(live) > 0 {
			return awsproto.Errorf("InvalidRequestException", http.StatusBadRequest,
				"database %s has %d live users of %s; revoke them first (sigil lease revoke-prefix %s/) before moving it", db.Name, len(live), cfg.Secret, cfg.Secret)
		}
	}
	return nil
}

func (s *Server) handleGetDatabase(w http.ResponseWriter, r *http.Request) {
	var req NameRequest
	c := s.beginNative(w, r, "sigil:GetDatabase", true, &req)
	if c == nil || !c.authorize(s.databaseARN(c.svc.account.ID, req.Name)) {
		return
	}
	db, err := c.svc.catalog.Database(r.Context(), req.Name)
	c.finish(db, dynamicWireError(err))
}

func (s *Server) handleListDatabases(w http.ResponseWriter, r *http.Request) {
	c := s.beginNative(w, r, "sigil:ListDatabases", true, nil)
	if c == nil || !c.authorize(s.databaseARN(c.svc.account.ID, "*")) {
		return
	}
	dbs, err := c.svc.catalog.Databases(r.Context())
	if dbs == nil {
		dbs = []dynamic.Database{}
	}
	c.finish(DatabasesResponse{Databases: dbs}, dynamicWireError(err))
}

func (s *Server) handleDeleteDatabase(w http.ResponseWriter, r *http.Request) {
	var req NameRequest
	c := s.beginNative(w, r, "sigil:DeleteDatabase", false, &req)
	if c == nil || !c.authorize(s.databaseARN(c.svc.account.ID, req.Name)) {
		return
	}
	err := c.svc.catalog.DeleteDatabase(r.Context(), req.Name)
	c.finish(struct{}{}, dynamicWireError(err))
}

// handleRotateRoot serves POST /v1/databases/rotate-root: the privileged
// password is replaced by one only sigil knows.
func (s *Server) handleRotateRoot(w http.ResponseWriter, r *http.Request) {
	var req NameRequest
	c := s.beginNative(w, r, "sigil:RotateDatabaseRoot", false, &req)
	if c == nil || !c.authorize(s.databaseARN(c.svc.account.ID, req.Name)) {
		return
	}
	db, err := c.svc.catalog.RotateRoot(r.Context(), req.Name)
	if err != nil && !errors.Is(err, dynamic.ErrDatabaseNotFound) {
		s.log.Error("rotating a database's root password failed", "database", req.Name, "err", err)
		err = awsproto.Errorf("InternalServiceError", http.StatusInternalServerError,
			"rotating the password of database %s failed; the server log for this request id has the cause", req.Name)
	}
	if err == nil {
		s.log.Info("database root password rotated", "database", req.Name, "by", c.p.ARN)
	}
	c.finish(db, dynamicWireError(err))
}

// Dynamic secrets.

// DynamicSecretRequest is the body of POST /v1/dynamic-secrets/put: the
// secret's Secrets Manager attributes and its dynamic configuration. TTLs
// are Go durations ("1h", "15m").
type DynamicSecretRequest struct {
	Name                 string            `json:"name"`
	Description          string            `json:"description,omitempty"`
	Tags                 map[string]string `json:"tags,omitempty"`
	Database             string            `json:"database"`
	CreationStatements   []string          `json:"creationStatements,omitempty"`
	RenewStatements      []string          `json:"renewStatements,omitempty"`
	RevocationStatements []string          `json:"revocationStatements,omitempty"`
	DefaultTTL           string            `json:"defaultTtl"`
	MaxTTL               string            `json:"maxTtl,omitempty"`
	UsernamePrefix       string            `json:"usernamePrefix,omitempty"`
	PasswordLength       int               `json:"passwordLength,omitempty"`
}

// DynamicSecretResponse describes a dynamic secret.
type DynamicSecretResponse struct {
	ARN                  string   `json:"arn"`
	Name                 string   `json:"name"`
	Created              bool     `json:"created,omitempty"`
	Database             string   `json:"database"`
	CreationStatements   []string `json:"creationStatements,omitempty"`
	RenewStatements      []string `json:"renewStatements,omitempty"`
	RevocationStatements []string `json:"revocationStatements,omitempty"`
	DefaultTTL           string   `json:"defaultTtl"`
	MaxTTL               string   `json:"maxTtl"`
	UsernamePrefix       string   `json:"usernamePrefix,omitempty"`
	PasswordLength       int      `json:"passwordLength,omitempty"`
}

func dynamicSecretResponse(arn string, cfg dynamic.SecretConfig) DynamicSecretResponse {
	return DynamicSecretResponse{
		ARN: arn, Name: cfg.Secret, Database: cfg.Database,
		CreationStatements: cfg.Creation, RenewStatements: cfg.Renew, RevocationStatements: cfg.Revocation,
		DefaultTTL: cfg.DefaultTTL.String(), MaxTTL: cfg.MaxTTL.String(),
		UsernamePrefix: cfg.UsernamePrefix, PasswordLength: cfg.Password.Length,
	}
}

// secretResource is what a native call about secret name is authorized
// on: its ARN, or for a secret that does not exist the pattern every ARN
// of that name matches (as Secrets Manager's own calls do).
func (c *nativeCall) secretResource(name string) (string, error) {
	info, err := c.svc.secrets.Lookup(c.r.Context(), name)
	switch {
	case err == nil:
		return info.ARN, nil
	case errors.Is(err, store.ErrNotFound):
		return c.svc.secrets.ARNPattern(name), nil
	}
	return "", err
}

func (s *Server) handlePutDynamicSecret(w http.ResponseWriter, r *http.Request) {
	var req DynamicSecretRequest
	c := s.beginNative(w, r, "sigil:PutDynamicSecret", false, &req)
	if c == nil {
		return
	}
	cfg := dynamic.SecretConfig{
		Secret: req.Name, Database: req.Database,
		Creation: req.CreationStatements, Renew: req.RenewStatements, Revocation: req.RevocationStatements,
		UsernamePrefix: req.UsernamePrefix, Password: dynamic.PasswordPolicy{Length: req.PasswordLength},
	}
	var err error
	if cfg.DefaultTTL, err = parseTTL("defaultTtl", req.DefaultTTL); err == nil && req.MaxTTL != "" {
		cfg.MaxTTL, err = parseTTL("maxTtl", req.MaxTTL)
	}
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	resource, err := c.secretResource(req.Name)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	if !c.authorize(resource) {
		return
	}
	ctx := r.Context()
	// The statements run as the database's privileged login: choosing the
	// database needs permission to use it, and so does leaving the one the
	// secret used before.
	old, oerr := c.svc.catalog.Secret(ctx, req.Name)
	if oerr != nil && !errors.Is(oerr, dynamic.ErrUnknownSecret) {
		c.finish(nil, oerr)
		return
	}
	if !c.authorizeAs("sigil:UseDatabase", s.databaseARN(c.svc.account.ID, req.Database)) {
		return
	}
	if oerr == nil && old.Database != req.Database {
		if !c.authorizeAs("sigil:UseDatabase", s.databaseARN(c.svc.account.ID, old.Database)) {
			return
		}
		live, err := liveLeases(ctx, c.svc.leases, req.Name)
		if err != nil {
			c.finish(nil, err)
			return
		}
		if len(live) > 0 {
			c.finish(nil, awsproto.Errorf("InvalidRequestException", http.StatusBadRequest,
				"%s has %d live users on database %s; revoke them first (sigil lease revoke-prefix %s/) before moving it to %s",
				req.Name, len(live), old.Database, req.Name, req.Database))
			return
		}
	}
	// A static secret of the name, or one scheduled for deletion, is
	// refused before the configuration is written.
	if info, lerr := c.svc.secrets.Lookup(ctx, req.Name); lerr == nil && !info.Dynamic {
		c.finish(nil, dynamicWireError(secrets.ErrNotDynamic))
		return
	} else if lerr == nil && info.Deleted {
		c.finish(nil, awsproto.Errorf("InvalidRequestException", http.StatusBadRequest,
			"You can't update this secret because the secret %s is scheduled for deletion.", req.Name))
		return
	}
	// The configuration first: a secret record without one could not be
	// read, a configuration without a secret is harmless.
	if err := c.svc.catalog.PutSecret(ctx, cfg); err != nil {
		c.finish(nil, dynamicWireError(err))
		return
	}
	arn, created, err := c.svc.secrets.PutDynamic(ctx, secrets.DynamicSecret{Name: req.Name, Description: req.Description, Tags: req.Tags})
	if err != nil {
		c.finish(nil, dynamicWireError(err))
		return
	}
	stored, err := c.svc.catalog.Secret(ctx, req.Name)
	resp := dynamicSecretResponse(arn, stored)
	resp.Created = created
	c.finish(resp, dynamicWireError(err))
}

func (s *Server) handleGetDynamicSecret(w http.ResponseWriter, r *http.Request) {
	var req NameRequest
	c := s.beginNative(w, r, "sigil:GetDynamicSecret", true, &req)
	if c == nil {
		return
	}
	resource, err := c.secretResource(req.Name)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	if !c.authorize(resource) {
		return
	}
	cfg, err := c.svc.catalog.Secret(r.Context(), req.Name)
	c.finish(dynamicSecretResponse(resource, cfg), dynamicWireError(err))
}

func parseTTL(field, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < dynamic.MinTTL || d > dynamic.MaxLeaseTTL {
		return 0, awsproto.InvalidParameter("%s %q must be a duration such as 1h or 15m, between %s and %s", field, v, dynamic.MinTTL, dynamic.MaxLeaseTTL)
	}
	return d, nil
}

// Leases.

// LeaseRequest names a lease, or a prefix of lease ids (a secret's name
// and "/" names all of its leases), and for renewals an increment.
type LeaseRequest struct {
	LeaseID   string `json:"leaseId,omitempty"`
	Prefix    string `json:"prefix,omitempty"`
	Increment string `json:"increment,omitempty"`
	// All lists revoked leases too.
	All bool `json:"all,omitempty"`
}

// LeaseInfo is a lease on the wire, with its ARN and the VersionId that
// GetSecretValue showed for it.
type LeaseInfo struct {
	ID          string             `json:"leaseId"`
	ARN         string             `json:"arn"`
	VersionID   string             `json:"versionId"`
	Secret      string             `json:"secret"`
	Username    string             `json:"username"`
	Session     string             `json:"session,omitempty"`
	State       string             `json:"state"`
	Issued      time.Time          `json:"issued"`
	Expires     time.Time          `json:"expires"`
	MaxExpires  time.Time          `json:"maxExpires"`
	Revoked     *time.Time         `json:"revoked,omitempty"`
	Attempts    int                `json:"attempts,omitempty"`
	LastError   string             `json:"lastError,omitempty"`
	NextAttempt *time.Time         `json:"nextAttempt,omitempty"`
	Connection  dynamic.Connection `json:"connection"`
}

// LeasesResponse lists leases.
type LeasesResponse struct {
	Leases  []LeaseInfo `json:"leases"`
	Revoked int         `json:"revoked,omitempty"`
}

func (s *Server) leaseInfo(account string, l dynamic.Lease) LeaseInfo {
	li := LeaseInfo{
		ID: l.ID, ARN: s.leaseARN(account, l.ID), VersionID: leaseVersionID(l.ID), Secret: l.Secret,
		Username: l.Username, Session: l.Session, State: string(l.State), Issued: l.Issued, Expires: l.Expires,
		MaxExpires: l.MaxExpires, Attempts: l.Attempts, LastError: l.LastError, Connection: l.Connection,
	}
	if !l.Revoked.IsZero() {
		li.Revoked = &l.Revoked
	}
	if !l.NextAttempt.IsZero() {
		li.NextAttempt = &l.NextAttempt
	}
	return li
}

func (s *Server) handleListLeases(w http.ResponseWriter, r *http.Request) {
	var req LeaseRequest
	c := s.beginNative(w, r, "sigil:ListLeases", true, &req)
	if c == nil || !c.authorize(s.leaseARN(c.svc.account.ID, req.Prefix+"*")) {
		return
	}
	ls, err := c.svc.leases.List(r.Context(), req.Prefix)
	out := LeasesResponse{Leases: []LeaseInfo{}}
	for _, l := range ls {
		// The prefix was allowed; each lease must be too, so that a Deny
		// on part of the prefix hides those leases.
		if (req.All || l.State != dynamic.StateRevoked) && c.permits(s.leaseARN(c.svc.account.ID, l.ID)) {
			out.Leases = append(out.Leases, s.leaseInfo(c.svc.account.ID, l))
		}
	}
	c.finish(out, dynamicWireError(err))
}

func (s *Server) handleGetLease(w http.ResponseWriter, r *http.Request) {
	var req LeaseRequest
	c := s.beginNative(w, r, "sigil:GetLease", true, &req)
	if c == nil || !c.authorize(s.leaseARN(c.svc.account.ID, req.LeaseID)) {
		return
	}
	l, err := c.svc.leases.Get(r.Context(), req.LeaseID)
	c.finish(s.leaseInfo(c.svc.account.ID, l), dynamicWireError(err))
}

func (s *Server) handleRenewLease(w http.ResponseWriter, r *http.Request) {
	var req LeaseRequest
	c := s.beginNative(w, r, "sigil:RenewLease", false, &req)
	if c == nil {
		return
	}
	var inc time.Duration
	if req.Increment != "" {
		var err error
		if inc, err = parseTTL("increment", req.Increment); err != nil {
			s.jsonError(w, r, err)
			return
		}
	}
	if !c.authorize(s.leaseARN(c.svc.account.ID, req.LeaseID)) {
		return
	}
	l, err := c.svc.leases.Renew(r.Context(), req.LeaseID, inc)
	c.finish(s.leaseInfo(c.svc.account.ID, l), dynamicWireError(err))
}

func (s *Server) handleRevokeLease(w http.ResponseWriter, r *http.Request) {
	var req LeaseRequest
	c := s.beginNative(w, r, "sigil:RevokeLease", false, &req)
	if c == nil || !c.authorize(s.leaseARN(c.svc.account.ID, req.LeaseID)) {
		return
	}
	ctx := r.Context()
	err := c.svc.leases.Revoke(ctx, req.LeaseID)
	if err != nil {
		s.log.Warn("revoking a lease failed; the reaper retries it", "lease", req.LeaseID, "err", err)
		if !errors.Is(err, dynamic.ErrLeaseNotFound) {
			err = awsproto.Errorf("InternalServiceError", http.StatusInternalServerError,
				"revoking lease %s failed; the reaper retries it, and the server log for this request id has the cause", req.LeaseID)
		}
		c.finish(nil, dynamicWireError(err))
		return
	}
	l, err := c.svc.leases.Get(ctx, req.LeaseID)
	if err == nil {
		s.log.Info("lease revoked", "lease", l.ID, "username", l.Username, "state", string(l.State), "by", c.p.ARN)
	}
	c.finish(s.leaseInfo(c.svc.account.ID, l), dynamicWireError(err))
}

func (s *Server) handleRevokeLeasePrefix(w http.ResponseWriter, r *http.Request) {
	var req LeaseRequest
	c := s.beginNative(w, r, "sigil:RevokeLease", false, &req)
	if c == nil {
		return
	}
	if req.Prefix == "" {
		s.jsonError(w, r, awsproto.InvalidParameter("prefix is required: a secret's name and \"/\" names all of its leases"))
		return
	}
	if !c.authorize(s.leaseARN(c.svc.account.ID, req.Prefix+"*")) {
		return
	}
	// Every lease under the prefix must be allowed as well: a Deny on any
	// of them refuses the whole call before anything is revoked.
	ls, err := c.svc.leases.List(r.Context(), req.Prefix)
	if err != nil {
		c.finish(nil, err)
		return
	}
	for _, l := range ls {
		if l.State != dynamic.StateRevoked && !c.permits(s.leaseARN(c.svc.account.ID, l.ID)) {
			c.authorize(s.leaseARN(c.svc.account.ID, l.ID)) // audits and answers the denial
			return
		}
	}
	// Exactly the leases checked above: one issued since is not revoked
	// unchecked.
	n, err := c.svc.leases.RevokeAll(r.Context(), ls)
	s.log.Info("leases revoked by prefix", "prefix", req.Prefix, "revoked", n, "by", c.p.ARN)
	if err != nil {
		s.log.Warn("revoking leases by prefix stopped at a failure; the reaper retries it", "prefix", req.Prefix, "revoked", n, "err", err)
		err = awsproto.Errorf("InternalServiceError", http.StatusInternalServerError,
			"revoked %d leases under %s, then a revocation failed; the reaper retries it, and the server log for this request id has the cause", n, req.Prefix)
	}
	c.finish(LeasesResponse{Leases: []LeaseInfo{}, Revoked: n}, err)
}
