package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"
)

// clientFlags are the connection settings every client command shares.
type clientFlags struct {
	endpoint        string
	region          string
	credentialsFile string
	profile         string
}

func (c *clientFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.endpoint, "endpoint", "", "sigil server URL (default $AWS_ENDPOINT_URL, else http://127.0.0.1:8200)")
	f.StringVar(&c.region, "region", "", "region to sign for (default $AWS_REGION, else us-east-1)")
	f.StringVar(&c.credentialsFile, "credentials-file", "", "aws credentials file to sign with (default: the usual AWS chain; e.g. sigil-data/root.credentials)")
	f.StringVar(&c.profile, "profile", "", "profile in the credentials file")
}

func (c *clientFlags) url(path string) string {
	ep := c.endpoint
	if ep == "" {
		ep = os.Getenv("AWS_ENDPOINT_URL")
	}
	if ep == "" {
		ep = "http://127.0.0.1:8200"
	}
	return strings.TrimRight(ep, "/") + path
}

func (c *clientFlags) regionOrDefault() string {
	if c.region != "" {
		return c.region
	}
	if r := os.Getenv("AWS_REGION"); r != "" {
		return r
	}
	return "us-east-1"
}

// call sends a JSON request to the native API and decodes the JSON answer
// into out. When sign is true the request is signed with SigV4 for service
// "sigil" using the AWS credential chain.
func (c *clientFlags) call(ctx context.Context, method, path string, in, out any, sign bool) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sign {
		var opts []func(*config.LoadOptions) error
		if c.credentialsFile != "" {
			opts = append(opts, config.WithSharedCredentialsFiles([]string{c.credentialsFile}))
		}
		if c.profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(c.profile))
		}
		cfg, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return fmt.Errorf("loading AWS credentials: %w", err)
		}
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return fmt.Errorf("no credentials to sign with: %w (hint: --credentials-file sigil-data/root.credentials)", err)
		}
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sigil", c.regionOrDefault(), time.Now()); err != nil {
			return fmt.Errorf("signing request: %w", err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("calling %s: %w (is the server running? see --endpoint)", c.url(path), err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if json.Unmarshal(rb, &e) == nil && e.Type != "" {
			return fmt.Errorf("%s: %s", e.Type, e.Message)
		}
		return fmt.Errorf("server answered %s", resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(rb, out); err != nil {
			return fmt.Errorf("decoding response: %w", err)
		}
	}
	return nil
}
