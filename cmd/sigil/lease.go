package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/server"
)

func newLeaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lease",
		Short: "List, renew and revoke the database users of dynamic secrets",
		Long: `Every database user a dynamic secret issues is recorded as a lease before the
user is created. A lease id is the secret's name, "/" and 32 hex digits; the
same digits, as a UUID, are the VersionId GetSecretValue showed. Revoking a
lease ends the user's open sessions and drops the user; expired leases are
revoked by the server on its own.`,
	}
	cmd.AddCommand(newLeaseListCmd(), newLeaseGetCmd(), newLeaseRenewCmd(), newLeaseRevokeCmd(), newLeaseRevokePrefixCmd())
	return cmd
}

func newLeaseListCmd() *cobra.Command {
	var cf clientFlags
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "list [PREFIX]",
		Short: "List leases",
		Long: `List the leases whose id starts with PREFIX (a secret's name and "/" lists that
secret's), or every lease. Revoked leases are listed only with --all.
Requires sigil:ListLeases.`,
		Example: `  sigil lease list
  sigil lease list my-app/database-credentials/ --all
  sigil lease list --json | jq -r '.leases[] | select(.state == "active") | .leaseId'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := server.LeaseRequest{All: all}
			if len(args) == 1 {
				req.Prefix = args[0]
			}
			var resp server.LeasesResponse
			if err := cf.call(cmd.Context(), "POST", "/v1/leases/list", req, &resp, true); err != nil {
				return fmt.Errorf("listing leases: %w", err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(resp)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LEASE ID\tUSERNAME\tSTATE\tEXPIRES")
			for _, l := range resp.Leases {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.ID, l.Username, l.State, l.Expires.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "also list revoked leases")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")
	return cmd
}

func writeLease(w io.Writer, l server.LeaseInfo) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Lease ID:\t%s\nARN:\t%s\nVersion ID:\t%s\nSecret:\t%s\nUsername:\t%s\nState:\t%s\n",
		l.ID, l.ARN, l.VersionID, l.Secret, l.Username, l.State)
	if l.Session != "" {
		fmt.Fprintf(tw, "Session:\t%s\n", l.Session)
	}
	fmt.Fprintf(tw, "Issued:\t%s\nExpires:\t%s\nMax expires:\t%s\n",
		l.Issued.UTC().Format(time.RFC3339), l.Expires.UTC().Format(time.RFC3339), l.MaxExpires.UTC().Format(time.RFC3339))
	if l.Revoked != nil {
		fmt.Fprintf(tw, "Revoked:\t%s\n", l.Revoked.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "Database:\t%s://%s:%d/%s\n", l.Connection.Engine, l.Connection.Host, l.Connection.Port, l.Connection.DBName)
	if l.Attempts > 0 {
		fmt.Fprintf(tw, "Revocation attempts:\t%d\nLast error:\t%s\n", l.Attempts, l.LastError)
	}
	if l.NextAttempt != nil {
		fmt.Fprintf(tw, "Next attempt:\t%s\n", l.NextAttempt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func newLeaseGetCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "get ID",
		Short:   "Show one lease",
		Long:    `Show the lease ID: its user, state, lifetimes and, when revocation failed, why. Requires sigil:GetLease.`,
		Example: `  sigil lease get my-app/database-credentials/5f0c2d9e8b7a41c3a2e1f0d9c8b7a6e5`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var l server.LeaseInfo
			if err := cf.call(cmd.Context(), "POST", "/v1/leases/get", server.LeaseRequest{LeaseID: args[0]}, &l, true); err != nil {
				return fmt.Errorf("reading lease %s: %w (hint: sigil lease list shows the lease ids)", args[0], err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(l)
			}
			return writeLease(cmd.OutOrStdout(), l)
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the lease as JSON")
	return cmd
}

func newLeaseRenewCmd() *cobra.Command {
	var cf clientFlags
	var increment string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "renew ID [--increment DURATION]",
		Short: "Extend a lease",
		Long: `Extend the active lease ID by --increment from now (default: its secret's TTL),
never past its maximum lifetime; the database user's own expiry moves with it.
Requires sigil:RenewLease.`,
		Example: `  sigil lease renew my-app/database-credentials/5f0c2d9e8b7a41c3a2e1f0d9c8b7a6e5 --increment 30m`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if increment != "" {
				if err := checkTTL("--increment", increment); err != nil {
					return err
				}
			}
			var l server.LeaseInfo
			if err := cf.call(cmd.Context(), "POST", "/v1/leases/renew", server.LeaseRequest{LeaseID: args[0], Increment: increment}, &l, true); err != nil {
				return fmt.Errorf("renewing lease %s: %w", args[0], err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(l)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Renewed lease %s: user %s now expires at %s (at most %s).\n",
				l.ID, l.Username, l.Expires.UTC().Format(time.RFC3339), l.MaxExpires.UTC().Format(time.RFC3339))
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&increment, "increment", "", "how long from now the lease should last, such as 1h (default: the secret's TTL)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the lease as JSON")
	return cmd
}

func newLeaseRevokeCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a lease: end its user's sessions and drop the user",
		Long: `Revoke the lease ID at once: the database user's open sessions are terminated
and the user is dropped. If the database cannot be reached the lease stays
due and the server's reaper retries. Requires sigil:RevokeLease.`,
		Example: `  sigil lease revoke my-app/database-credentials/5f0c2d9e8b7a41c3a2e1f0d9c8b7a6e5`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var l server.LeaseInfo
			if err := cf.call(cmd.Context(), "POST", "/v1/leases/revoke", server.LeaseRequest{LeaseID: args[0]}, &l, true); err != nil {
				return fmt.Errorf("revoking lease %s: %w", args[0], err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(l)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked lease %s: user %s is %s.\n", l.ID, l.Username, l.State)
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the lease as JSON")
	return cmd
}

func newLeaseRevokePrefixCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke-prefix PREFIX",
		Short: "Revoke every lease whose id starts with PREFIX",
		Long: `Revoke every unrevoked lease whose id starts with PREFIX; a secret's name and
"/" revokes all of that secret's users, as after a leak. It stops at the first
failure and says how many were revoked; the reaper retries the rest.
Requires sigil:RevokeLease.`,
		Example: `  sigil lease revoke-prefix my-app/database-credentials/`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return fmt.Errorf("the prefix is empty: give a secret's name and \"/\"")
			}
			var resp server.LeasesResponse
			if err := cf.call(cmd.Context(), "POST", "/v1/leases/revoke-prefix", server.LeaseRequest{Prefix: args[0]}, &resp, true); err != nil {
				return fmt.Errorf("revoking leases under %s: %w", args[0], err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(resp)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked %d %s under %s.\n", resp.Revoked, plural(resp.Revoked, "lease", "leases"), args[0])
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
