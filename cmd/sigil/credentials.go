package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/images"
)

// credentialProcessOutput is the JSON the AWS SDKs and CLI expect from a
// credential_process command.
type credentialProcessOutput struct {
	Version         int    `json:"Version"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	SessionToken    string `json:"SessionToken"`
	Expiration      string `json:"Expiration,omitempty"`
}

// readBootstrapFile reads and parses a bootstrap file, warning on w when
// its permissions are wider than 0400.
func readBootstrapFile(path string, w io.Writer) (*images.Bootstrap, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading the bootstrap file: %w (hint: --bootstrap names the file sealed into the image, %s)", err, images.BootstrapPath)
	}
	if mode := fi.Mode().Perm(); mode&^0o400 != 0 {
		fmt.Fprintf(w, "sigil: warning: bootstrap file %s has mode %04o; it holds a private key and should be 0400 (chmod 0400 %s)\n", path, mode, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the bootstrap file: %w", err)
	}
	b, err := images.ParseBootstrap(data)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("bootstrap file %s: %w", path, err)
	}
	return b, nil
}

func newCredentialsCmd() *cobra.Command {
	var bootstrap, k8sTokenFile, sessionName string
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "credentials --bootstrap FILE",
		Short: "Exchange a sealed image identity for AWS credentials (credential_process)",
		Long: `Credentials reads the bootstrap file sealed into the image, signs a one-time
assertion with its key (valid 5 minutes), exchanges it at the file's endpoint
with STS AssumeRoleWithWebIdentity, and prints the credential_process JSON
{"Version":1,"AccessKeyId","SecretAccessKey","SessionToken","Expiration"}.

Use it from ~/.aws/config so any AWS SDK or the aws CLI picks it up:

  [default]
  credential_process = sigil credentials --bootstrap /var/run/sigil/bootstrap.json
  endpoint_url = https://sigil.example:8200

The pod's Kubernetes service-account token is sent as a second proof only
when --k8s-token-file is given (opt in: a role whose trust policy needs
sigil:k8s/* keys requires it; sending it elsewhere would only expose it).
The command prints credentials because credential_process asks for them;
it prints nothing else on stdout.`,
		Example: `  sigil credentials --bootstrap /var/run/sigil/bootstrap.json
  sigil credentials --bootstrap /var/run/sigil/bootstrap.json \
    --k8s-token-file /var/run/secrets/kubernetes.io/serviceaccount/token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := readBootstrapFile(bootstrap, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			var opts images.ExchangeOptions
			opts.SessionName, opts.Duration = sessionName, duration
			if k8sTokenFile != "" {
				tok, err := os.ReadFile(k8sTokenFile)
				if err != nil {
					return fmt.Errorf("reading the Kubernetes token: %w", err)
				}
				opts.Assertion.K8sToken = strings.TrimSpace(string(tok))
			}
			creds, err := images.Exchange(cmd.Context(), b, opts)
			if err != nil {
				return fmt.Errorf("%w (hint: is the image digest revoked or the key expired? see sigil image list)", err)
			}
			out := credentialProcessOutput{Version: 1, AccessKeyID: creds.AccessKeyID,
				SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
			if creds.CanExpire {
				out.Expiration = creds.Expires.UTC().Format(time.RFC3339)
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
		},
	}
	f := cmd.Flags()
	def := images.BootstrapPath
	if env := os.Getenv(images.EnvBootstrap); env != "" {
		def = env // set by sigil seal in the sealed image's config
	}
	f.StringVar(&bootstrap, "bootstrap", def, "bootstrap file sealed into the image (default $SIGIL_BOOTSTRAP, else "+images.BootstrapPath+")")
	f.StringVar(&k8sTokenFile, "k8s-token-file", "", "also send this Kubernetes service-account token (e.g. /var/run/secrets/kubernetes.io/serviceaccount/token)")
	f.StringVar(&sessionName, "session-name", "", "RoleSessionName (default image-<key id>)")
	f.DurationVar(&duration, "duration", 0, "session lifetime (default: the role's)")
	return cmd
}
