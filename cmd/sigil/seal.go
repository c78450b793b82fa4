package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/images"
)

// apiRegistrar registers image keys through the native API
// (/v1/images/register and /deregister), signed with the CI's AWS
// credentials.
type apiRegistrar struct{ cf *clientFlags }

func (r apiRegistrar) RegisterImageKey(ctx context.Context, reg images.RegisterRequest) (*images.RegisterResponse, error) {
	var out images.RegisterResponse
	if err := r.cf.call(ctx, "POST", "/v1/images/register", reg, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

func (r apiRegistrar) DeregisterImageKey(ctx context.Context, keyID string) error {
	return r.cf.call(ctx, "POST", "/v1/images/deregister", map[string]string{"keyId": keyID}, nil, true)
}

func (r apiRegistrar) RevokeImage(ctx context.Context, digest, reason string) error {
	return r.cf.call(ctx, "POST", "/v1/images/revoke", images.RevokeRequest{Digest: digest, Reason: reason}, nil, true)
}

func newSealCmd() *cobra.Command {
	var cf clientFlags
	var src, dst, role, repository, bootstrapEndpoint string
	var ttl time.Duration
	var reseal, asJSON, quiet bool
	var uid, gid int
	cmd := &cobra.Command{
		Use:   "seal --image SRC --role ROLE_ARN --out DST",
		Short: "Seal a bootstrap identity into a container image",
		Long: `Seal adds one layer to an image holding /var/run/sigil/bootstrap.json (mode
0400, owned by --uid/--gid): the endpoint, region, role ARN, a key id and a
fresh Ed25519 private key. It labels the image config (dev.sigil.key-id,
dev.sigil.bootstrap) and sets SIGIL_BOOTSTRAP, registers the public key with
the server bound to the sealed image's digest, then writes or pushes the
image. The CI needs only sigil:RegisterImageKey on the repository and
iam:PassRole on the role; the private key is never
printed, logged or sent anywhere. If writing fails, the key is deregistered.

An already-sealed image is refused unless --reseal: then its seal layer is
dropped (the old key is not shipped), the image sealed again, and the old
sealed digest revoked (this needs sigil:RevokeImage too; without it a
warning says what to run).

SRC and DST are one of:
  oci:DIR                 an OCI image layout; as SRC it must hold exactly one
                          entry, as DST the sealed image is added to it
  oci:DIR:TAG             the layout entry annotated with that ref name
  oci:DIR@sha256:HEX      the layout entry with that digest (SRC only)
  docker-archive:FILE     a "docker save" tarball of one image
  docker-archive:FILE:NAME:TAG  the named image in (or for) the tarball
  REGISTRY/REPO:TAG       a registry (credentials from the docker config);
                          the registry must be explicit
A multi-platform index is sealed per platform (one key each) into a new
index; it can be written to a registry or an OCI layout.

The workload exchanges the sealed identity with "sigil credentials".`,
		Example: `  sigil seal --image registry.example.com/shop/my-app:1.4 \
    --role arn:aws:iam::123456789012:role/application-role \
    --out registry.example.com/shop/my-app:1.4-sealed

  sigil seal --image oci:build/app --out oci:build/app:sealed \
    --repository registry.example.com/shop/my-app --role arn:aws:iam::123456789012:role/app --ttl 720h --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if src == "" || dst == "" || role == "" {
				return errors.New("--image, --out and --role are required (see sigil seal --help)")
			}
			s, err := images.ParseReference(src)
			if err != nil {
				return fmt.Errorf("--image: %w", err)
			}
			d, err := images.ParseReference(dst)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			endpoint := bootstrapEndpoint
			if endpoint == "" {
				endpoint = cf.url("")
			}
			var log *slog.Logger
			if !quiet && !asJSON {
				log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			}
			res, err := images.Seal(cmd.Context(), images.SealOptions{
				Source: s, Destination: d, Repository: repository, RoleARN: role,
				Endpoint: endpoint, Region: cf.regionOrDefault(), TTL: ttl, Reseal: reseal,
				UID: uid, GID: gid, Registrar: apiRegistrar{&cf}, Logger: log,
			})
			if err != nil {
				if errors.Is(err, images.ErrRegistrationMismatch) {
					return fmt.Errorf("%w (hint: the server and this client disagree on the sealing contract; upgrade one of them)", err)
				}
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Reference)
			if res.KeyID != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "key %s bound to %s for %s\n", res.KeyID, res.Repository, role)
			}
			for _, p := range res.Platforms {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s %s key %s\n", p.Platform, p.Digest, p.KeyID)
			}
			for _, d := range res.Revoked {
				fmt.Fprintf(cmd.OutOrStdout(), "revoked the replaced image %s\n", d)
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "sigil: warning: %s\n", w)
			}
			return nil
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&src, "image", "", "image to seal (SRC, see above)")
	f.StringVar(&dst, "out", "", "where to write the sealed image (DST, see above)")
	f.StringVar(&role, "role", "", "role ARN the image's identity may assume")
	f.StringVar(&repository, "repository", "", "repository the key is bound to (default: DST's repository; required for oci: without a registry reference)")
	f.StringVar(&bootstrapEndpoint, "bootstrap-endpoint", "", "server URL the workload uses, written into the bootstrap file (default: --endpoint)")
	f.DurationVar(&ttl, "ttl", 0, "key lifetime, e.g. 720h (default: no expiry)")
	f.BoolVar(&reseal, "reseal", false, "replace the seal of an already-sealed image")
	f.IntVar(&uid, "uid", images.DefaultUID, "owner uid of the bootstrap file")
	f.IntVar(&gid, "gid", images.DefaultGID, "owner gid of the bootstrap file")
	f.BoolVar(&asJSON, "json", false, "print {reference, digest, keyId, platforms} as JSON")
	f.BoolVar(&quiet, "quiet", false, "no progress on stderr")
	return cmd
}
