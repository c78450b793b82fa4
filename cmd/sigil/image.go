package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/images"
)

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "List and revoke sealed images",
		Long: `Sealed images carry a bootstrap identity bound to their digest (see sigil seal).
"sigil image list" shows every registered image key with its use; "sigil image
revoke" stops a digest for good: its exchanges fail at once and every session
minted from it is refused within a second.`,
	}
	cmd.AddCommand(newImageListCmd(), newImageRevokeCmd())
	return cmd
}

func newImageListCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List sealed images and their keys",
		Long: `List every registered image key: digest, repository, role, when and by whom it
was created, when it was last used and how many exchanges it made (counts are
written by each server once a second). Requires sigil:ListImages.`,
		Example: `  sigil image list --credentials-file sigil-data/root.credentials
  sigil image list --json | jq '.images[] | select(.revoked | not)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp images.ListResponse
			if err := cf.call(cmd.Context(), "POST", "/v1/images/list", struct{}{}, &resp, true); err != nil {
				return fmt.Errorf("listing images: %w", err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(resp)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DIGEST\tREPOSITORY\tROLE\tCREATED\tLAST USED\tEXCHANGES\tSTATE")
			for _, im := range resp.Images {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", im.Digest, im.Repository, im.RoleARN,
					im.Created.Format(time.RFC3339), timeOrDash(im.LastUsed), im.Exchanges, imageState(&im))
			}
			return tw.Flush()
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")
	return cmd
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func imageState(im *images.ImageInfo) string {
	switch {
	case im.Revoked && im.Reason != "":
		return "revoked (" + strconv.Quote(im.Reason) + ")"
	case im.Revoked:
		return "revoked"
	case im.Expires != nil && !time.Now().Before(*im.Expires):
		return "expired"
	}
	return "active"
}

func newImageRevokeCmd() *cobra.Command {
	var cf clientFlags
	var reason string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke DIGEST",
		Short: "Revoke a sealed image by digest",
		Long: `Revoke the sealed image DIGEST (sha256:<64 hex>, as sigil seal and sigil image
list print it): every later exchange with its key fails, and every session
credential minted from it is refused on its next request, on every server
within a second. Revocation is permanent; seal the image again to get a new
digest. Requires sigil:RevokeImage on the image's repository.`,
		Example: `  sigil image revoke sha256:4f2a...c9 --reason "key leaked in build log"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !images.ValidDigest(args[0]) {
				return fmt.Errorf("%q is not an image digest: want sha256: followed by 64 lower-case hex digits (see sigil image list)", args[0])
			}
			var resp images.RevokeResponse
			req := images.RevokeRequest{Digest: args[0], Reason: reason}
			if err := cf.call(cmd.Context(), "POST", "/v1/images/revoke", req, &resp, true); err != nil {
				return fmt.Errorf("revoking %s: %w", args[0], err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(resp)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked %s at %s.\n", resp.Digest, resp.RevokedAt.Format(time.RFC3339))
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why the image is revoked (recorded and shown by sigil image list)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
