package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A scenario is one named target the harness can measure. It has two
// halves that run in different processes:
//
//   - serve runs in the child process (this binary re-executed with
//     -serve NAME). It serves HTTP on ln, which listens on 127.0.0.1, until
//     ctx is done, and calls ready exactly once when it accepts requests,
//     passing whatever the harness needs to build its request (for example
//     throwaway credentials generated for the run). It returns nil when ctx
//     ends.
//   - prepare runs in the harness once the child is ready. It builds the raw
//     HTTP/1.1 request that every connection replays, and optionally a check
//     of the first response's body.
//
// To add a scenario, write a function returning one (see bareScenario) and
// list it in scenarios.
type scenario struct {
	name    string
	about   string
	serve   func(ctx context.Context, ln net.Listener, ready func(info map[string]string)) error
	prepare func(addr string, info map[string]string) (*request, error)
	// explicitOnly scenarios run only when named in -scenarios, not with
	// "all" (their set-up is slow).
	explicitOnly bool
	// setup bounds how long the child may take to become ready; zero
	// means readyTimeout.
	setup time.Duration
}

// readyWithin is how long sc's child may take to become ready.
func (sc scenario) readyWithin() time.Duration {
	if sc.setup > 0 {
		return sc.setup
	}
	return readyTimeout
}

// A request is what the load generator replays.
type request struct {
	// raw is a complete HTTP/1.1 request (head and body) that keeps the
	// connection alive. Build it with encodeRequest.
	raw []byte
	// check, if not nil, validates the body of the probe response sent
	// before the load starts; the load itself only counts status codes.
	check func(body []byte) error
}

// scenarios lists every scenario in the order "all" runs them. "bare" comes
// first: the others are reported relative to it.
func scenarios() []scenario {
	return []scenario{
		bareScenario(),
		sigilGetScenario("sigil-get-noaudit", sigilOptions{auditMode: "off"}),
		sigilGetScenario("sigil-get", sigilOptions{}),
		sigilGetScenario("sigil-get-user", sigilOptions{asUser: true}),
		sigilGetScenario("sigil-get-session", sigilOptions{asSession: true}),
		slowSetup(sigilGetScenario("sigil-get-100k", sigilOptions{extra: 100_000}), 10*time.Minute),
		dynamicScenario(),
	}
}

// slowSetup marks sc as run only when named, with setup time to become
// ready.
func slowSetup(sc scenario, setup time.Duration) scenario {
	sc.explicitOnly, sc.setup = true, setup
	return sc
}

// findScenario returns the scenario called name.
func findScenario(name string, all []scenario) (scenario, bool) {
	for _, sc := range all {
		if sc.name == name {
			return sc, true
		}
	}
	return scenario{}, false
}

// encodeRequest serialises req as it would go on the wire. A request that
// would close the connection is refused: the load generator relies on
// keep-alive. The body must be set with a known ContentLength (as
// http.NewRequest does for a bytes.Reader) so that it is not chunked.
// Signatures survive: Write keeps every header it is given.
func encodeRequest(req *http.Request) ([]byte, error) {
	if req.Close {
		return nil, errors.New("request would close the connection")
	}
	if req.Body != nil && req.Body != http.NoBody && req.ContentLength <= 0 {
		return nil, errors.New("request body has no known length")
	}
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		return nil, fmt.Errorf("serialising request: %w", err)
	}
	return buf.Bytes(), nil
}

// readyPrefix starts the line a child prints on stdout once it serves; the
// rest of the line is a readyLine in JSON.
const readyPrefix = "sigil-bench-ready "

// readyLine is what a child reports to the harness when it is ready.
type readyLine struct {
	Addr string            `json:"addr"`
	Info map[string]string `json:"info,omitempty"`
}

// childMain is the -serve mode: it serves scenario name on a fresh port of
// 127.0.0.1 until SIGTERM, SIGINT or the end of lifetime, whichever comes
// first, and returns the process exit status.
func childMain(name string, lifetime time.Duration, all []scenario, stdout, stderr io.Writer) int {
	sc, ok := findScenario(name, all)
	if !ok {
		fmt.Fprintf(stderr, "bench serve: unknown scenario %q\n", name)
		return 2
	}
	if lifetime <= 0 || lifetime > maxDuration+maxWarmup+time.Hour {
		fmt.Fprintf(stderr, "bench serve: -serve-lifetime %v out of range\n", lifetime)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, lifetime)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "bench serve: listening: %v\n", err)
		return 1
	}
	var once sync.Once
	ready := func(info map[string]string) {
		once.Do(func() {
			line, err := json.Marshal(readyLine{Addr: ln.Addr().String(), Info: info})
			if err != nil {
				fmt.Fprintf(stderr, "bench serve: encoding ready line: %v\n", err)
				cancel()
				return
			}
			fmt.Fprintf(stdout, "%s%s\n", readyPrefix, line)
		})
	}
	if err := sc.serve(ctx, ln, ready); err != nil {
		fmt.Fprintf(stderr, "bench serve %s: %v\n", name, err)
		return 1
	}
	return 0
}

// child is a server process started by startChild.
type child struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

// pid returns the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// Limits on a child's start and stop.
const (
	readyTimeout  = 30 * time.Second
	maxChildLines = 1000
	stopTimeout   = 5 * time.Second
)

// startChild re-executes this binary to serve scenario name, and waits for
// its ready line. The child's stderr goes to a file in logDir, whose tail is
// included in errors. The child dies with the harness (Pdeathsig) and, in
// any case, by itself after lifetime.
func startChild(ctx context.Context, name string, lifetime, readyWithin time.Duration, logDir string) (*child, readyLine, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, readyLine{}, fmt.Errorf("finding own executable: %w", err)
	}
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, readyLine{}, fmt.Errorf("creating child log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor

	cmd := exec.Command(self, "-serve", name, "-serve-lifetime", lifetime.String())
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, readyLine{}, fmt.Errorf("piping child output: %w", err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, readyLine{}, fmt.Errorf("starting child: %w", err)
	}
	c := &child{cmd: cmd, exited: make(chan struct{}), logPath: logPath}

	lines := make(chan readyLine, 1)
	readErr := make(chan error, 1)
	go func() {
		r := bufio.NewReader(stdout)
		readErr <- func() error {
			for range maxChildLines {
				line, err := r.ReadString('\n')
				if rest, ok := strings.CutPrefix(line, readyPrefix); ok {
					var rl readyLine
					if err := json.Unmarshal([]byte(rest), &rl); err != nil {
						return fmt.Errorf("decoding ready line: %w", err)
					}
					lines <- rl
					return nil
				}
				if err != nil {
					return fmt.Errorf("child closed its output before it was ready: %w", err)
				}
			}
			return fmt.Errorf("no ready line in the first %d lines of child output", maxChildLines)
		}()
		// Keep draining so the child never blocks on a full pipe; this
		// ends when the child exits. Wait must come after the last read.
		_, _ = io.Copy(io.Discard, r)
		_ = cmd.Wait()
		close(c.exited)
	}()

	timer := time.NewTimer(readyWithin)
	defer timer.Stop()
	var rl readyLine
	select {
	case rl = <-lines:
	case err = <-readErr:
		if err == nil {
			rl = <-lines
		}
	case <-timer.C:
		err = fmt.Errorf("child not ready within %v", readyWithin)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		if host, _, splitErr := net.SplitHostPort(rl.Addr); splitErr != nil || host != "127.0.0.1" {
			err = fmt.Errorf("child reported address %q, want 127.0.0.1:PORT", rl.Addr)
		}
	}
	if err != nil {
		_ = c.stop()
		return nil, readyLine{}, fmt.Errorf("scenario %s: %w\n--- child log ---\n%s", name, err, tail(logPath))
	}
	return c, rl, nil
}

// stop ends the child with SIGTERM, then SIGKILL if it is still running
// after stopTimeout, and waits for it. Calling it again does nothing.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling child %d: %w", c.pid(), err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-c.exited:
		return nil
	case <-timer.C:
	}
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing child %d: %w", c.pid(), err)
	}
	<-c.exited
	return fmt.Errorf("child %d ignored SIGTERM for %v and was killed", c.pid(), stopTimeout)
}

// tail returns the last few kilobytes of the file at path.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return s
	}
	return "(empty)"
}
