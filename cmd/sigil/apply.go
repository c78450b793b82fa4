package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/apply"
)

// applyOptions are the flags of sigil apply.
type applyOptions struct {
	cf           clientFlags
	file         string
	dryRun       bool
	updateValues bool
	asJSON       bool
	accountID    string
}

func newApplyCmd() *cobra.Command {
	var o applyOptions
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Make the server's roles, policies, users, databases and secrets match a YAML file",
		Long: `Read a declarative YAML file of OIDC providers, managed policies, roles,
users, databases, dynamic secrets, rotators and secrets, compare it with what
the server holds, print the plan (create, update with the steps, or no change,
per object) and make the calls that close the gap, through the server's IAM,
Secrets Manager and native APIs. Running the same file again changes nothing.

Objects apply in dependency order: OIDC providers, managed policies, roles,
users, databases, dynamic secrets, rotators, secrets. For each object in the
file the file is the whole truth (inline policies, attachments and tags it
does not list are removed), but objects absent from the file are
never deleted, as with kubectl apply without --prune: delete them with the
IAM or Secrets Manager API, or sigil db delete.

Secret values come from a file (valueFile, relative to FILE) or an environment
variable (valueEnv), never from FILE itself, and are never printed. A value is
written when its secret is created; an existing secret's value is left as is
unless --update-values is given, which compares the server's value with the
file's (in constant time) and writes a new version only when they differ. A
database's password (passwordFile or passwordEnv) is write-only: it is sent
when the database is registered, and afterwards only with --update-values,
which then sends it on every run, except once sigil db rotate-root has
replaced it. A webhook rotator's key (keyFile or keyEnv) is write-only the
same way. A secret's rotation block is compared with DescribeSecret and
applied with RotateSecret (or CancelRotateSecret for enabled: false) only when
it differs; apply never starts a rotation by itself unless the block changed
and says rotateImmediately: true. apply never creates access keys for users.

apply stops at the first failing step. An object it was creating is rolled
back (deleted again, with everything attached to it in this run); an object
that existed keeps the steps before the failure, and the error names the step
that failed. The exit status is non-zero on any error.

Strings in FILE may hold {{account}} and {{region}}: the server's account id
(asked of the server with IAM GetUser, or --account-id) and the signing
region. A dynamic secret's statements are sent as written: their {{name}},
{{password}} and {{expiration}} are filled in by the server for each user.`,
		Example: `  # See what would change, then apply it, as root:
  sigil apply -f examples/ecommerce/sigil.yaml --dry-run --credentials-file sigil-data/root.credentials
  sigil apply -f examples/ecommerce/sigil.yaml --credentials-file sigil-data/root.credentials

  # Replace secret values that differ from their files, machine-readably:
  sigil apply -f sigil.yaml --update-values --json`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runApply(cmd.Context(), cmd.OutOrStdout(), cmd.InOrStdin(), &o)
		},
	}
	o.cf.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", `the YAML file to apply ("-" reads standard input; value files are then relative to the working directory)`)
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	f.BoolVar(&o.updateValues, "update-values", false, "also replace the values of existing secrets whose value source differs")
	f.BoolVar(&o.asJSON, "json", false, "print the plan and result as JSON")
	f.StringVar(&o.accountID, "account-id", "", "the server's 12-digit account id (default: ask the server; needed when signing with a role session)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// applyReport is the --json output.
type applyReport struct {
	File   string            `json:"file"`
	DryRun bool              `json:"dryRun"`
	Plan   *apply.PlanResult `json:"plan,omitempty"`
	Result *apply.Result     `json:"result,omitempty"`
	Error  string            `json:"error,omitempty"`
}

func runApply(ctx context.Context, out io.Writer, stdin io.Reader, o *applyOptions) error {
	f, err := readApplyFile(o.file, stdin)
	if err != nil {
		return err
	}
	cfg, err := applyAWSConfig(ctx, &o.cf)
	if err != nil {
		return err
	}
	clients := apply.Clients{
		IAM:            iam.NewFromConfig(cfg),
		SecretsManager: secretsmanager.NewFromConfig(cfg),
		Native:         apply.NewNative(cfg),
		Region:         cfg.Region,
		AccountID:      o.accountID,
	}
	report := applyReport{DryRun: o.dryRun, File: o.file}
	plan, err := apply.Plan(ctx, clients, f, apply.Options{UpdateValues: o.updateValues})
	if err != nil {
		if !errors.Is(err, apply.ErrConflict) { // its message says so already
			err = fmt.Errorf("%w (nothing was changed)", err)
		}
		return applyFinish(out, o, &report, err)
	}
	report.Plan = plan
	if !o.asJSON {
		if err := plan.WriteText(out); err != nil {
			return err
		}
	}
	switch {
	case o.dryRun:
		if !o.asJSON {
			fmt.Fprintln(out, "Dry run: nothing was changed.")
		}
		return applyFinish(out, o, &report, nil)
	case !plan.HasChanges():
		return applyFinish(out, o, &report, nil)
	}
	res, err := apply.Apply(ctx, clients, plan)
	report.Result = res
	if !o.asJSON && res != nil {
		if werr := res.WriteText(out); werr != nil && err == nil {
			err = werr
		}
	}
	if errors.Is(err, apply.ErrApply) {
		err = fmt.Errorf("%w (hint: fix the cause and run apply again; what was applied shows as no change)", err)
	}
	return applyFinish(out, o, &report, err)
}

// applyFinish prints the JSON report when asked for and returns err.
func applyFinish(out io.Writer, o *applyOptions, report *applyReport, err error) error {
	if !o.asJSON {
		return err
	}
	if err != nil {
		report.Error = err.Error()
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if jerr := enc.Encode(report); jerr != nil && err == nil {
		return jerr
	}
	return err
}

// readApplyFile opens and parses the file; value files are relative to its
// directory.
func readApplyFile(path string, stdin io.Reader) (*apply.File, error) {
	if path == "" {
		return nil, errors.New("no file given (hint: sigil apply -f sigil.yaml)")
	}
	r, dir := stdin, "."
	if path != "-" {
		fh, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("opening %q: %w", path, err)
		}
		defer fh.Close()
		r, dir = fh, filepath.Dir(path)
	}
	f, err := apply.Parse(r, dir, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// applyAWSConfig loads the AWS configuration the way the other client
// commands sign: the usual credential chain, or --credentials-file and
// --profile, with the sigil endpoint for every service.
func applyAWSConfig(ctx context.Context, cf *clientFlags) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{config.WithRegion(cf.regionOrDefault())}
	if cf.credentialsFile != "" {
		opts = append(opts, config.WithSharedCredentialsFiles([]string{cf.credentialsFile}))
	}
	if cf.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cf.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS credentials: %w", err)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return aws.Config{}, fmt.Errorf("no credentials to sign with: %w (hint: --credentials-file sigil-data/root.credentials)", err)
	}
	cfg.BaseEndpoint = aws.String(cf.url(""))
	return cfg, nil
}
