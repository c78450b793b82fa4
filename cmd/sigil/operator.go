package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/server"
)

func newOperatorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Manage the server's seal and keys",
		Long: `Manage the barrier that encrypts everything sigil stores.

init and unseal are for the shamir key provider; status works with every
provider; rotate-key adds a new data-encryption key (old values stay readable
and are re-encrypted when next written) and must be signed by root.`,
	}
	cmd.AddCommand(newOperatorInitCmd(), newOperatorUnsealCmd(), newOperatorStatusCmd(), newOperatorRotateCmd())
	return cmd
}

func newOperatorInitCmd() *cobra.Command {
	var cf clientFlags
	var shares, threshold int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Initialise a shamir-sealed server and print its key shares",
		Long: `Initialise a server started with --key-provider shamir: the server creates
the keyring, splits its key-encryption key into --shares shares of which any
--threshold open it, and returns the shares. They are printed once and stored
nowhere: hand each to a different person.`,
		Example: "  sigil operator init --shares 5 --threshold 3",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp server.InitResponse
			if err := cf.call(cmd.Context(), "POST", "/v1/sys/init", server.InitRequest{Shares: shares, Threshold: threshold}, &resp, false); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(resp)
			}
			for i, s := range resp.Shares {
				fmt.Fprintf(out, "Unseal share %d: %s\n", i+1, s)
			}
			fmt.Fprintf(out, "\nThe server is initialised and sealed. Unseal it with %d of these shares:\n  sigil operator unseal\n", resp.Threshold)
			fmt.Fprintf(out, "After unsealing, root credentials are written to %s on the server.\n", resp.RootCredentials)
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().IntVar(&shares, "shares", 5, "number of key shares to create")
	cmd.Flags().IntVar(&threshold, "threshold", 3, "number of shares needed to unseal")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func newOperatorUnsealCmd() *cobra.Command {
	var cf clientFlags
	var reset bool
	cmd := &cobra.Command{
		Use:   "unseal [SHARE]",
		Short: "Give the server one key share",
		Long: `Give a shamir-sealed server one key share. Run it once per share until the
threshold is reached. Without SHARE the share is read from standard input,
which keeps it out of the shell history and the process list.`,
		Example: "  sigil operator unseal            # paste the share\n  sigil operator unseal --reset    # discard shares given so far",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := server.UnsealRequest{Reset: reset}
			if !reset {
				if len(args) == 1 {
					req.Share = args[0]
				} else {
					fmt.Fprint(cmd.ErrOrStderr(), "Unseal share: ")
					line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
					if err != nil && !errors.Is(err, io.EOF) {
						return fmt.Errorf("reading share: %w", err)
					}
					req.Share = strings.TrimSpace(line)
				}
				if req.Share == "" {
					return errors.New("no share given: pass it as an argument or on standard input")
				}
			}
			var st server.SealStatus
			if err := cf.call(cmd.Context(), "POST", "/v1/sys/unseal", req, &st, false); err != nil {
				return err
			}
			printSealStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&reset, "reset", false, "discard the shares given so far")
	return cmd
}

func newOperatorStatusCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "status",
		Short:   "Show whether the server is initialised and sealed",
		Example: "  sigil operator status --endpoint http://127.0.0.1:8200",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st server.SealStatus
			if err := cf.call(cmd.Context(), "GET", "/v1/sys/seal-status", nil, &st, false); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(st)
			}
			printSealStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func newOperatorRotateCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "rotate-key",
		Short: "Add a new data-encryption key and make it active",
		Long: `Add a new data-encryption key to the keyring and make it the one new writes
use. Values written earlier stay readable with their old key and are
re-encrypted under the new one when next written. Must be signed by root.`,
		Example: "  sigil operator rotate-key --credentials-file sigil-data/root.credentials",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp server.RotateResponse
			if err := cf.call(cmd.Context(), "POST", "/v1/sys/rotate", struct{}{}, &resp, true); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Active data key is now term %d.\n", resp.KeyTerm)
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}

func printSealStatus(w io.Writer, st server.SealStatus) {
	fmt.Fprintf(w, "Key provider: %s\nInitialised:  %t\nSealed:       %t\n", st.Provider, st.Initialized, st.Sealed)
	if st.Threshold > 0 {
		fmt.Fprintf(w, "Shares:       %d (threshold %d)\nProgress:     %d/%d\n", st.Shares, st.Threshold, st.Progress, st.Threshold)
	}
	if st.KeyTerm > 0 {
		fmt.Fprintf(w, "Key term:     %d\n", st.KeyTerm)
	}
}
