package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// bareBodySize is the size of the body the bare handler returns, the size
// of a typical small GetSecretValue response.
const bareBodySize = 200

// bareScenario is the baseline: a plain net/http handler returning a fixed
// JSON body. It measures what the machine, the Go HTTP server and the load
// generator can do with no application work at all.
func bareScenario() scenario {
	body := bareBody()
	return scenario{
		name:  "bare",
		about: fmt.Sprintf("net/http handler returning a fixed %d-byte JSON body (the baseline)", len(body)),
		serve: func(ctx context.Context, ln net.Listener, ready func(map[string]string)) error {
			return serveHTTP(ctx, ln, bareHandler(body), ready)
		},
		prepare: func(addr string, _ map[string]string) (*request, error) {
			req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
			if err != nil {
				return nil, fmt.Errorf("building request: %w", err)
			}
			req.Header.Set("User-Agent", "sigil-bench")
			raw, err := encodeRequest(req)
			if err != nil {
				return nil, err
			}
			check := func(got []byte) error {
				if !bytes.Equal(got, body) {
					return fmt.Errorf("body %q, want %q", got, body)
				}
				return nil
			}
			return &request{raw: raw, check: check}, nil
		},
	}
}

// bareBody returns a JSON object shaped like a GetSecretValue response,
// padded to exactly bareBodySize bytes.
func bareBody() []byte {
	const head = `{"ARN":"arn:aws:secretsmanager:us-east-1:000000000000:secret:bench-AbCdEf","Name":"bench",` +
		`"VersionId":"4b3c2a1e-0000-4000-8000-000000000000","SecretString":"`
	const foot = `"}`
	pad := bareBodySize - len(head) - len(foot)
	if pad < 0 {
		panic("bench: internal error: bare body template exceeds " + strconv.Itoa(bareBodySize) + " bytes")
	}
	return []byte(head + strings.Repeat("x", pad) + foot)
}

// bareHandler answers every request with body as application/json.
func bareHandler(body []byte) http.Handler {
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", length)
		_, _ = w.Write(body)
	})
}

// serveHTTP serves h on ln until ctx is done, then shuts down, giving
// in-flight requests a moment to finish. It reports ready once serving.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, ready func(map[string]string)) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	ready(nil)
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shutting down: %w", err)
		}
		// Requests still running after the grace period are cut off.
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}
