package apply

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
)

// maxNativeResponse bounds an answer of the native API.
const maxNativeResponse = 4 << 20

// NativeCaller calls sigil's native API: it POSTs in, as JSON, to path
// (such as "/v1/databases/get") and decodes the JSON answer into out (nil
// to discard it). A service error is returned as a smithy.APIError whose
// ErrorCode is the exception name, as the AWS SDK clients return theirs.
type NativeCaller func(ctx context.Context, path string, in, out any) error

// NewNative returns a NativeCaller for the server cfg points at: requests
// go to cfg.BaseEndpoint, signed with SigV4 for service "sigil" in
// cfg.Region with cfg.Credentials, through cfg.HTTPClient (nil means
// http.DefaultClient).
func NewNative(cfg aws.Config) NativeCaller {
	client := cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	signer := v4.NewSigner()
	return func(ctx context.Context, path string, in, out any) error {
		if cfg.BaseEndpoint == nil || *cfg.BaseEndpoint == "" {
			return errors.New("calling the native API: no endpoint configured")
		}
		if cfg.Credentials == nil {
			return errors.New("calling the native API: no credentials configured")
		}
		body, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding the request to %s: %w", path, err)
		}
		url := strings.TrimRight(*cfg.BaseEndpoint, "/") + path
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("building the request to %s: %w", path, err)
		}
		req.Header.Set("Content-Type", "application/json")
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return fmt.Errorf("retrieving credentials to sign with: %w", err)
		}
		sum := sha256.Sum256(body)
		if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sigil", cfg.Region, time.Now()); err != nil {
			return fmt.Errorf("signing the request to %s: %w", path, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("calling %s: %w", url, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxNativeResponse+1))
		if err != nil {
			return fmt.Errorf("reading the answer of %s: %w", path, err)
		}
		if len(b) > maxNativeResponse {
			return fmt.Errorf("the answer of %s is larger than %d bytes", path, maxNativeResponse)
		}
		if resp.StatusCode >= 300 {
			return nativeError(resp, b)
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding the answer of %s: %w", path, err)
		}
		return nil
	}
}

// nativeError turns an error answer (JSON 1.1's {"__type","message"}) into
// a smithy.APIError.
func nativeError(resp *http.Response, body []byte) error {
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	ae := &smithy.GenericAPIError{Code: resp.Status, Fault: smithy.FaultServer}
	if json.Unmarshal(body, &e) == nil && e.Type != "" {
		ae.Code, ae.Message = e.Type, e.Message
	}
	if resp.StatusCode < 500 {
		ae.Fault = smithy.FaultClient
	}
	return ae
}

// isNativeNotFound reports whether err is the native API's
// ResourceNotFoundException.
func isNativeNotFound(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException"
}
