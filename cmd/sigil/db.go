package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/dynamic"
	"sigil.dev/sigil/internal/server"
)

// maxPasswordFileBytes bounds a --password-file (the server accepts 1024
// bytes).
const maxPasswordFileBytes = 4096

func newDBCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Register databases and configure dynamic database secrets",
		Long: `A registered database is a PostgreSQL or MySQL server and a privileged login
that sigil uses to create and remove short-lived users. A dynamic secret is a
Secrets Manager secret whose GetSecretValue returns such a user, issued for the
caller's session, as {"engine","host","port","dbname","username","password",
"expires"}; the user is dropped when its lease expires or is revoked (see
sigil lease).

  sigil db put shop --engine postgresql --host db.internal --username sigil --password-file pw.txt
  sigil db secret put my-app/database-credentials --database shop --ttl 1h --creation-file create.sql
  sigil db rotate-root shop`,
	}
	cmd.AddCommand(newDBPutCmd(), newDBGetCmd(), newDBListCmd(), newDBDeleteCmd(), newDBRotateRootCmd(), newDBSecretCmd())
	return cmd
}

// dbPutOptions are the flags of sigil db put.
type dbPutOptions struct {
	cf                                clientFlags
	engine, host, dbname, username    string
	passwordFile, passwordEnv         string
	keepPassword                      bool
	tlsMode, tlsCAFile, tlsServerName string
	port, maxConns                    int
	verify, asJSON                    bool
}

func newDBPutCmd() *cobra.Command {
	var o dbPutOptions
	cmd := &cobra.Command{
		Use:   "put NAME --engine postgresql|mysql --host HOST --username USER (--password-file FILE | --password-env VAR)",
		Short: "Register a database, or replace its registration",
		Long: `Register the database NAME with the privileged login sigil uses to create and
drop users (it needs CREATEROLE in PostgreSQL, CREATE USER and GRANT OPTION in
MySQL). The password is read from a file (one trailing newline is dropped) or
an environment variable, never from the command line, and is never printed.

Putting an existing name replaces its settings; --keep-password keeps the
stored password (the one sigil set with rotate-root, for example). The engine
of a registered database cannot change. With --verify the server logs in with
the settings before answering. Requires sigil:PutDatabase.`,
		Example: `  sigil db put shop --engine postgresql --host 10.0.0.5 --dbname shop \
      --username sigil_admin --password-file admin-password.txt --tls-mode verify-full --verify
  DB_ADMIN_PASSWORD=... sigil db put shop --engine postgresql --host 127.0.0.1 \
      --username sigil_admin --password-env DB_ADMIN_PASSWORD --tls-mode disable
  sigil db put shop --engine postgresql --host 10.0.0.6 --username sigil_admin --keep-password`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.request(args[0])
			if err != nil {
				return err
			}
			var db dynamic.Database
			if err := o.cf.call(cmd.Context(), "POST", "/v1/databases/put", req, &db, true); err != nil {
				return fmt.Errorf("registering database %s: %w", args[0], err)
			}
			if o.asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(db)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Registered database %s (%s).\n", db.Name, dbAddress(db))
			if o.verify {
				fmt.Fprintln(cmd.OutOrStdout(), "The server logged in with these settings.")
			}
			return nil
		},
	}
	o.cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.engine, "engine", "", `database engine: "postgresql" or "mysql" (required)`)
	f.StringVar(&o.host, "host", "", "database server host name or address (required)")
	f.IntVar(&o.port, "port", 0, "database server port (default 5432 for postgresql, 3306 for mysql)")
	f.StringVar(&o.dbname, "dbname", "", "database to connect to, and the one issued users are handed")
	f.StringVar(&o.username, "username", "", "privileged login that creates and drops users (required)")
	f.StringVar(&o.passwordFile, "password-file", "", "file holding the privileged login's password")
	f.StringVar(&o.passwordEnv, "password-env", "", "environment variable holding the privileged login's password")
	f.BoolVar(&o.keepPassword, "keep-password", false, "keep the stored password of an already registered database")
	f.StringVar(&o.tlsMode, "tls-mode", "", `"verify-full" (the default), "require" (encrypt without checking the certificate) or "disable"`)
	f.StringVar(&o.tlsCAFile, "tls-ca-file", "", "PEM file of the CAs that sign the server's certificate (default: the system roots)")
	f.StringVar(&o.tlsServerName, "tls-server-name", "", "name expected in the server's certificate (default: --host)")
	f.IntVar(&o.maxConns, "max-conns", 0, "privileged connections per dynamic secret, 1 to 64 (default 4)")
	f.BoolVar(&o.verify, "verify", false, "have the server log in with the settings before answering")
	f.BoolVar(&o.asJSON, "json", false, "print the stored registration as JSON (without the password)")
	return cmd
}

// request checks the flags and builds the request, reading the password.
func (o *dbPutOptions) request(name string) (server.DatabaseRequest, error) {
	var missing []string
	for _, f := range []struct{ flag, v string }{{"--engine", o.engine}, {"--host", o.host}, {"--username", o.username}} {
		if f.v == "" {
			missing = append(missing, f.flag)
		}
	}
	if len(missing) > 0 {
		return server.DatabaseRequest{}, fmt.Errorf("missing %s (see sigil db put --help)", strings.Join(missing, ", "))
	}
	if o.engine != dynamic.EnginePostgres && o.engine != dynamic.EngineMySQL {
		return server.DatabaseRequest{}, fmt.Errorf("--engine %q: want %q or %q", o.engine, dynamic.EnginePostgres, dynamic.EngineMySQL)
	}
	switch o.tlsMode {
	case "", dynamic.TLSVerifyFull, dynamic.TLSRequire, dynamic.TLSDisable:
	default:
		return server.DatabaseRequest{}, fmt.Errorf("--tls-mode %q: want %q, %q or %q", o.tlsMode, dynamic.TLSVerifyFull, dynamic.TLSRequire, dynamic.TLSDisable)
	}
	if o.port < 0 || o.port > 65535 {
		return server.DatabaseRequest{}, fmt.Errorf("--port %d is not a TCP port", o.port)
	}
	if o.maxConns < 0 || o.maxConns > 64 {
		return server.DatabaseRequest{}, fmt.Errorf("--max-conns %d: want 1 to 64", o.maxConns)
	}
	req := server.DatabaseRequest{Database: dynamic.Database{
		Name: name, Engine: o.engine, Host: o.host, Port: o.port, DBName: o.dbname, Username: o.username,
		TLS:      dynamic.TLS{Mode: o.tlsMode, ServerName: o.tlsServerName},
		MaxConns: o.maxConns,
	}, Verify: o.verify}
	if o.tlsCAFile != "" {
		b, err := os.ReadFile(o.tlsCAFile)
		if err != nil {
			return server.DatabaseRequest{}, fmt.Errorf("reading --tls-ca-file: %w", err)
		}
		req.TLS.CACert = string(b)
	}
	pw, err := readPassword(o.passwordFile, o.passwordEnv, o.keepPassword)
	if err != nil {
		return server.DatabaseRequest{}, err
	}
	req.Password = pw
	return req, nil
}

// readPassword reads the password from exactly one of file and env, or
// returns "" when keep is set and neither is given. Errors name the
// source, never the value.
func readPassword(file, env string, keep bool) (string, error) {
	n := 0
	for _, s := range []string{file, env} {
		if s != "" {
			n++
		}
	}
	switch {
	case n > 1 || (n == 1 && keep):
		return "", errors.New("give one of --password-file, --password-env and --keep-password")
	case keep:
		return "", nil
	case n == 0:
		return "", errors.New("no password: give --password-file FILE or --password-env VAR (never the password itself), or --keep-password to keep the stored one of a registered database")
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("--password-env: environment variable %s is not set or empty", env)
		}
		return v, nil
	}
	fh, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("reading --password-file: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxPasswordFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading --password-file %q: %w", file, err)
	}
	if len(b) > maxPasswordFileBytes {
		clear(b)
		return "", fmt.Errorf("--password-file %q is larger than %d bytes; it must hold only the password", file, maxPasswordFileBytes)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	clear(b)
	if pw == "" {
		return "", fmt.Errorf("--password-file %q is empty", file)
	}
	return pw, nil
}

func dbAddress(db dynamic.Database) string {
	s := db.Engine + "://" + db.Username + "@" + db.Host + ":" + strconv.Itoa(db.Port)
	if db.DBName != "" {
		s += "/" + db.DBName
	}
	return s + ", tls " + db.TLS.Mode
}

func newDBGetCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a registered database (never its password)",
		Long: `Show the settings of the registered database NAME. The password is never
returned by the server. Requires sigil:GetDatabase.`,
		Example: `  sigil db get shop
  sigil db get shop --json | jq .rootRotated`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var db dynamic.Database
			if err := cf.call(cmd.Context(), "POST", "/v1/databases/get", server.NameRequest{Name: args[0]}, &db, true); err != nil {
				return fmt.Errorf("reading database %s: %w (hint: sigil db list shows the registered databases)", args[0], err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(db)
			}
			return writeDatabase(cmd.OutOrStdout(), db)
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the registration as JSON")
	return cmd
}

func writeDatabase(w io.Writer, db dynamic.Database) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	ca := "system roots"
	if db.TLS.CACert != "" {
		ca = "custom bundle"
	}
	serverName := db.TLS.ServerName
	if serverName == "" {
		serverName = "(host)"
	}
	maxConns := strconv.Itoa(db.MaxConns)
	if db.MaxConns == 0 {
		maxConns = "4 (default)"
	}
	rows := [][2]string{
		{"Name", db.Name}, {"Engine", db.Engine}, {"Host", db.Host}, {"Port", strconv.Itoa(db.Port)},
		{"Database", orDash(db.DBName)}, {"Username", db.Username}, {"TLS mode", db.TLS.Mode},
		{"TLS CAs", ca}, {"TLS server name", serverName}, {"Max connections", maxConns},
		{"Root rotated", rotatedText(db.RootRotated)},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

func rotatedText(t time.Time) string {
	if t.IsZero() {
		return "never (the registered password is still in use)"
	}
	return t.UTC().Format(time.RFC3339) + " (only sigil knows the password)"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newDBListCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List registered databases",
		Long:  `List every registered database, by name, without passwords. Requires sigil:ListDatabases.`,
		Example: `  sigil db list
  sigil db list --json | jq -r '.databases[].name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp server.DatabasesResponse
			if err := cf.call(cmd.Context(), "POST", "/v1/databases/list", struct{}{}, &resp, true); err != nil {
				return fmt.Errorf("listing databases: %w", err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(resp)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tENGINE\tHOST\tPORT\tDATABASE\tUSERNAME\tTLS\tROOT ROTATED")
			for _, db := range resp.Databases {
				rotated := "never"
				if !db.RootRotated.IsZero() {
					rotated = db.RootRotated.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", db.Name, db.Engine, db.Host, db.Port, orDash(db.DBName), db.Username, db.TLS.Mode, rotated)
			}
			return tw.Flush()
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")
	return cmd
}

func newDBDeleteCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Remove a database's registration",
		Long: `Remove the registration of database NAME, with its stored password. It is
refused while a dynamic secret uses the database: delete those secrets first
(their leases are revoked when they are purged). Nothing changes in the
database itself. Requires sigil:DeleteDatabase.`,
		Example: `  sigil db delete shop`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.call(cmd.Context(), "POST", "/v1/databases/delete", server.NameRequest{Name: args[0]}, nil, true); err != nil {
				return fmt.Errorf("deleting database %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted the registration of database %s.\n", args[0])
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}

func newDBRotateRootCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate-root NAME",
		Short: "Replace the privileged password with one only sigil knows",
		Long: `Set a new random password for the privileged login of database NAME, in the
database and in sigil. Afterwards nobody but sigil knows the password: the one
you registered stops working, and the new one is never shown. sigil keeps
using it to create and remove users. To take the login back, reset its
password in the database as its administrator and run sigil db put again.
Requires sigil:RotateDatabaseRoot.`,
		Example: `  sigil db rotate-root shop`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var db dynamic.Database
			if err := cf.call(cmd.Context(), "POST", "/v1/databases/rotate-root", server.NameRequest{Name: args[0]}, &db, true); err != nil {
				return fmt.Errorf("rotating the root password of database %s: %w (hint: the server log has the cause; running it again finishes an interrupted rotation)", args[0], err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(db)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Rotated the password of %s on database %s at %s.\n", db.Username, db.Name, db.RootRotated.UTC().Format(time.RFC3339))
			fmt.Fprintf(cmd.OutOrStdout(), "Nobody but sigil knows the new password: it was never shown, and the password you registered no longer works.\n")
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the registration as JSON (without the password)")
	return cmd
}

func newDBSecretCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Configure dynamic database secrets",
	}
	cmd.AddCommand(newDBSecretPutCmd(), newDBSecretGetCmd())
	return cmd
}

// statementFlags are the repeated and file forms of one kind of statement.
type statementFlags struct {
	kind   string
	inline []string
	file   string
}

func (s *statementFlags) register(cmd *cobra.Command, kind, what string) {
	s.kind = kind
	cmd.Flags().StringArrayVar(&s.inline, kind, nil, what+" statement (repeat for several, run in order)")
	cmd.Flags().StringVar(&s.file, kind+"-file", "", "file of "+what+" statements, separated by lines holding only ---")
}

// statements returns the statements given, nil for none (the engine's
// defaults).
func (s *statementFlags) statements() ([]string, error) {
	if s.file != "" && len(s.inline) > 0 {
		return nil, fmt.Errorf("give --%s or --%s-file, not both", s.kind, s.kind)
	}
	if s.file == "" {
		for _, st := range s.inline {
			if strings.TrimSpace(st) == "" {
				return nil, fmt.Errorf("--%s: a statement is empty", s.kind)
			}
		}
		return s.inline, nil
	}
	b, err := os.ReadFile(s.file)
	if err != nil {
		return nil, fmt.Errorf("reading --%s-file: %w", s.kind, err)
	}
	out := splitStatements(string(b))
	if len(out) == 0 {
		return nil, fmt.Errorf("--%s-file %q holds no statement", s.kind, s.file)
	}
	return out, nil
}

// splitStatements splits text at lines holding only "---" and drops blank
// pieces; each statement is trimmed of surrounding white space.
func splitStatements(text string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if st := strings.TrimSpace(cur.String()); st != "" {
			out = append(out, st)
		}
		cur.Reset()
	}
	for line := range strings.Lines(text) {
		if strings.TrimSpace(line) == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
	}
	flush()
	return out
}

// dbSecretPutOptions are the flags of sigil db secret put.
type dbSecretPutOptions struct {
	cf                          clientFlags
	database, ttl, maxTTL       string
	creation, renew, revocation statementFlags
	usernamePrefix, description string
	passwordLength              int
	tags                        []string
	asJSON                      bool
}

func newDBSecretPutCmd() *cobra.Command {
	var o dbSecretPutOptions
	cmd := &cobra.Command{
		Use:   "put NAME --database DB --ttl DURATION",
		Short: "Create or update a dynamic database secret",
		Long: `Create the dynamic secret NAME, or update it: a Secrets Manager secret whose
GetSecretValue issues a database user of database DB for the caller's session,
valid for --ttl and renewable up to --max-ttl (default: --ttl).

Statements are templates: {{name}}, {{password}} and {{expiration}} are
replaced, quoted by the database driver. Without creation statements the
engine's default creates a login user with no privileges; without renew or
revocation statements the engine's defaults extend the user's validity and
drop it. Give statements with repeated flags, or in a file with statements
separated by lines holding only ---. The description and tags (--tag, the
whole set) are those of the Secrets Manager secret. Requires
sigil:PutDynamicSecret on the secret.`,
		Example: `  sigil db secret put my-app/database-credentials --database shop --ttl 1h --max-ttl 24h \
      --creation 'CREATE ROLE {{name}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}' \
      --creation 'GRANT SELECT ON products TO {{name}}' --username-prefix app --tag app=my-app
  sigil db secret put my-app/database-credentials --database shop --ttl 15m --creation-file create.sql`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.request(args[0])
			if err != nil {
				return err
			}
			var resp server.DynamicSecretResponse
			if err := o.cf.call(cmd.Context(), "POST", "/v1/dynamic-secrets/put", req, &resp, true); err != nil {
				return fmt.Errorf("putting dynamic secret %s: %w", args[0], err)
			}
			if o.asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(resp)
			}
			verb := "Updated"
			if resp.Created {
				verb = "Created"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s dynamic secret %s (%s).\n", verb, resp.Name, resp.ARN)
			return writeDynamicSecret(cmd.OutOrStdout(), resp)
		},
	}
	o.cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.database, "database", "", "registered database that issues the users (required)")
	f.StringVar(&o.ttl, "ttl", "", "lifetime of an issued user, such as 1h or 15m (required)")
	f.StringVar(&o.maxTTL, "max-ttl", "", "longest lifetime across renewals (default: --ttl)")
	o.creation.register(cmd, "creation", "creation")
	o.renew.register(cmd, "renew", "renew")
	o.revocation.register(cmd, "revocation", "revocation")
	f.StringVar(&o.usernamePrefix, "username-prefix", "", `readable start of issued usernames: up to 16 lower-case letters, digits or "_" (default "v")`)
	f.IntVar(&o.passwordLength, "password-length", 0, "length of generated passwords, at least 16 (default 32)")
	f.StringVar(&o.description, "description", "", "the secret's description")
	f.StringArrayVar(&o.tags, "tag", nil, "a tag of the secret, KEY=VALUE (repeat for several)")
	f.BoolVar(&o.asJSON, "json", false, "print the stored configuration as JSON")
	return cmd
}

func (o *dbSecretPutOptions) request(name string) (server.DynamicSecretRequest, error) {
	req := server.DynamicSecretRequest{Name: name, Description: o.description, Database: o.database,
		DefaultTTL: o.ttl, MaxTTL: o.maxTTL, UsernamePrefix: o.usernamePrefix, PasswordLength: o.passwordLength}
	switch {
	case o.database == "":
		return req, errors.New("missing --database: the registered database that issues the users (see sigil db list)")
	case o.ttl == "":
		return req, errors.New("missing --ttl: the lifetime of an issued user, such as 1h")
	}
	if err := checkTTL("--ttl", o.ttl); err != nil {
		return req, err
	}
	if o.maxTTL != "" {
		if err := checkTTL("--max-ttl", o.maxTTL); err != nil {
			return req, err
		}
	}
	if o.passwordLength < 0 {
		return req, fmt.Errorf("--password-length %d: want at least 16", o.passwordLength)
	}
	var err error
	if req.CreationStatements, err = o.creation.statements(); err != nil {
		return req, err
	}
	if req.RenewStatements, err = o.renew.statements(); err != nil {
		return req, err
	}
	if req.RevocationStatements, err = o.revocation.statements(); err != nil {
		return req, err
	}
	for _, kv := range o.tags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return req, fmt.Errorf("--tag %q: want KEY=VALUE", kv)
		}
		if req.Tags == nil {
			req.Tags = map[string]string{}
		}
		if _, dup := req.Tags[k]; dup {
			return req, fmt.Errorf("--tag: key %q is given twice", k)
		}
		req.Tags[k] = v
	}
	return req, nil
}

// checkTTL checks a duration flag the way the server will.
func checkTTL(flag, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < dynamic.MinTTL || d > dynamic.MaxLeaseTTL {
		return fmt.Errorf("%s %q: want a duration such as 1h or 15m, between %s and %s", flag, v, dynamic.MinTTL, dynamic.MaxLeaseTTL)
	}
	return nil
}

func writeDynamicSecret(w io.Writer, s server.DynamicSecretResponse) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	prefix, pwLen := s.UsernamePrefix, strconv.Itoa(s.PasswordLength)
	if prefix == "" {
		prefix = "v (default)"
	}
	if s.PasswordLength == 0 {
		pwLen = "32 (default)"
	}
	fmt.Fprintf(tw, "Name:\t%s\nARN:\t%s\nDatabase:\t%s\nTTL:\t%s\nMax TTL:\t%s\nUsername prefix:\t%s\nPassword length:\t%s\n",
		s.Name, s.ARN, s.Database, s.DefaultTTL, s.MaxTTL, prefix, pwLen)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, st := range []struct {
		what  string
		stmts []string
	}{{"Creation", s.CreationStatements}, {"Renew", s.RenewStatements}, {"Revocation", s.RevocationStatements}} {
		if len(st.stmts) == 0 {
			fmt.Fprintf(w, "%s statements: the engine's defaults\n", st.what)
			continue
		}
		fmt.Fprintf(w, "%s statements:\n", st.what)
		for i, stmt := range st.stmts {
			fmt.Fprintf(w, "  %d. %s\n", i+1, strings.ReplaceAll(stmt, "\n", "\n     "))
		}
	}
	return nil
}

func newDBSecretGetCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a dynamic secret's configuration",
		Long: `Show the database, lifetimes and statements of the dynamic secret NAME. Its
value is read with GetSecretValue, like any secret's. Requires
sigil:GetDynamicSecret on the secret.`,
		Example: `  sigil db secret get my-app/database-credentials`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var resp server.DynamicSecretResponse
			if err := cf.call(cmd.Context(), "POST", "/v1/dynamic-secrets/get", server.NameRequest{Name: args[0]}, &resp, true); err != nil {
				return fmt.Errorf("reading dynamic secret %s: %w", args[0], err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(resp)
			}
			return writeDynamicSecret(cmd.OutOrStdout(), resp)
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the configuration as JSON")
	return cmd
}
