package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/server"
)

func newSessionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "session",
		Short: "Manage STS session credentials",
	}
	cmd.AddCommand(newSessionRevokeCmd())
	return cmd
}

func newSessionRevokeCmd() *cobra.Command {
	var cf clientFlags
	var role, sessionID, before string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke (--role ROLE_ARN [--before TIME] | --session-id ID)",
		Short: "Revoke session credentials at once",
		Long: `Revoke temporary credentials issued by STS. With --role, every session of the
role issued before --before (default: now) stops working, like AWS's "revoke
older sessions"; with --session-id, that one session (the id is in the audit
log's sessionContext). Revocations apply on every server within a second.
Requires sigil:RevokeSessions.`,
		Example: `  sigil session revoke --role arn:aws:iam::123456789012:role/application-role
  sigil session revoke --session-id 6f1c0d3e9a2b4c5d8e7f60718293a4b5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := server.RevokeSessionsRequest{RoleARN: role, SessionID: sessionID}
			if (role == "") == (sessionID == "") {
				return errors.New("give exactly one of --role and --session-id")
			}
			if before != "" {
				t, err := time.Parse(time.RFC3339, before)
				if err != nil {
					return fmt.Errorf("--before %q: want an RFC 3339 time such as 2026-12-04T15:00:00Z", before)
				}
				req.Before = &t
			}
			var resp server.RevokeSessionsResponse
			if err := cf.call(cmd.Context(), "POST", "/v1/sessions/revoke", req, &resp, true); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(resp)
			}
			if resp.RoleARN != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "Revoked sessions of %s issued before %s.\n", resp.RoleARN, resp.Before.Format(time.RFC3339))
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Revoked session %s.\n", resp.SessionID)
			}
			return nil
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "role ARN whose sessions to revoke")
	f.StringVar(&before, "before", "", "revoke sessions issued before this RFC 3339 time (default now)")
	f.StringVar(&sessionID, "session-id", "", "one session to revoke")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
