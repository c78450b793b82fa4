package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/rotation"
	"sigil.dev/sigil/internal/server"
)

// Bounds the CLI checks before asking the server, as internal/rotation
// enforces them.
const (
	maxRotatorTimeout = 5 * time.Minute
	minRotatorKey     = 16
	maxRotatorKey     = 1024
	// maxKeyFileBytes bounds a --key-file: the base64 of the largest key
	// and a line ending.
	maxKeyFileBytes = 4096
)

func newRotatorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotator",
		Short: "Register the rotators that rotate static secrets",
		Long: `A rotator performs the four rotation steps (createSecret, setSecret, testSecret,
finishSecret) for the secrets that name it. RotateSecret names a rotator by a
RotationLambdaARN, arn:aws:lambda:REGION:ACCOUNT:function:NAME, as AWS names a
rotation Lambda. The built-in rotators always exist and need no registration:

  sigil-postgresql-single-user  a PostgreSQL user's password
  sigil-mysql-single-user       a MySQL user's password
  sigil-random                  the whole SecretString, a random password

Registered rotators are of two types: random (a random password, for the whole
SecretString or one field of a JSON SecretString, with a password policy) and
webhook (an HTTP endpoint that receives each step as JSON, signed with an HMAC
key in the X-Sigil-Signature header, and does the work itself, as a rotation
Lambda does).

  sigil rotator put api-key --type random --field apiKey --length 40
  sigil rotator put partner --type webhook --url https://rotate.internal/hook
  aws secretsmanager rotate-secret --secret-id app/api-key \
      --rotation-lambda-arn arn:aws:lambda:us-east-1:123456789012:function:api-key \
      --rotation-rules AutomaticallyAfterDays=30`,
	}
	cmd.AddCommand(newRotatorPutCmd(), newRotatorGetCmd(), newRotatorListCmd(), newRotatorDeleteCmd())
	return cmd
}

// rotatorPutOptions are the flags of sigil rotator put.
type rotatorPutOptions struct {
	cf     clientFlags
	typ    string
	asJSON bool
	// random
	field              string
	length             int
	excludeCharacters  string
	excludeUppercase   bool
	excludeLowercase   bool
	excludeNumbers     bool
	excludePunctuation bool
	allowMissingTypes  bool
	// webhook
	url     string
	timeout time.Duration
	keyFile string
}

// randomFlags and webhookFlags are the flags of each type, to refuse the
// other type's.
var (
	randomFlags  = []string{"field", "length", "exclude-characters", "exclude-uppercase", "exclude-lowercase", "exclude-numbers", "exclude-punctuation", "allow-missing-types"}
	webhookFlags = []string{"url", "timeout", "key-file"}
)

func newRotatorPutCmd() *cobra.Command {
	var o rotatorPutOptions
	cmd := &cobra.Command{
		Use:   "put NAME --type random|webhook [flags]",
		Short: "Register a rotator, or replace its definition",
		Long: `Register the rotator NAME (1 to 64 letters, digits, "-" or "_"; names starting
with "sigil-" are the built-ins'), replacing any rotator of that name, and print
its ARN: give it to RotateSecret as RotationLambdaARN.

--type random generates a password with the policy the flags give (32
characters of letters, digits and punctuation by default, never the characters
that break connection strings and quoting) and writes it as the new value:
the whole SecretString, or with --field the member of a JSON SecretString.

--type webhook POSTs each step to --url as {"Step","SecretId",
"ClientRequestToken"}, signed with an HMAC-SHA256 key. Without --key-file,
sigil generates a 32-byte key and prints it, base64, this once: it cannot be
read back, so give it to the endpoint now. Putting the rotator again without
--key-file replaces the key with a new one. With --key-file FILE (base64 text
on one line, 16 to 1024 bytes once decoded) the key is yours and is not
printed.

Requires sigil:PutRotator.`,
		Example: `  sigil rotator put api-key --type random --field apiKey --length 40 --exclude-punctuation
  sigil rotator put partner --type webhook --url https://rotate.internal/hook --timeout 10s
  head -c 32 /dev/urandom | base64 > hook.key
  sigil rotator put partner --type webhook --url https://rotate.internal/hook --key-file hook.key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.request(cmd, args[0])
			if err != nil {
				return err
			}
			var resp server.RotatorResponse
			if err := o.cf.call(cmd.Context(), "POST", "/v1/rotators/put", req, &resp, true); err != nil {
				return fmt.Errorf("registering rotator %s: %w", args[0], err)
			}
			if req.WebhookKey != "" {
				// The server echoes a key it was given; it is the caller's
				// own and is never printed.
				resp.WebhookKey = ""
			}
			if o.asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(resp)
			}
			return writeRotatorPut(cmd.OutOrStdout(), resp, o.keyFile)
		},
	}
	o.cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.typ, "type", "", `rotator type: "random" or "webhook" (required)`)
	f.StringVar(&o.field, "field", "", "random: the member of a JSON SecretString to replace (default: the whole SecretString)")
	f.IntVar(&o.length, "length", 0, "random: password length, 8 to 4096 (default 32)")
	f.StringVar(&o.excludeCharacters, "exclude-characters", "", "random: characters never to use, in addition to those that break quoting")
	f.BoolVar(&o.excludeUppercase, "exclude-uppercase", false, "random: no upper-case letters")
	f.BoolVar(&o.excludeLowercase, "exclude-lowercase", false, "random: no lower-case letters")
	f.BoolVar(&o.excludeNumbers, "exclude-numbers", false, "random: no digits")
	f.BoolVar(&o.excludePunctuation, "exclude-punctuation", false, "random: no punctuation")
	f.BoolVar(&o.allowMissingTypes, "allow-missing-types", false, "random: do not require one character of each included class")
	f.StringVar(&o.url, "url", "", "webhook: the endpoint, an absolute http or https URL (required for webhooks)")
	f.DurationVar(&o.timeout, "timeout", 0, "webhook: time limit of each request, at most 5m (default 30s)")
	f.StringVar(&o.keyFile, "key-file", "", "webhook: file holding the HMAC key as base64 on one line (default: sigil generates one and prints it once)")
	f.BoolVar(&o.asJSON, "json", false, "print the stored definition as JSON (with webhookKey only when sigil generated it)")
	return cmd
}

// request checks the flags and builds the request, reading the key file.
func (o *rotatorPutOptions) request(cmd *cobra.Command, name string) (server.RotatorRequest, error) {
	changed := func(names []string) []string {
		var out []string
		for _, n := range names {
			if cmd.Flags().Changed(n) {
				out = append(out, "--"+n)
			}
		}
		return out
	}
	req := server.RotatorRequest{RotatorSpec: rotation.RotatorSpec{Name: name, Type: o.typ}}
	switch o.typ {
	case "":
		return req, fmt.Errorf("missing --type: %q or %q (see sigil rotator put --help)", rotation.TypeRandom, rotation.TypeWebhook)
	case rotation.TypeRandom:
		if other := changed(webhookFlags); len(other) > 0 {
			return req, fmt.Errorf("%s: only for --type webhook", strings.Join(other, ", "))
		}
		if o.length != 0 && (o.length < rotation.MinPasswordLength || o.length > rotation.MaxPasswordLength) {
			return req, fmt.Errorf("--length %d: want %d to %d", o.length, rotation.MinPasswordLength, rotation.MaxPasswordLength)
		}
		req.Random = &rotation.RandomSpec{Field: o.field, PasswordPolicy: rotation.PasswordPolicy{
			Length: o.length, ExcludeCharacters: o.excludeCharacters,
			ExcludeUppercase: o.excludeUppercase, ExcludeLowercase: o.excludeLowercase,
			ExcludeNumbers: o.excludeNumbers, ExcludePunctuation: o.excludePunctuation,
			AllowMissingTypes: o.allowMissingTypes,
		}}
		return req, nil
	case rotation.TypeWebhook:
		if other := changed(randomFlags); len(other) > 0 {
			return req, fmt.Errorf("%s: only for --type random", strings.Join(other, ", "))
		}
		if o.url == "" {
			return req, errors.New("missing --url: a webhook rotator needs the endpoint to call, such as https://rotate.internal/hook")
		}
		if err := checkWebhookURL(o.url); err != nil {
			return req, err
		}
		if o.timeout < 0 || o.timeout > maxRotatorTimeout {
			return req, fmt.Errorf("--timeout %s: want at most %s", o.timeout, maxRotatorTimeout)
		}
		req.Webhook = &rotation.WebhookSpec{URL: o.url, Timeout: o.timeout}
		if o.keyFile != "" {
			key, err := readKeyFile(o.keyFile)
			if err != nil {
				return req, err
			}
			req.WebhookKey = key
		}
		return req, nil
	}
	return req, fmt.Errorf("--type %q: want %q or %q", o.typ, rotation.TypeRandom, rotation.TypeWebhook)
}

// checkWebhookURL checks --url the way the server will.
func checkWebhookURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" || len(s) > 2048 {
		return fmt.Errorf("--url: want an absolute http or https URL without user info or fragment, such as https://rotate.internal/hook")
	}
	return nil
}

// readKeyFile reads a webhook key file: base64 text on one line (white
// space around it dropped), 16 to 1024 bytes once decoded. It returns the
// key in canonical base64. Errors name the file, never its content.
func readKeyFile(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading --key-file: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxKeyFileBytes+1))
	defer clear(b)
	if err != nil {
		return "", fmt.Errorf("reading --key-file %q: %w", path, err)
	}
	if len(b) > maxKeyFileBytes {
		return "", fmt.Errorf("--key-file %q is larger than %d bytes; it must hold only the base64 key", path, maxKeyFileBytes)
	}
	text := strings.TrimSpace(string(b))
	if text == "" || strings.ContainsAny(text, "\r\n") {
		return "", fmt.Errorf("--key-file %q must hold the key as base64 on one line", path)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(text)
	defer clear(key)
	if err != nil {
		return "", fmt.Errorf("--key-file %q is not base64 (standard alphabet, with padding); make one with: head -c 32 /dev/urandom | base64", path)
	}
	if len(key) < minRotatorKey || len(key) > maxRotatorKey {
		return "", fmt.Errorf("--key-file %q holds a %d-byte key; a key must be %d to %d bytes", path, len(key), minRotatorKey, maxRotatorKey)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// writeRotatorPut reports a registered rotator and, once, a generated key.
func writeRotatorPut(w io.Writer, r server.RotatorResponse, keyFile string) error {
	fmt.Fprintf(w, "Registered %s rotator %s (%s).\n", r.Type, r.Name, rotatorSummary(r.RotatorSpec))
	fmt.Fprintf(w, "ARN (use it as RotationLambdaARN): %s\n", r.ARN)
	if r.Type != rotation.TypeWebhook {
		return nil
	}
	if keyFile != "" {
		_, err := fmt.Fprintf(w, "HMAC key: the one in %s (not shown).\n", keyFile)
		return err
	}
	if r.WebhookKey == "" {
		return errors.New("the server returned no webhook key; run sigil rotator put again to generate one")
	}
	_, err := fmt.Fprintf(w, `
HMAC-SHA256 key (base64) the endpoint verifies the X-Sigil-Signature header with:

  %s

This is the only time the key is shown: sigil cannot show it again. Store it
with the endpoint now. Putting this rotator again without --key-file replaces
the key with a new one.
`, r.WebhookKey)
	return err
}

// rotatorSummary is one line about a rotator's settings.
func rotatorSummary(s rotation.RotatorSpec) string {
	switch {
	case s.Random != nil:
		target := "the whole SecretString"
		if s.Random.Field != "" {
			target = "field " + strconv.Quote(s.Random.Field)
		}
		return target + ", " + passwordLength(s.Random.Length) + " characters"
	case s.Webhook != nil:
		return s.Webhook.URL + ", timeout " + webhookTimeout(s.Webhook.Timeout)
	}
	return "no settings"
}

func passwordLength(n int) string {
	if n == 0 {
		return strconv.Itoa(rotation.DefaultPasswordLength)
	}
	return strconv.Itoa(n)
}

func webhookTimeout(d time.Duration) string {
	if d == 0 {
		return rotation.DefaultWebhookTimeout.String() + " (default)"
	}
	return d.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func writeRotator(w io.Writer, r server.RotatorResponse) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\nType:\t%s\nARN:\t%s\n", r.Name, r.Type, r.ARN)
	if !r.Created.IsZero() {
		fmt.Fprintf(tw, "Registered:\t%s\n", r.Created.UTC().Format(time.RFC3339))
	}
	switch {
	case r.Random != nil:
		p := r.Random
		field := "(the whole SecretString)"
		if p.Field != "" {
			field = p.Field
		}
		length := passwordLength(p.Length)
		if p.Length == 0 {
			length += " (default)"
		}
		var excluded []string
		for _, c := range []struct {
			on   bool
			name string
		}{{p.ExcludeUppercase, "upper-case"}, {p.ExcludeLowercase, "lower-case"}, {p.ExcludeNumbers, "digits"}, {p.ExcludePunctuation, "punctuation"}} {
			if c.on {
				excluded = append(excluded, c.name)
			}
		}
		if p.ExcludeCharacters != "" {
			excluded = append(excluded, "characters "+strconv.Quote(p.ExcludeCharacters))
		}
		if len(excluded) == 0 {
			excluded = []string{"none (beyond those that break quoting)"}
		}
		fmt.Fprintf(tw, "Field:\t%s\nLength:\t%s\nExcluded:\t%s\nEach class required:\t%s\n",
			field, length, strings.Join(excluded, ", "), yesNo(!p.AllowMissingTypes))
	case r.Webhook != nil:
		fmt.Fprintf(tw, "URL:\t%s\nTimeout:\t%s\nHMAC key:\tset (write-only: shown only by sigil rotator put when it generates one)\n",
			r.Webhook.URL, webhookTimeout(r.Webhook.Timeout))
	}
	return tw.Flush()
}

func newRotatorGetCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a registered rotator (never its webhook key)",
		Long: `Show the definition and ARN of the registered rotator NAME. A webhook's HMAC
key is never returned. Built-in rotators are not registered and have nothing
to show. Requires sigil:GetRotator.`,
		Example: `  sigil rotator get api-key
  sigil rotator get api-key --json | jq -r .arn`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var resp server.RotatorResponse
			if err := cf.call(cmd.Context(), "POST", "/v1/rotators/get", server.NameRequest{Name: args[0]}, &resp, true); err != nil {
				return fmt.Errorf("reading rotator %s: %w (hint: sigil rotator list shows the registered rotators)", args[0], err)
			}
			resp.WebhookKey = ""
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(resp)
			}
			return writeRotator(cmd.OutOrStdout(), resp)
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the definition as JSON")
	return cmd
}

func newRotatorListCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List registered rotators",
		Long: `List every registered rotator, by name, without webhook keys. The built-ins
(sigil-postgresql-single-user, sigil-mysql-single-user, sigil-random) are not
listed: they always exist. Requires sigil:ListRotators.`,
		Example: `  sigil rotator list
  sigil rotator list --json | jq -r '.rotators[].arn'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp server.RotatorsResponse
			if err := cf.call(cmd.Context(), "POST", "/v1/rotators/list", struct{}{}, &resp, true); err != nil {
				return fmt.Errorf("listing rotators: %w", err)
			}
			for i := range resp.Rotators {
				resp.Rotators[i].WebhookKey = ""
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(resp)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTYPE\tSETTINGS\tARN")
			for _, r := range resp.Rotators {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Type, rotatorSummary(r.RotatorSpec), r.ARN)
			}
			return tw.Flush()
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")
	return cmd
}

func newRotatorDeleteCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Remove a registered rotator",
		Long: `Remove the registered rotator NAME, with its webhook key. Secrets that still
name it fail their next rotation (DescribeSecret shows why) until they are
given another rotator with RotateSecret, or their rotation is cancelled with
CancelRotateSecret. Built-in rotators cannot be deleted. Requires
sigil:DeleteRotator.`,
		Example: `  sigil rotator delete api-key`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.call(cmd.Context(), "POST", "/v1/rotators/delete", server.NameRequest{Name: args[0]}, nil, true); err != nil {
				return fmt.Errorf("deleting rotator %s: %w", args[0], err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(struct {
					Name    string `json:"name"`
					Deleted bool   `json:"deleted"`
				}{args[0], true})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted rotator %s. Secrets that still name it fail their next rotation.\n", args[0])
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"name","deleted"} as JSON`)
	return cmd
}
