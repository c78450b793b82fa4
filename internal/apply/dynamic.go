package apply

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"sigil.dev/sigil/internal/dynamic"
)

// The dynamic kinds: databases registered for dynamic secrets, and
// dynamic secrets, whose GetSecretValue issues a database user for each
// caller. Both are managed through sigil's native API (see
// plan_dynamic.go); this file holds their types and their parsing.

// Limits of the dynamic kinds, as internal/dynamic enforces them.
const (
	maxDatabaseHostLen  = 253
	maxDatabaseUserLen  = 128
	maxDatabaseNameLen  = 128 // dbname
	maxPasswordBytes    = 1024
	maxCABytes          = 65536
	maxDatabaseConns    = 64
	maxStatements       = 32
	maxStatementBytes   = 16 << 10
	maxUsernamePrefix   = 16
	minPasswordLength   = 16
	maxPasswordLength   = 128
	maxDatabaseIDLength = 64
)

var (
	databaseNamePattern   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	usernamePrefixPattern = regexp.MustCompile(`^[a-z0-9_]*$`)
)

// Database is a database registered for dynamic secrets: where it is and
// the privileged login sigil creates and drops users with.
type Database struct {
	// Name identifies the database in sigil.
	Name string
	// Engine is "postgresql" or "mysql". It cannot change once registered.
	Engine string
	// Host and Port locate the server; Port zero means the engine's
	// default (5432 or 3306).
	Host string
	Port int
	// DBName is the database connected to and handed to issued users;
	// empty means the login's default.
	DBName string
	// Username is the privileged login.
	Username string
	// Password is the privileged login's password, nil when the file gives
	// no passwordFile or passwordEnv. It is write-only on the server: it is
	// sent when the database is registered, and later only with
	// Options.UpdateValues. It never prints.
	Password *Value
	// PasswordSource says where the password came from, for messages.
	PasswordSource string
	// TLS says how sigil connects.
	TLS DatabaseTLS
	// MaxConns caps sigil's privileged connections per dynamic secret;
	// zero means the server's default (4).
	MaxConns int
	// Line is the line of the entry in the file.
	Line int
}

// DatabaseTLS is a database's transport security.
type DatabaseTLS struct {
	// Mode is "verify-full" (also when the file gives none), "require" or
	// "disable".
	Mode string
	// CACert is the PEM bundle read from the file's caFile; empty means
	// the system roots.
	CACert string
	// CAFile is the caFile as written, for messages.
	CAFile string
	// ServerName is the name expected in the server's certificate; empty
	// means Host.
	ServerName string
}

// DynamicSecret is a Secrets Manager secret whose value is a database user
// issued for each caller session by a registered database.
type DynamicSecret struct {
	// Name is the secret's name. A name is either a secret or a dynamic
	// secret in a file, never both.
	Name string
	// Description is the secret's description; empty means none.
	Description string
	// Tags are the secret's tags, all of them.
	Tags Tags
	// Database names the registered database (in this file or registered
	// otherwise) that issues the users.
	Database string
	// DefaultTTL is the lifetime of an issued user; MaxTTL bounds it
	// across renewals (zero means DefaultTTL).
	DefaultTTL time.Duration
	MaxTTL     time.Duration
	// CreationStatements, RenewStatements and RevocationStatements are
	// statement templates with {{name}}, {{password}} and {{expiration}};
	// nil means the engine's defaults. They are sent as written: the
	// file's {{account}} and {{region}} are not expanded in them.
	CreationStatements   []string
	RenewStatements      []string
	RevocationStatements []string
	// UsernamePrefix is the readable start of issued usernames; empty
	// means the server's default ("v").
	UsernamePrefix string
	// PasswordLength is the length of generated passwords; zero means the
	// server's default (32).
	PasswordLength int
	// Line is the line of the entry in the file.
	Line int
}

// The raw shapes of the dynamic kinds, as YAML decodes them.

// rawTop is the whole file: the kinds of rawFile and the dynamic kinds.
type rawTop struct {
	rawFile        `yaml:",inline"`
	Databases      []rawDatabase      `yaml:"databases"`
	DynamicSecrets []rawDynamicSecret `yaml:"dynamicSecrets"`
	Rotators       []rawRotator       `yaml:"rotators"`
}

type rawDatabase struct {
	Name         yStr   `yaml:"name"`
	Engine       yStr   `yaml:"engine"`
	Host         yStr   `yaml:"host"`
	Port         yInt   `yaml:"port"`
	DBName       yStr   `yaml:"dbname"`
	Username     yStr   `yaml:"username"`
	PasswordFile yStr   `yaml:"passwordFile"`
	PasswordEnv  yStr   `yaml:"passwordEnv"`
	TLS          rawTLS `yaml:"tls"`
	MaxConns     yInt   `yaml:"maxConns"`
	line         int
}

type rawTLS struct {
	Mode       yStr `yaml:"mode"`
	CAFile     yStr `yaml:"caFile"`
	ServerName yStr `yaml:"serverName"`
	line       int
}

type rawDynamicSecret struct {
	Name                 yStr     `yaml:"name"`
	Description          yStr     `yaml:"description"`
	Tags                 yTags    `yaml:"tags"`
	Database             yStr     `yaml:"database"`
	DefaultTTL           yStr     `yaml:"defaultTtl"`
	MaxTTL               yStr     `yaml:"maxTtl"`
	CreationStatements   yStrList `yaml:"creationStatements"`
	RenewStatements      yStrList `yaml:"renewStatements"`
	RevocationStatements yStrList `yaml:"revocationStatements"`
	UsernamePrefix       yStr     `yaml:"usernamePrefix"`
	PasswordLength       yInt     `yaml:"passwordLength"`
	line                 int
}

func (r *rawDatabase) UnmarshalYAML(n *yaml.Node) error {
	type plain rawDatabase
	return decodeObject(n, (*plain)(r), &r.line, "a database")
}

func (r *rawTLS) UnmarshalYAML(n *yaml.Node) error {
	type plain rawTLS
	return decodeObject(n, (*plain)(r), &r.line, "tls")
}

func (r *rawDynamicSecret) UnmarshalYAML(n *yaml.Node) error {
	type plain rawDynamicSecret
	return decodeObject(n, (*plain)(r), &r.line, "a dynamic secret")
}

// dynamicTypes renames the Go types of this file in yaml.v3's messages.
var dynamicTypes = strings.NewReplacer(
	"[]apply.rawDatabase", "a list of databases",
	"[]apply.rawDynamicSecret", "a list of dynamic secrets",
	"apply.rawTop", "the top level",
)

// unknownTopKeyAll is yaml.v3's KnownFields message for rawTop.
var unknownTopKeyAll = regexp.MustCompile(`^field (.*) not found in type apply\.rawTop$`)

// topKeys lists every top-level key of the file.
func topKeys() []string {
	return append(yamlKeys(reflect.TypeOf(rawFile{})), yamlKeys(reflect.TypeOf(rawTop{}))...)
}

// fixTopProblems rewrites yamlProblems' messages that name rawTop or the
// dynamic kinds' types.
func fixTopProblems(ps []Problem) []Problem {
	for i := range ps {
		if sm := unknownTopKeyAll.FindStringSubmatch(ps[i].Message); sm != nil {
			ps[i].Message = fmt.Sprintf("unknown key %q at the top level (known keys: %s)", sm[1], strings.Join(topKeys(), ", "))
		}
		ps[i].Message = dynamicTypes.Replace(ps[i].Message)
	}
	return ps
}

// bounded checks an optional connection setting: at most maxLen bytes of
// UTF-8 without NUL, placeholders allowed.
func (p *parser) bounded(s yStr, field string, maxLen int) string {
	switch {
	case len(s.v) > maxLen:
		p.addf(s.line, "%s is longer than %d bytes", field, maxLen)
	case !utf8.ValidString(s.v) || strings.IndexByte(s.v, 0) >= 0:
		p.addf(s.line, "%s must be UTF-8 text without NUL bytes", field)
	}
	if err := checkPlaceholders(s.v); err != nil {
		p.addf(s.line, "%s: %v", field, err)
	}
	return s.v
}

func (p *parser) database(r *rawDatabase) Database {
	d := Database{
		Name:     r.Name.v,
		Engine:   r.Engine.v,
		Host:     p.bounded(r.Host, "host", maxDatabaseHostLen),
		DBName:   p.bounded(r.DBName, "dbname", maxDatabaseNameLen),
		Username: p.bounded(r.Username, "username", maxDatabaseUserLen),
		Line:     r.line,
	}
	switch {
	case !r.Name.set || r.Name.v == "":
		p.addf(r.line, "a database needs a name")
	case !databaseNamePattern.MatchString(r.Name.v):
		p.addf(r.Name.line, "database name %q must be 1 to %d letters, digits, '.', '_' or '-'", r.Name.v, maxDatabaseIDLength)
	}
	switch {
	case !r.Engine.set || r.Engine.v == "":
		p.addf(r.line, "a database needs an engine (%q or %q)", dynamic.EnginePostgres, dynamic.EngineMySQL)
	case r.Engine.v != dynamic.EnginePostgres && r.Engine.v != dynamic.EngineMySQL:
		p.addf(r.Engine.line, "engine %q is not %q or %q", r.Engine.v, dynamic.EnginePostgres, dynamic.EngineMySQL)
	}
	if r.Host.v == "" {
		p.addf(r.line, "a database needs a host")
	}
	if r.Username.v == "" {
		p.addf(r.line, "a database needs a username (the privileged login)")
	}
	if r.Port.set {
		if r.Port.v < 1 || r.Port.v > 65535 {
			p.addf(r.Port.line, "port %d is not a TCP port (1 to 65535)", r.Port.v)
		} else {
			d.Port = int(r.Port.v)
		}
	}
	if r.MaxConns.set {
		if r.MaxConns.v < 1 || r.MaxConns.v > maxDatabaseConns {
			p.addf(r.MaxConns.line, "maxConns %d must be between 1 and %d", r.MaxConns.v, maxDatabaseConns)
		} else {
			d.MaxConns = int(r.MaxConns.v)
		}
	}
	d.TLS = p.databaseTLS(&r.TLS)
	p.password(r, &d)
	return d
}

func (p *parser) databaseTLS(r *rawTLS) DatabaseTLS {
	t := DatabaseTLS{Mode: r.Mode.v, ServerName: p.bounded(r.ServerName, "tls serverName", maxDatabaseHostLen)}
	switch t.Mode {
	case "":
		t.Mode = dynamic.TLSVerifyFull
	case dynamic.TLSVerifyFull, dynamic.TLSRequire, dynamic.TLSDisable:
	default:
		p.addf(r.Mode.line, "tls mode %q is not %q, %q or %q", t.Mode, dynamic.TLSVerifyFull, dynamic.TLSRequire, dynamic.TLSDisable)
	}
	if !r.CAFile.set {
		return t
	}
	t.CAFile = r.CAFile.v
	if t.Mode != dynamic.TLSVerifyFull && t.Mode != "" {
		p.addf(r.CAFile.line, "tls caFile is used only with mode %q", dynamic.TLSVerifyFull)
	}
	b, ok := p.readFile(r.CAFile, "tls caFile", maxCABytes)
	if !ok {
		return t
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		p.addf(r.CAFile.line, "tls caFile %q holds no PEM certificate", r.CAFile.v)
		return t
	}
	t.CACert = string(b)
	return t
}

// readFile reads a file named by the field s, relative to the file's
// directory, of at most maxBytes.
func (p *parser) readFile(s yStr, field string, maxBytes int64) ([]byte, bool) {
	if s.v == "" {
		p.addf(s.line, "%s is empty; name a file", field)
		return nil, false
	}
	path := s.v
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.baseDir, path)
	}
	info, err := os.Stat(path)
	if err != nil {
		p.addf(s.line, "%s: %v", field, err)
		return nil, false
	}
	if !info.Mode().IsRegular() || info.Size() > maxBytes {
		p.addf(s.line, "%s %q must be a regular file of at most %d bytes", field, s.v, maxBytes)
		return nil, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		p.addf(s.line, "%s: %v", field, err)
		return nil, false
	}
	return b, true
}

// password reads a database's password from its file (one trailing
// newline dropped) or environment variable. Messages name the source,
// never the password.
func (p *parser) password(r *rawDatabase, d *Database) {
	var (
		b    []byte
		line int
	)
	switch {
	case r.PasswordFile.set && r.PasswordEnv.set:
		p.addf(r.PasswordEnv.line, "give either passwordFile or passwordEnv, not both")
		return
	case r.PasswordFile.set:
		line = r.PasswordFile.line
		d.PasswordSource = fmt.Sprintf("file %q", r.PasswordFile.v)
		var ok bool
		if b, ok = p.readFile(r.PasswordFile, "passwordFile", maxPasswordBytes+2); !ok {
			return
		}
		if n := len(b); n > 0 && b[n-1] == '\n' {
			b = b[:n-1]
			if n := len(b); n > 0 && b[n-1] == '\r' {
				b = b[:n-1]
			}
		}
	case r.PasswordEnv.set:
		line = r.PasswordEnv.line
		name := r.PasswordEnv.v
		if !envNamePattern.MatchString(name) {
			p.addf(line, "passwordEnv %q is not an environment variable name", name)
			return
		}
		d.PasswordSource = "environment variable " + name
		var v string
		ok := false
		if p.lookupEnv != nil {
			v, ok = p.lookupEnv(name)
		}
		if !ok {
			p.addf(line, "passwordEnv: environment variable %s is not set", name)
			return
		}
		b = []byte(v)
	default:
		return
	}
	switch {
	case len(b) == 0:
		p.addf(line, "the password from %s is empty", d.PasswordSource)
	case len(b) > maxPasswordBytes:
		p.addf(line, "the password from %s is longer than %d bytes", d.PasswordSource, maxPasswordBytes)
	case !utf8.Valid(b) || strings.IndexByte(string(b), 0) >= 0:
		p.addf(line, "the password from %s must be UTF-8 text without NUL bytes", d.PasswordSource)
	default:
		d.Password = newValue(b, false)
	}
	clear(b)
}

func (p *parser) dynamicSecret(r *rawDynamicSecret) DynamicSecret {
	s := DynamicSecret{
		Name:           r.Name.v,
		Description:    p.text(r.Description, "description", maxSecretDescLen),
		Tags:           p.tags(r.Tags),
		Database:       r.Database.v,
		UsernamePrefix: r.UsernamePrefix.v,
		Line:           r.line,
	}
	switch {
	case !r.Name.set || r.Name.v == "":
		p.addf(r.line, "a dynamic secret needs a name")
	case len(r.Name.v) > maxSecretNameLen:
		p.addf(r.Name.line, "name %q is longer than %d characters", r.Name.v, maxSecretNameLen)
	case !secretNamePattern.MatchString(r.Name.v):
		p.addf(r.Name.line, "name %q may hold only letters, digits and /_+=.@-", r.Name.v)
	}
	switch {
	case !r.Database.set || r.Database.v == "":
		p.addf(r.line, "a dynamic secret needs a database")
	case !databaseNamePattern.MatchString(r.Database.v):
		p.addf(r.Database.line, "database %q is not a database name (1 to %d letters, digits, '.', '_' or '-')", r.Database.v, maxDatabaseIDLength)
	}
	if !r.DefaultTTL.set || r.DefaultTTL.v == "" {
		p.addf(r.line, "a dynamic secret needs a defaultTtl, such as 1h")
	} else {
		s.DefaultTTL = p.ttl(r.DefaultTTL, "defaultTtl")
	}
	if r.MaxTTL.set {
		s.MaxTTL = p.ttl(r.MaxTTL, "maxTtl")
		if s.DefaultTTL > 0 && s.MaxTTL > 0 && s.MaxTTL < s.DefaultTTL {
			p.addf(r.MaxTTL.line, "maxTtl %s is shorter than defaultTtl %s", s.MaxTTL, s.DefaultTTL)
		}
	}
	s.CreationStatements = p.statements(r.CreationStatements, "creationStatements")
	s.RenewStatements = p.statements(r.RenewStatements, "renewStatements")
	s.RevocationStatements = p.statements(r.RevocationStatements, "revocationStatements")
	if len(s.UsernamePrefix) > maxUsernamePrefix || !usernamePrefixPattern.MatchString(s.UsernamePrefix) ||
		strings.Contains(s.UsernamePrefix, "__") || strings.HasPrefix(s.UsernamePrefix, "_") || strings.HasSuffix(s.UsernamePrefix, "_") {
		p.addf(r.UsernamePrefix.line, "usernamePrefix %q must be at most %d lower-case letters, digits or single '_' between them", s.UsernamePrefix, maxUsernamePrefix)
	}
	if r.PasswordLength.set {
		if v := r.PasswordLength.v; v < minPasswordLength || v > maxPasswordLength {
			p.addf(r.PasswordLength.line, "passwordLength %d must be between %d and %d", v, minPasswordLength, maxPasswordLength)
		} else {
			s.PasswordLength = int(v)
		}
	}
	return s
}

// ttl parses a lifetime such as "1h" or "15m".
func (p *parser) ttl(s yStr, field string) time.Duration {
	d, err := time.ParseDuration(s.v)
	if err != nil || d < dynamic.MinTTL || d > dynamic.MaxLeaseTTL {
		p.addf(s.line, "%s %q must be a duration such as 1h or 15m, between %s and %s", field, s.v, dynamic.MinTTL, dynamic.MaxLeaseTTL)
		return 0
	}
	return d
}

// statements checks a list of statement templates.
func (p *parser) statements(l yStrList, field string) []string {
	if len(l.items) > maxStatements {
		p.addf(l.line, "%d %s; the limit is %d", len(l.items), field, maxStatements)
	}
	var out []string
	for i, s := range l.items {
		switch {
		case len(s.v) > maxStatementBytes:
			p.addf(s.line, "%s %d is longer than %d bytes", field, i+1, maxStatementBytes)
		case !utf8.ValidString(s.v):
			p.addf(s.line, "%s %d is not valid UTF-8", field, i+1)
		default:
			if _, err := dynamic.ParseTemplate(s.v); err != nil {
				p.addf(s.line, "%s %d: %s (placeholders are {{name}}, {{password}} and {{expiration}})",
					field, i+1, strings.TrimPrefix(err.Error(), "dynamic: "))
			}
		}
		out = append(out, s.v)
	}
	return out
}
