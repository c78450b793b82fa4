package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/server"
)

// Exit codes of `sigil audit verify`.
const (
	exitVerifyOK       = 0 // intact (torn tail or unsigned tail: warnings only)
	exitVerifyTampered = 1 // tampering found
	exitVerifyUnusable = 2 // the log or key cannot be read, or bad usage
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, search and inspect the tamper-evident audit log",
		Long: `The audit log records every access decision and administrative change as
CloudTrail records (JSON Lines) in <data-dir>/audit, hash-chained and
checkpointed with an Ed25519 signature. Values that could be secret are
replaced by "hmac-sha256:<hex>" under the server's audit HMAC key.

  verify  recompute the chain and check every signature, offline
  query   search records (locally, or through a server with --endpoint)
  hash    compute the HMAC the log holds for a value
  pubkey  print the public key that verifies checkpoints`,
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditQueryCmd(), newAuditHashCmd(), newAuditPubkeyCmd())
	return cmd
}

// defaultAuditDir is where `sigil server` keeps the log by default.
func defaultAuditDir() string { return filepath.Join(server.DefaultDataDir, "audit") }

// usageError prints err and ends with exit status 2.
func usageError(cmd *cobra.Command, err error) error {
	fmt.Fprintf(cmd.ErrOrStderr(), "sigil: %v\n(see %s --help)\n", err, cmd.CommandPath())
	return exitError{code: exitVerifyUnusable}
}

func newAuditVerifyCmd() *cobra.Command {
	var pubPath string
	var sealed, asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [DIR]",
		Short: "Check the audit log's hash chain and checkpoint signatures",
		Long: `Recompute the hash chain across every segment of the audit log in DIR
(default ./sigil-data/audit) and check every checkpoint signature with the
public key: from --pubkey, else audit-signing.pub beside DIR or in it. Take
the key from a trusted copy ('sigil audit pubkey' on the server): someone
able to rewrite the log may also have replaced the key file beside it.

Verify reports OK with counts, or the first broken record: modified,
deleted, reordered or inserted records, a missing or truncated segment, or
a checkpoint signature that does not verify.

A partial last record (the server was killed in the middle of a write) is
a torn tail: a warning, not tampering, since it was never acknowledged.
Records after the last checkpoint are chained but not signed yet (the
server is running, or stopped without closing the log): also a warning,
unless --sealed, which requires the final checkpoint of a clean shutdown
(for archived logs, where a cut at a record boundary must not pass).

Exit status: 0 intact (warnings possible), 1 tampered, 2 the log or key
cannot be read, or bad usage.`,
		Example: `  sigil audit verify
  sigil audit verify /var/lib/sigil/audit --pubkey audit-signing.pub
  sigil audit verify archive/audit --sealed --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError(cmd, errors.New("verify takes at most one directory"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := defaultAuditDir()
			if len(args) == 1 {
				dir = args[0]
			}
			errw := cmd.ErrOrStderr()
			pub, err := verifyKey(dir, pubPath)
			if err != nil {
				fmt.Fprintln(errw, "sigil:", err)
				return exitError{code: exitVerifyUnusable}
			}
			rep, err := audit.Verify(dir, audit.VerifyOptions{PublicKey: pub, RequireSealed: sealed})
			if err != nil {
				fmt.Fprintf(errw, "sigil: cannot verify %s: %v (hint: point at the audit directory, e.g. sigil-data/audit)\n", dir, err)
				return exitError{code: exitVerifyUnusable}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printReport(out, errw, rep)
			}
			if !rep.OK() {
				return exitError{code: exitVerifyTampered}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(usageError)
	f := cmd.Flags()
	f.StringVar(&pubPath, "pubkey", "", "public key file (PEM or base64; default audit-signing.pub beside or in DIR)")
	f.BoolVar(&sealed, "sealed", false, "require the log to end with the final checkpoint of a clean shutdown")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// verifyKey loads the public key from path, or from the key files beside
// or inside the log directory.
func verifyKey(dir, path string) (ed25519.PublicKey, error) {
	if path != "" {
		return audit.LoadPublicKey(path)
	}
	for _, p := range []string{filepath.Join(filepath.Dir(filepath.Clean(dir)), audit.PublicKeyFile), filepath.Join(dir, audit.PublicKeyFile)} {
		if _, err := os.Stat(p); err == nil {
			return audit.LoadPublicKey(p)
		}
	}
	return nil, fmt.Errorf("no public key: pass --pubkey FILE (print it on the server with: sigil audit pubkey > %s)", audit.PublicKeyFile)
}

func printReport(out, errw io.Writer, rep *audit.Report) {
	if !rep.OK() {
		fmt.Fprintf(out, "TAMPERED: %s\n", rep.Problem)
		fmt.Fprintf(out, "verified before it: %d records, %d checkpoints in %d segments\n", rep.Records, rep.Checkpoints, rep.Segments)
		return
	}
	state := "not closed (server running or stopped without closing)"
	if rep.Sealed {
		state = "sealed by a clean shutdown"
	}
	fmt.Fprintf(out, "OK: %d records, %d checkpoints, %d segments; last sequence %d, last checkpoint %d; key %s; %s\n",
		rep.Records, rep.Checkpoints, rep.Segments, rep.LastSequence, rep.LastCheckpoint, rep.KeyID, state)
	if t := rep.Torn; t != nil {
		fmt.Fprintf(errw, "warning: torn tail: %s ends with a partial record (%d bytes at offset %d), cut off by a crash; it was never acknowledged\n", t.Segment, t.Bytes, t.Offset)
	}
	if rep.Unsigned > 0 {
		fmt.Fprintf(errw, "warning: %d lines after the last checkpoint (sequence %d) are chained but not signed yet\n", rep.Unsigned, rep.LastCheckpoint)
	}
	for _, a := range rep.Abandoned {
		fmt.Fprintf(errw, "note: %s: %d bytes after offset %d were never acknowledged (next segment started: %s)\n", a.Segment, a.Bytes, a.Offset, a.Reason)
	}
}

// queryFlags are the filter flags of `audit query`.
type queryFlags struct {
	since, until, principal, action, resource, decision, outcome, sourceIP string
	control                                                                bool
}

func (q *queryFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&q.since, "since", "", "only records at or after this time: RFC 3339, or a duration ago (90m, 24h, 7d)")
	f.StringVar(&q.until, "until", "", "only records before this time: RFC 3339, or a duration ago")
	f.StringVar(&q.principal, "principal", "", "only records whose principal ARN or id contains this")
	f.StringVar(&q.action, "action", "", "only this eventName (GetSecretValue, or secretsmanager:GetSecretValue)")
	f.StringVar(&q.resource, "resource", "", "only records with a resource ARN containing this")
	f.StringVar(&q.decision, "decision", "", "allow or deny")
	f.StringVar(&q.outcome, "outcome", "", "success or error")
	f.StringVar(&q.sourceIP, "source-ip", "", "only records from this source IP address")
	f.BoolVar(&q.control, "control", false, "also show the log's segment headers and checkpoints")
}

// request converts the flags to the wire form both paths use.
func (q *queryFlags) request(now time.Time) (audit.QueryRequest, error) {
	req := audit.QueryRequest{
		Principal: q.principal, Action: q.action, Resource: q.resource, Decision: q.decision,
		Outcome: q.outcome, SourceIP: q.sourceIP, IncludeControl: q.control,
	}
	for _, b := range []struct {
		name, in string
		out      *string
	}{{"--since", q.since, &req.Since}, {"--until", q.until, &req.Until}} {
		if b.in == "" {
			continue
		}
		t, err := parseTimeBound(b.in, now)
		if err != nil {
			return req, fmt.Errorf("%s %q: %w", b.name, b.in, err)
		}
		*b.out = t.UTC().Format(time.RFC3339)
	}
	if _, err := req.Filter(); err != nil {
		return req, err
	}
	return req, nil
}

// parseTimeBound reads an RFC 3339 time or a duration before now ("90m",
// "24h", "7d").
func parseTimeBound(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return time.Time{}, errors.New("want an RFC 3339 time or a duration like 90m, 24h or 7d")
		}
		return now.Add(-time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, errors.New("want an RFC 3339 time or a duration like 90m, 24h or 7d")
	}
	return now.Add(-d), nil
}

func newAuditQueryCmd() *cobra.Command {
	var (
		qf         queryFlags
		cf         clientFlags
		asJSON     bool
		cloudtrail bool
		follow     bool
		limit      int
		interval   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "query [DIR]",
		Short: "Search audit records",
		Long: `Search the audit log in DIR (default ./sigil-data/audit), or through a
running server with --endpoint (POST /v1/audit, signed with SigV4; the
caller needs sigil:ReadAudit). Every filter given must match.

Output is a table by default, JSON Lines with --json (the records exactly as
stored), or one CloudTrail log document ({"Records":[...]}) with
--cloudtrail, which CloudTrail tools such as Falco's cloudtrail plugin read
from a .json file. With -f the query keeps running and prints new records
as they are written (from now on, unless --since is given); stop it with
Ctrl-C.

Query does not verify the log: run 'sigil audit verify' for that.`,
		Example: `  sigil audit query --since 1h --decision deny
  sigil audit query --principal user/ci --action GetSecretValue --json
  sigil audit query --resource secret:prod/ --since 2026-01-01T00:00:00Z --cloudtrail > trail.json
  sigil audit query -f --outcome error
  sigil audit query --endpoint https://sigil.internal:8200 --credentials-file auditor.credentials --since 7d`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON && cloudtrail {
				return errors.New("--json and --cloudtrail exclude each other")
			}
			if follow && cloudtrail {
				return errors.New("--cloudtrail writes one document and cannot follow: use --json with -f")
			}
			remote := cmd.Flags().Changed("endpoint")
			if remote && len(args) == 1 {
				return errors.New("give either DIR or --endpoint, not both")
			}
			req, err := qf.request(time.Now())
			if err != nil {
				return err
			}
			p := newRecordPrinter(cmd.OutOrStdout(), asJSON, cloudtrail, follow)
			ctx := cmd.Context()
			if remote {
				err = queryRemote(ctx, &cf, req, limit, follow, interval, p)
			} else {
				dir := defaultAuditDir()
				if len(args) == 1 {
					dir = args[0]
				}
				err = queryLocal(ctx, dir, req, limit, follow, interval, p)
			}
			if errors.Is(err, errLimit) || (follow && errors.Is(err, context.Canceled)) {
				err = nil
			}
			if ferr := p.finish(); err == nil {
				err = ferr
			}
			return err
		},
	}
	qf.register(cmd)
	cf.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print records as JSON Lines, exactly as stored")
	f.BoolVar(&cloudtrail, "cloudtrail", false, `print one CloudTrail log document {"Records":[...]}`)
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new records as they are written")
	f.IntVar(&limit, "limit", 0, "stop after this many records (0: no limit)")
	f.DurationVar(&interval, "interval", time.Second, "how often -f looks for new records")
	return cmd
}

// errLimit stops a query once --limit records were printed.
var errLimit = errors.New("limit reached")

func queryLocal(ctx context.Context, dir string, req audit.QueryRequest, limit int, follow bool, interval time.Duration, p *recordPrinter) error {
	f, err := req.Filter()
	if err != nil {
		return err
	}
	emit := func(r audit.Record) error {
		if err := p.print(r); err != nil {
			return err
		}
		if limit > 0 && p.n >= limit {
			return errLimit
		}
		return nil
	}
	if !follow {
		return audit.Query(dir, f, emit)
	}
	if req.Since == "" && req.AfterSequence == 0 {
		last, err := audit.LastSequence(dir)
		if err != nil {
			return err
		}
		f.AfterSequence = last
	}
	return audit.Follow(ctx, dir, f, interval, emit)
}

// queryRemote pages through POST /v1/audit, and with follow keeps polling
// from the last sequence seen.
func queryRemote(ctx context.Context, cf *clientFlags, req audit.QueryRequest, limit int, follow bool, interval time.Duration, p *recordPrinter) error {
	// Following from now: page through what the log already holds without
	// printing it.
	skip := follow && req.Since == "" && req.AfterSequence == 0
	for {
		var resp audit.QueryResponse
		if err := cf.call(ctx, "POST", "/v1/audit", req, &resp, true); err != nil {
			return err
		}
		if !skip {
			for _, raw := range resp.Records {
				var r audit.Record
				if err := json.Unmarshal(raw, &r); err != nil {
					return fmt.Errorf("decoding a record from the server: %w", err)
				}
				r.Raw = raw
				if err := p.print(r); err != nil {
					return err
				}
				if limit > 0 && p.n >= limit {
					return errLimit
				}
			}
		}
		req.AfterSequence = resp.LastSequence
		if resp.Truncated {
			continue
		}
		skip = false
		if !follow {
			return nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// recordPrinter writes records as a table, JSON Lines or a CloudTrail
// document.
type recordPrinter struct {
	out        io.Writer
	tw         *tabwriter.Writer
	json       bool
	cloudtrail bool
	flush      bool
	n          int
}

func newRecordPrinter(out io.Writer, asJSON, cloudtrail, flushEach bool) *recordPrinter {
	p := &recordPrinter{out: out, json: asJSON, cloudtrail: cloudtrail, flush: flushEach}
	if !asJSON && !cloudtrail {
		p.tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(p.tw, "TIME\tSEQ\tDECISION\tOUTCOME\tPRINCIPAL\tACTION\tRESOURCE\tSOURCE IP")
	}
	return p
}

func (p *recordPrinter) print(r audit.Record) error {
	defer func() { p.n++ }()
	switch {
	case p.json:
		_, err := fmt.Fprintf(p.out, "%s\n", r.Raw)
		return err
	case p.cloudtrail:
		sep := ",\n"
		if p.n == 0 {
			sep = `{"Records":[` + "\n"
		}
		_, err := fmt.Fprintf(p.out, "%s%s", sep, r.Raw)
		return err
	}
	who := "-"
	if u := r.UserIdentity; u != nil {
		who = firstOf(u.ARN, u.PrincipalID, u.Type)
	}
	res := "-"
	if len(r.Resources) > 0 {
		res = r.Resources[0].ARN
		if len(r.Resources) > 1 {
			res += fmt.Sprintf(" (+%d)", len(r.Resources)-1)
		}
	}
	svc, _, _ := strings.Cut(r.EventSource, ".")
	outcome := "ok"
	if r.ErrorCode != "" {
		outcome = r.ErrorCode
	}
	fmt.Fprintf(p.tw, "%s\t%d\t%s\t%s\t%s\t%s:%s\t%s\t%s\n", r.EventTime, r.AdditionalEventData.Sequence,
		firstOf(r.AdditionalEventData.Decision, "-"), outcome, who, svc, r.EventName, res, firstOf(r.SourceIPAddress, "-"))
	if p.flush {
		return p.tw.Flush()
	}
	return nil
}

func (p *recordPrinter) finish() error {
	switch {
	case p.tw != nil:
		return p.tw.Flush()
	case p.cloudtrail && p.n == 0:
		_, err := fmt.Fprintln(p.out, `{"Records":[]}`)
		return err
	case p.cloudtrail:
		_, err := fmt.Fprintln(p.out, "\n]}")
		return err
	}
	return nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func newAuditHashCmd() *cobra.Command {
	var keyPath, dataDir, search string
	cmd := &cobra.Command{
		Use:   "hash [VALUE]",
		Short: "Print the HMAC the audit log holds in place of a secret value",
		Long: `Print hmac-sha256:<hex> of VALUE under the server's audit HMAC key: what
the audit log holds wherever that value was sent or returned in a field
that could be secret (SecretString, Password, SessionToken, ...). Grep the
log for it, or pass --search DIR to list the records that hold it.

Without VALUE the value is read from standard input, which keeps it out of
the shell history and the process list; one trailing newline is removed.
The value itself is never printed.

The key is <data-dir>/audit-hmac.key (mode 0600) unless --key names it.`,
		Example: `  printf %s "$DB_PASSWORD" | sigil audit hash
  sigil audit hash --key /var/lib/sigil/audit-hmac.key --search /var/lib/sigil/audit < value.txt`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				keyPath = filepath.Join(dataDir, audit.HMACKeyFile)
			}
			key, err := audit.LoadHMACKey(keyPath)
			if err != nil {
				return fmt.Errorf("%w (hint: --key FILE or --data-dir DIR)", err)
			}
			var value []byte
			if len(args) == 1 {
				value = []byte(args[0])
			} else {
				if value, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), audit.MaxRecordBytes+1)); err != nil {
					return fmt.Errorf("reading the value from standard input: %w", err)
				}
				value = bytes.TrimSuffix(value, []byte("\n"))
				value = bytes.TrimSuffix(value, []byte("\r"))
			}
			h := audit.HashValue(key, value)
			clear(value)
			fmt.Fprintln(cmd.OutOrStdout(), h)
			if search == "" {
				return nil
			}
			p := newRecordPrinter(cmd.OutOrStdout(), false, false, false)
			needle := []byte(`"` + h + `"`)
			err = audit.Query(search, audit.Filter{}, func(r audit.Record) error {
				if bytes.Contains(r.Raw, needle) {
					return p.print(r)
				}
				return nil
			})
			if ferr := p.finish(); err == nil {
				err = ferr
			}
			if err != nil {
				return err
			}
			if p.n == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no record holds this value")
				return exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", "", "HMAC key file (default <data-dir>/audit-hmac.key)")
	f.StringVar(&dataDir, "data-dir", server.DefaultDataDir, "the server's data directory")
	f.StringVar(&search, "search", "", "also list the records of the audit log in this directory that hold the value (exit 1 when none)")
	return cmd
}

func newAuditPubkeyCmd() *cobra.Command {
	var dataDir string
	var b64 bool
	cmd := &cobra.Command{
		Use:   "pubkey",
		Short: "Print the public key that verifies audit checkpoints",
		Long: `Print the Ed25519 public key that verifies the audit log's checkpoint
signatures, as PKIX PEM ("PUBLIC KEY") or, with --base64, as the standard
base64 of its 32 bytes. Both forms are accepted by 'sigil audit verify
--pubkey'. Keep a copy away from the server: a verifier should not trust
the key file beside the log it checks.

The key is read from <data-dir>/audit-signing.pub, or derived from
<data-dir>/audit-signing.key.`,
		Example: `  sigil audit pubkey > audit-signing.pub
  sigil audit pubkey --data-dir /var/lib/sigil --base64`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := audit.LoadPublicKey(filepath.Join(dataDir, audit.PublicKeyFile))
			if errors.Is(err, fs.ErrNotExist) {
				var keys *audit.Keys
				if keys, err = audit.LoadKeys(dataDir); err == nil {
					pub = keys.Public()
				}
			}
			if err != nil {
				return fmt.Errorf("%w (hint: --data-dir names the server's data directory)", err)
			}
			out := cmd.OutOrStdout()
			if b64 {
				_, err = fmt.Fprintln(out, base64.StdEncoding.EncodeToString(pub))
			} else {
				_, err = out.Write(audit.MarshalPublicKey(pub))
			}
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", server.DefaultDataDir, "the server's data directory")
	cmd.Flags().BoolVar(&b64, "base64", false, "print the raw 32-byte key in base64 instead of PEM")
	return cmd
}
