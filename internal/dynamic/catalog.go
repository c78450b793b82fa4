package dynamic

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"sigil.dev/sigil/internal/store"
)

// Storage layout of the catalog.
const (
	databasePrefix    = "dynamic/databases/"
	databaseRefPrefix = "dynamic/database-refs/"
	secretPrefix      = "dynamic/secrets/"
)

// Engine names a [Database] may have.
const (
	EnginePostgres = "postgresql"
	EngineMySQL    = "mysql"
)

// TLS modes of a [Database] connection.
const (
	// TLSVerifyFull encrypts and checks the server's certificate and name
	// against the system roots or TLS.CACert. It is the default.
	TLSVerifyFull = "verify-full"
	// TLSRequire encrypts without checking the server's certificate, as
	// libpq's sslmode=require does. It protects against passive listeners
	// only.
	TLSRequire = "require"
	// TLSDisable connects in plain text; for loopback and test databases.
	TLSDisable = "disable"
)

// TLS says how sigil connects to a database.
type TLS struct {
	// Mode is TLSVerifyFull (the default when empty), TLSRequire or
	// TLSDisable.
	Mode string `json:"mode,omitempty"`
	// CACert is a PEM bundle of the certificate authorities that may sign
	// the server's certificate; empty means the system roots.
	CACert string `json:"caCert,omitempty"`
	// ServerName is the name expected in the server's certificate; empty
	// means Host.
	ServerName string `json:"serverName,omitempty"`
}

// Database is a registered database: where it is and the privileged
// connection sigil uses to create and remove users. The record is written
// through the store, which the barrier encrypts; Password is never
// returned by the catalog's read methods.
type Database struct {
	// Name identifies the database in sigil: letters, digits, '.', '_'
	// and '-', at most 64 characters.
	Name string `json:"name"`
	// Engine is EnginePostgres or EngineMySQL.
	Engine string `json:"engine"`
	// Host and Port locate the server; Port zero means the engine's
	// default (5432 or 3306).
	Host string `json:"host"`
	Port int    `json:"port,omitempty"`
	// DBName is the database to connect to (and the one issued users are
	// handed).
	DBName string `json:"dbname,omitempty"`
	// Username and Password are the privileged login. The user needs to
	// create and drop users and terminate their sessions.
	Username string `json:"username"`
	Password string `json:"password,omitempty"`
	// TLS configures transport security.
	TLS TLS `json:"tls,omitzero"`
	// MaxConns caps the privileged connections per dynamic secret; zero
	// means 4.
	MaxConns int `json:"maxConns,omitempty"`
	// RootRotated is when RotateRoot last replaced Password; zero if never.
	RootRotated time.Time `json:"rootRotated,omitzero"`
	// pending is a password RotateRoot set in the database but had not yet
	// recorded as Password when it stopped.
	pending string
}

// databaseRecord is a Database as stored.
type databaseRecord struct {
	Database
	Pending string `json:"pendingPassword,omitempty"`
}

// SecretConfig is the configuration of one dynamic secret: which database
// issues its users and how.
type SecretConfig struct {
	// Secret is the Secrets Manager name of the dynamic secret.
	Secret string `json:"secret"`
	// Database names the registered Database.
	Database string `json:"database"`
	// Creation, Renew and Revocation are statement templates (see
	// [ParseTemplate]); nil means the engine's defaults.
	Creation   []string `json:"creation,omitempty"`
	Renew      []string `json:"renew,omitempty"`
	Revocation []string `json:"revocation,omitempty"`
	// DefaultTTL is the lifetime of a new lease; MaxTTL bounds it across
	// renewals (zero means DefaultTTL).
	DefaultTTL time.Duration `json:"defaultTtl"`
	MaxTTL     time.Duration `json:"maxTtl,omitempty"`
	// UsernamePrefix is the readable start of issued usernames; "" means
	// "v".
	UsernamePrefix string `json:"usernamePrefix,omitempty"`
	// Password is the policy of generated passwords.
	Password PasswordPolicy `json:"password,omitzero"`
}

// Limits of a dynamic secret's lifetimes.
const (
	MinTTL = time.Second
	// MaxLeaseTTL is the longest lifetime a lease can have.
	MaxLeaseTTL = 365 * 24 * time.Hour
)

// Connection is where an issued user connects: what GetSecretValue returns
// beside the username and password.
type Connection struct {
	Engine string `json:"engine"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
	DBName string `json:"dbname,omitempty"`
}

// EngineFactory builds the engine of a dynamic secret for a database. The
// catalog's default handles EnginePostgres and EngineMySQL.
type EngineFactory func(db Database, cfg SecretConfig, rnd io.Reader) (Engine, error)

// CatalogOptions configures a [Catalog].
type CatalogOptions struct {
	// Store holds the records. Required; in production the barrier, which
	// encrypts them.
	Store store.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness for generated passwords and usernames; nil
	// means crypto/rand.Reader.
	Rand io.Reader
	// Logger receives operational messages (never passwords); nil discards
	// them.
	Logger *slog.Logger
	// Engines builds engines; nil means the built-in PostgreSQL and MySQL
	// engines.
	Engines EngineFactory
}

// Catalog stores registered databases and dynamic secret configurations,
// and builds and caches the engine of each dynamic secret. It implements
// [Roles]. It is safe for concurrent use; Close releases the cached
// engines' connections.
type Catalog struct {
	st      store.Store
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger
	factory EngineFactory

	// rotateMu serialises RotateRoot per process; replicas are kept apart
	// by the pending password written with compare-and-swap.
	rotateMu sync.Mutex

	mu      sync.Mutex
	engines map[string]*cachedEngine // by secret name
	closed  bool
}

// cachedEngine is an engine and the store revisions it was built from.
type cachedEngine struct {
	engine Engine
	conn   Connection
	cfg    SecretConfig
	cfgRev int64
	dbRev  int64
}

// NewCatalog checks opts and returns a Catalog.
func NewCatalog(opts CatalogOptions) (*Catalog, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("%w: the catalog needs a store", ErrInvalidConfig)
	}
	c := &Catalog{st: opts.Store, now: opts.Now, rand: opts.Rand, log: opts.Logger, factory: opts.Engines, engines: map[string]*cachedEngine{}}
	if c.now == nil {
		c.now = time.Now
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.factory == nil {
		c.factory = DefaultEngine
	}
	return c, nil
}

var databaseName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// validate checks d and fills in defaults.
func (d *Database) validate() error {
	switch {
	case !databaseName.MatchString(d.Name):
		return fmt.Errorf("%w: database name %q must be 1 to 64 letters, digits, '.', '_' or '-'", ErrInvalidConfig, d.Name)
	case d.Engine != EnginePostgres && d.Engine != EngineMySQL:
		return fmt.Errorf("%w: engine %q is not %q or %q", ErrInvalidConfig, d.Engine, EnginePostgres, EngineMySQL)
	case d.Host == "" || len(d.Host) > 253:
		return fmt.Errorf("%w: host must be 1 to 253 characters", ErrInvalidConfig)
	case d.Port < 0 || d.Port > 65535:
		return fmt.Errorf("%w: port %d is out of range", ErrInvalidConfig, d.Port)
	case d.Username == "" || len(d.Username) > 128:
		return fmt.Errorf("%w: username must be 1 to 128 characters", ErrInvalidConfig)
	case len(d.Password) > 1024 || len(d.DBName) > 128:
		return fmt.Errorf("%w: password or dbname too long", ErrInvalidConfig)
	case d.MaxConns < 0 || d.MaxConns > 64:
		return fmt.Errorf("%w: maxConns must be 0 to 64", ErrInvalidConfig)
	}
	for _, s := range []string{d.Host, d.Username, d.Password, d.DBName} {
		if err := checkQuotable(s); err != nil {
			return fmt.Errorf("%w: host, username, password and dbname must be UTF-8 without NUL", ErrInvalidConfig)
		}
	}
	if d.Port == 0 {
		d.Port = 5432
		if d.Engine == EngineMySQL {
			d.Port = 3306
		}
	}
	switch d.TLS.Mode {
	case "":
		d.TLS.Mode = TLSVerifyFull
	case TLSVerifyFull, TLSRequire, TLSDisable:
	default:
		return fmt.Errorf("%w: tls mode %q is not %q, %q or %q", ErrInvalidConfig, d.TLS.Mode, TLSVerifyFull, TLSRequire, TLSDisable)
	}
	if _, err := d.tlsConfig(); err != nil {
		return err
	}
	return nil
}

// tlsConfig returns the client TLS configuration for d, nil for TLSDisable.
func (d *Database) tlsConfig() (*tls.Config, error) {
	switch d.TLS.Mode {
	case TLSDisable:
		return nil, nil
	case TLSRequire:
		// Encryption without authentication, as the mode documents.
		return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, nil //nolint:gosec // documented mode
	}
	cfg := &tls.Config{ServerName: d.TLS.ServerName, MinVersion: tls.VersionTLS12}
	if cfg.ServerName == "" {
		cfg.ServerName = d.Host
	}
	if d.TLS.CACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(d.TLS.CACert)) {
			return nil, fmt.Errorf("%w: tls caCert holds no PEM certificate", ErrInvalidConfig)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// address is host:port.
func (d *Database) address() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// postgresDSN is d as a postgres:// URL; TLS is applied separately.
func (d *Database) postgresDSN(password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(d.Username, password), Host: d.address(), Path: "/" + d.DBName}
	q := url.Values{}
	q.Set("sslmode", "disable")
	if d.TLS.Mode != TLSDisable {
		q.Set("sslmode", "require") // replaced by the TLS config below
	}
	q.Set("connect_timeout", "10")
	u.RawQuery = q.Encode()
	return u.String()
}

// DefaultEngine builds the PostgreSQL or MySQL engine of cfg on db.
func DefaultEngine(db Database, cfg SecretConfig, rnd io.Reader) (Engine, error) {
	tc, err := db.tlsConfig()
	if err != nil {
		return nil, err
	}
	switch db.Engine {
	case EnginePostgres:
		return NewPostgresEngine(PostgresConfig{
			DSN: db.postgresDSN(db.Password), TLS: tc, DisableTLS: tc == nil,
			Creation: cfg.Creation, Renew: cfg.Renew, Revocation: cfg.Revocation,
			UsernamePrefix: cfg.UsernamePrefix, Password: cfg.Password, Rand: rnd, MaxConns: db.MaxConns,
		})
	case EngineMySQL:
		return newMySQLFromDatabase(db, cfg, tc, rnd)
	}
	return nil, fmt.Errorf("%w: unknown engine %q", ErrInvalidConfig, db.Engine)
}

func databaseKey(name string) string { return databasePrefix + name }
func secretKey(name string) string   { return secretPrefix + url.PathEscape(name) }

func getDatabase(v *store.View, name string) (databaseRecord, int64, error) {
	e, err := v.Get(databaseKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return databaseRecord{}, 0, fmt.Errorf("%w: %q", ErrDatabaseNotFound, name)
	}
	if err != nil {
		return databaseRecord{}, 0, fmt.Errorf("reading database %q: %w", name, err)
	}
	var r databaseRecord
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return databaseRecord{}, 0, fmt.Errorf("decoding database %q: %w", name, err)
	}
	r.pending = r.Pending
	return r, e.Revision, nil
}

func putJSON(v *store.View, key string, x any) error {
	b, err := json.Marshal(x)
	if err != nil {
		return fmt.Errorf("encoding %q: %w", key, err)
	}
	v.Put(key, b)
	return nil
}

// PutDatabase registers db or replaces the registration of the same name.
// An empty Password on replacement keeps the stored one, so that a
// configuration file need not hold a password that RotateRoot has since
// changed; but only if sigil would still connect to the same place as the
// same user (host, port, username and TLS settings unchanged): otherwise
// anyone allowed to change a registration could point sigil at a server of
// their own and receive the password that only sigil knows. A password
// that an interrupted RotateRoot left pending is kept either way. The
// connection is not tried; see [Catalog.Check].
func (c *Catalog) PutDatabase(ctx context.Context, db Database) error {
	if err := db.validate(); err != nil {
		return err
	}
	// A rotation in this process must not interleave with a replacement.
	c.rotateMu.Lock()
	defer c.rotateMu.Unlock()
	_, err := store.Update(ctx, c.st, func(v *store.View) error {
		old, _, err := getDatabase(v, db.Name)
		rec := databaseRecord{Database: db}
		switch {
		case errors.Is(err, ErrDatabaseNotFound):
			if db.Password == "" {
				return fmt.Errorf("%w: a new database needs a password", ErrInvalidConfig)
			}
		case err != nil:
			return err
		default:
			if old.Engine != db.Engine {
				return fmt.Errorf("%w: database %q is %s; delete it to change its engine", ErrInvalidConfig, db.Name, old.Engine)
			}
			if db.Password == "" {
				if old.Host != db.Host || old.Port != db.Port || old.Username != db.Username || old.TLS != db.TLS {
					return fmt.Errorf("%w: changing where sigil connects to database %q (host, port, username or TLS) needs its password", ErrInvalidConfig, db.Name)
				}
				rec.Password, rec.RootRotated = old.Password, old.RootRotated
			}
			rec.Pending = old.Pending
		}
		return putJSON(v, databaseKey(db.Name), rec)
	})
	return err
}

// Database returns the registered database name without its password.
func (c *Catalog) Database(ctx context.Context, name string) (Database, error) {
	var r databaseRecord
	_, err := store.Update(ctx, c.st, func(v *store.View) error {
		var err error
		r, _, err = getDatabase(v, name)
		return err
	})
	r.Password, r.pending = "", ""
	return r.Database, err
}

// Databases returns every registered database, without passwords, by name.
func (c *Catalog) Databases(ctx context.Context) ([]Database, error) {
	var out []Database
	err := c.list(ctx, databasePrefix, func(b []byte) error {
		var r databaseRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		r.Password = ""
		out = append(out, r.Database)
		return nil
	})
	return out, err
}

// DeleteDatabase removes a registration. It fails with [ErrInUse] while a
// dynamic secret uses the database.
func (c *Catalog) DeleteDatabase(ctx context.Context, name string) error {
	_, err := store.Update(ctx, c.st, func(v *store.View) error {
		if _, _, err := getDatabase(v, name); err != nil {
			return err
		}
		// A PutSecret naming this database bumps its reference counter,
		// so one committing while this transaction runs makes it retry
		// and see the new secret (a listing alone would miss it).
		if _, err := v.Get(databaseRefKey(name)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		after := ""
		for {
			es, next, err := v.List(secretPrefix, after, 256)
			if err != nil {
				return fmt.Errorf("listing dynamic secrets: %w", err)
			}
			for _, e := range es {
				var cfg SecretConfig
				if err := json.Unmarshal(e.Value, &cfg); err != nil {
					return fmt.Errorf("decoding %q: %w", e.Key, err)
				}
				if cfg.Database == name {
					return fmt.Errorf("%w: dynamic secret %q uses database %q", ErrInUse, cfg.Secret, name)
				}
			}
			if next == "" {
				break
			}
			after = next
		}
		v.Delete(databaseKey(name))
		v.Delete(databaseRefKey(name))
		return nil
	})
	return err
}

// databaseRefKey is the counter PutSecret bumps for the database it names.
func databaseRefKey(name string) string { return databaseRefPrefix + name }

func (c *Catalog) list(ctx context.Context, prefix string, fn func([]byte) error) error {
	after := ""
	for {
		es, next, err := c.st.List(ctx, prefix, after, 256)
		if err != nil {
			return fmt.Errorf("listing %s: %w", prefix, err)
		}
		for _, e := range es {
			if err := fn(e.Value); err != nil {
				return fmt.Errorf("decoding %q: %w", e.Key, err)
			}
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// validate checks cfg and fills in defaults.
func (cfg *SecretConfig) validate() error {
	switch {
	case cfg.Secret == "" || len(cfg.Secret) > 512:
		return fmt.Errorf("%w: a dynamic secret needs a name", ErrInvalidConfig)
	case cfg.Database == "":
		return fmt.Errorf("%w: dynamic secret %q needs a database", ErrInvalidConfig, cfg.Secret)
	case cfg.DefaultTTL < MinTTL || cfg.DefaultTTL > MaxLeaseTTL:
		return fmt.Errorf("%w: defaultTtl must be between %s and %s", ErrInvalidConfig, MinTTL, MaxLeaseTTL)
	case cfg.MaxTTL != 0 && (cfg.MaxTTL < cfg.DefaultTTL || cfg.MaxTTL > MaxLeaseTTL):
		return fmt.Errorf("%w: maxTtl must be between defaultTtl and %s", ErrInvalidConfig, MaxLeaseTTL)
	case len(cfg.UsernamePrefix) > 16 || cleanName(cfg.UsernamePrefix) != cfg.UsernamePrefix:
		return fmt.Errorf("%w: usernamePrefix must be at most 16 lower-case letters, digits or '_'", ErrInvalidConfig)
	}
	for _, stmts := range [][]string{cfg.Creation, cfg.Renew, cfg.Revocation} {
		if len(stmts) > 32 {
			return fmt.Errorf("%w: at most 32 statements of each kind", ErrInvalidConfig)
		}
		for _, s := range stmts {
			if len(s) > 16<<10 {
				return fmt.Errorf("%w: a statement is longer than 16 KiB", ErrInvalidConfig)
			}
		}
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = cfg.DefaultTTL
	}
	return cfg.Password.validate()
}

// PutSecret stores the configuration of a dynamic secret, replacing any of
// the same name. The database must be registered, and the statements must
// parse for its engine (an engine is built, which does not connect).
// Leases already issued keep their users; renewals and revocations use the
// new statements.
func (c *Catalog) PutSecret(ctx context.Context, cfg SecretConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	_, err := store.Update(ctx, c.st, func(v *store.View) error {
		db, _, err := getDatabase(v, cfg.Database)
		if err != nil {
			return err
		}
		eng, err := c.factory(db.Database, cfg, c.rand)
		if err != nil {
			return err
		}
		closeEngine(eng)
		if err := store.Bump(v, databaseRefKey(cfg.Database)); err != nil {
			return err
		}
		return putJSON(v, secretKey(cfg.Secret), cfg)
	})
	return err
}

func getSecret(v *store.View, name string) (SecretConfig, int64, error) {
	e, err := v.Get(secretKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return SecretConfig{}, 0, fmt.Errorf("%w: %q", ErrUnknownSecret, name)
	}
	if err != nil {
		return SecretConfig{}, 0, fmt.Errorf("reading dynamic secret %q: %w", name, err)
	}
	var cfg SecretConfig
	if err := json.Unmarshal(e.Value, &cfg); err != nil {
		return SecretConfig{}, 0, fmt.Errorf("decoding dynamic secret %q: %w", name, err)
	}
	return cfg, e.Revision, nil
}

// Secret returns the configuration of dynamic secret name.
func (c *Catalog) Secret(ctx context.Context, name string) (SecretConfig, error) {
	var cfg SecretConfig
	_, err := store.Update(ctx, c.st, func(v *store.View) error {
		var err error
		cfg, _, err = getSecret(v, name)
		return err
	})
	return cfg, err
}

// Secrets returns every dynamic secret configuration.
func (c *Catalog) Secrets(ctx context.Context) ([]SecretConfig, error) {
	var out []SecretConfig
	err := c.list(ctx, secretPrefix, func(b []byte) error {
		var cfg SecretConfig
		if err := json.Unmarshal(b, &cfg); err != nil {
			return err
		}
		out = append(out, cfg)
		return nil
	})
	slices.SortFunc(out, func(a, b SecretConfig) int {
		switch {
		case a.Secret < b.Secret:
			return -1
		case a.Secret > b.Secret:
			return 1
		}
		return 0
	})
	return out, err
}

// DeleteSecret removes the configuration of a dynamic secret. Its leases
// must have been revoked first: without the configuration nothing can
// revoke them.
func (c *Catalog) DeleteSecret(ctx context.Context, name string) error {
	_, err := store.Update(ctx, c.st, func(v *store.View) error {
		if _, _, err := getSecret(v, name); err != nil {
			return err
		}
		v.Delete(secretKey(name))
		return nil
	})
	if err == nil {
		c.drop(name)
	}
	return err
}

// Role returns the role of dynamic secret name, building its engine on
// first use and again whenever the secret's or the database's record has
// changed.
func (c *Catalog) Role(ctx context.Context, name string) (Role, error) {
	r, _, err := c.role(ctx, name)
	return r, err
}

func (c *Catalog) role(ctx context.Context, name string) (Role, Connection, error) {
	var (
		cfg           SecretConfig
		db            databaseRecord
		cfgRev, dbRev int64
	)
	_, err := store.Update(ctx, c.st, func(v *store.View) error {
		var err error
		if cfg, cfgRev, err = getSecret(v, name); err != nil {
			return err
		}
		db, dbRev, err = getDatabase(v, cfg.Database)
		return err
	})
	if err != nil {
		return Role{}, Connection{}, err
	}
	c.mu.Lock()
	ce := c.engines[name]
	c.mu.Unlock()
	if ce == nil || ce.cfgRev != cfgRev || ce.dbRev != dbRev {
		eng, err := c.factory(db.Database, cfg, c.rand)
		if err != nil {
			return Role{}, Connection{}, fmt.Errorf("building engine of %q: %w", name, err)
		}
		ce = &cachedEngine{engine: eng, cfg: cfg, cfgRev: cfgRev, dbRev: dbRev,
			conn: Connection{Engine: db.Engine, Host: db.Host, Port: db.Port, DBName: db.DBName}}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			closeEngine(eng)
			return Role{}, Connection{}, fmt.Errorf("%w: catalog closed", ErrInvalidConfig)
		}
		if old := c.engines[name]; old != nil && old.cfgRev >= cfgRev && old.dbRev >= dbRev {
			// Another caller built it first.
			closeEngine(eng)
			ce = old
		} else {
			c.engines[name] = ce
			if old != nil {
				retire(old.engine)
			}
		}
		c.mu.Unlock()
	}
	return Role{Engine: ce.engine, TTL: ce.cfg.DefaultTTL, MaxTTL: ce.cfg.MaxTTL, Connection: ce.conn}, ce.conn, nil
}

func (c *Catalog) drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ce := c.engines[name]; ce != nil {
		retire(ce.engine)
		delete(c.engines, name)
	}
}

// engineDrain is how long a replaced engine stays open for the calls that
// already hold it (an issue, its undo, a revocation waiting for sessions
// to end) before its connections are closed.
const engineDrain = 2 * time.Minute

// retire closes e once the calls that may still hold it are done.
func retire(e Engine) {
	time.AfterFunc(engineDrain, func() { closeEngine(e) })
}

// Close closes every cached engine.
func (c *Catalog) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for name, ce := range c.engines {
		closeEngine(ce.engine)
		delete(c.engines, name)
	}
}

func closeEngine(e Engine) {
	if cl, ok := e.(interface{ Close() }); ok {
		cl.Close()
	}
}

// rootPasswordPolicy is the policy of passwords RotateRoot generates.
var rootPasswordPolicy = PasswordPolicy{Length: 40}

// RotateRoot replaces the privileged password of database name with a
// random one that only sigil knows. It runs in three steps so that a crash
// never loses the password: the new password is first recorded as pending
// beside the current one, then set in the database, then recorded as the
// password. A rotation interrupted after the second step is completed by
// the next RotateRoot, which first tries the pending password.
func (c *Catalog) RotateRoot(ctx context.Context, name string) (Database, error) {
	c.rotateMu.Lock()
	defer c.rotateMu.Unlock()
	var cur databaseRecord
	_, err := store.Update(ctx, c.st, func(v *store.View) error {
		var err error
		cur, _, err = getDatabase(v, name)
		return err
	})
	if err != nil {
		return Database{}, err
	}
	admin, err := c.adminFor(cur.Database)
	if err != nil {
		return Database{}, err
	}
	if cur.Pending != "" {
		// A previous rotation stopped after recording its password: if the
		// database already has it, finish that rotation first. The
		// pending password is given up only once the current one is known
		// to work, so a transient failure cannot lose both.
		if perr := admin.ping(ctx, cur.Pending); perr == nil {
			if err := c.recordRoot(ctx, name, cur.Pending, cur.Pending); err != nil {
				return Database{}, err
			}
			cur.Password, cur.Pending = cur.Pending, ""
		} else if err := admin.ping(ctx, cur.Password); err != nil {
			return Database{}, fmt.Errorf("database %q: neither the recorded nor the pending password of an interrupted rotation logs in; retry when the database is reachable: %w", name, err)
		}
	}
	next, err := randomString(c.rand, rootPasswordPolicy.withDefaults().Alphabet, rootPasswordPolicy.Length)
	if err != nil {
		return Database{}, fmt.Errorf("generating password: %w", err)
	}
	if _, err := store.Update(ctx, c.st, func(v *store.View) error {
		r, _, err := getDatabase(v, name)
		if err != nil {
			return err
		}
		if r.Password != cur.Password || r.Pending != cur.Pending {
			// Another replica rotates at the same time, or the record
			// changed: its pending password must not be overwritten.
			return fmt.Errorf("%w: database %q changed during the rotation, or another rotation is in progress; retry", ErrInvalidConfig, name)
		}
		r.Pending = next
		return putJSON(v, databaseKey(name), r)
	}); err != nil {
		return Database{}, fmt.Errorf("recording pending password: %w", err)
	}
	if err := admin.setPassword(ctx, cur.Password, next); err != nil {
		return Database{}, fmt.Errorf("rotating the password of %q on %s: %w", cur.Username, cur.address(), err)
	}
	if err := c.recordRoot(ctx, name, next, next); err != nil {
		return Database{}, fmt.Errorf("the database has the new password but recording it failed (run rotate-root again to finish): %w", err)
	}
	return c.Database(ctx, name)
}

// recordRoot makes password the recorded password of name if the pending
// one is still pending.
func (c *Catalog) recordRoot(ctx context.Context, name, pending, password string) error {
	_, err := store.Update(ctx, c.st, func(v *store.View) error {
		r, _, err := getDatabase(v, name)
		if err != nil {
			return err
		}
		if r.Pending != pending {
			return fmt.Errorf("%w: another rotation of %q is in progress", ErrInvalidConfig, name)
		}
		r.Password, r.Pending, r.RootRotated = password, "", c.now().UTC()
		return putJSON(v, databaseKey(name), r)
	})
	return err
}

// Check connects to database name with its privileged login and reports
// the error, if any.
func (c *Catalog) Check(ctx context.Context, name string) error {
	var r databaseRecord
	if _, err := store.Update(ctx, c.st, func(v *store.View) error {
		var err error
		r, _, err = getDatabase(v, name)
		return err
	}); err != nil {
		return err
	}
	admin, err := c.adminFor(r.Database)
	if err != nil {
		return err
	}
	return admin.ping(ctx, r.Password)
}

// rootAdmin changes the privileged user's own password in one database.
type rootAdmin interface {
	// ping logs in with password.
	ping(ctx context.Context, password string) error
	// setPassword logs in with current and changes the password to next.
	setPassword(ctx context.Context, current, next string) error
}

func (c *Catalog) adminFor(db Database) (rootAdmin, error) {
	tc, err := db.tlsConfig()
	if err != nil {
		return nil, err
	}
	switch db.Engine {
	case EnginePostgres:
		return postgresAdmin{db: db, tls: tc, rnd: c.rand}, nil
	case EngineMySQL:
		return mysqlAdmin{db: db, tls: tc, rnd: c.rand}, nil
	}
	return nil, fmt.Errorf("%w: unknown engine %q", ErrInvalidConfig, db.Engine)
}
