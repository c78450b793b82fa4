package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// newRootCmd builds the command tree. Subcommands are listed here
// explicitly; nothing registers itself.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sigil",
		Short: "sigil: a self-hosted, zero-trust secrets service for containerized workloads",
		Long: `sigil stores secrets encrypted at rest, speaks the AWS Secrets Manager, STS and
IAM wire protocols (so boto3, aws-sdk-go-v2 and the aws CLI work with an
endpoint override), and authenticates every request with SigV4.

Start a server on the embedded default store with:

  sigil server`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServerCmd(),
		newOperatorCmd(),
		newAuditCmd(),
		newSessionCmd(),
		newImageCmd(),
		newApplyCmd(),
		newVersionCmd(),
		newSealCmd(), newCredentialsCmd(),
		newDBCmd(), newLeaseCmd(),
		newRotatorCmd(),
	)
	return root
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintln(os.Stderr, "sigil:", err)
		return 1
	}
	return 0
}

// exitError ends the process with a specific code, its message already
// printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
