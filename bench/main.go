// Command bench measures how fast HTTP servers answer one replayed request
// under closed-loop load, and compares each target with a bare net/http
// handler measured in the same run.
//
// Usage:
//
//	go run ./bench -duration 10s -conns 64
//	go run ./bench -scenarios bare -duration 5s -json
//	go run ./bench -list
//
// Each scenario (see scenario.go) runs its server in a child process, a
// re-execution of this binary with -serve, so that the peak RSS reported is
// the server's own and not the load generator's. The load generator opens
// -conns keep-alive TCP connections to 127.0.0.1 and, on each, writes a
// pre-serialised HTTP/1.1 request as soon as the previous response has been
// read in full. After -warmup it measures for -duration and prints, per
// scenario, requests per second, p50/p99/max latency, the server's peak RSS,
// the error count and the throughput relative to "bare".
//
// Any non-2xx response or transport error makes the run exit with status 1.
// The load generator and the servers share the machine's CPUs, so the
// figures are only comparable between scenarios of one run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(mainWith(os.Args[1:], scenarios(), os.Stdout, os.Stderr))
}

// Bounds on the flags, so that a typo cannot start a run that never ends
// or opens more connections than the machine allows.
const (
	minDuration = 100 * time.Millisecond
	maxDuration = 10 * time.Minute
	maxWarmup   = time.Minute
	maxConns    = 1024
)

// config is the validated command line of a measuring run.
type config struct {
	// duration is how long each scenario is measured, after warmup.
	duration time.Duration
	// warmup is how long each scenario is loaded before measuring.
	warmup time.Duration
	// conns is the number of concurrent keep-alive connections.
	conns int
	// names are the scenarios to run, in order.
	names []string
	// json selects machine-readable output.
	json bool
}

// mainWith runs the command with args and returns its exit status: 0 on a
// clean run, 1 if any scenario failed or saw an error, 2 for bad usage.
func mainWith(args []string, all []scenario, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 10*time.Second, "how long to measure each scenario")
	warmup := fs.Duration("warmup", time.Second, "how long to load each scenario before measuring")
	conns := fs.Int("conns", 64, "concurrent keep-alive connections")
	names := fs.String("scenarios", "all", "comma-separated scenarios to run, or \"all\"")
	jsonOut := fs.Bool("json", false, "print results as JSON")
	list := fs.Bool("list", false, "list the scenarios and exit")
	serve := fs.String("serve", "", "internal: serve the named scenario as a child process")
	lifetime := fs.Duration("serve-lifetime", 0, "internal: how long a child server may live")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./bench [-duration 10s] [-warmup 1s] [-conns 64] [-scenarios all] [-json]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q; see -help\n", fs.Args())
		return 2
	}

	if *serve != "" {
		return childMain(*serve, *lifetime, all, stdout, stderr)
	}
	if *list {
		for _, sc := range all {
			fmt.Fprintf(stdout, "%-12s %s\n", sc.name, sc.about)
		}
		return 0
	}

	cfg := config{duration: *duration, warmup: *warmup, conns: *conns, json: *jsonOut}
	selected, err := selectScenarios(*names, all)
	if err == nil {
		err = cfg.validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v; see -help\n", err)
		return 2
	}
	for _, sc := range selected {
		cfg.names = append(cfg.names, sc.name)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep := run(ctx, cfg, selected, stderr)
	if cfg.json {
		if err := rep.writeJSON(stdout); err != nil {
			fmt.Fprintf(stderr, "bench: writing results: %v\n", err)
			return 1
		}
	} else {
		rep.writeTable(stdout)
	}
	if !rep.OK {
		fmt.Fprintln(stderr, "bench: FAILED: a scenario failed or saw errors (see above)")
		return 1
	}
	return 0
}

// validate checks the flag values against their bounds.
func (c config) validate() error {
	switch {
	case c.duration < minDuration || c.duration > maxDuration:
		return fmt.Errorf("-duration %v out of range [%v, %v]", c.duration, minDuration, maxDuration)
	case c.warmup < 0 || c.warmup > maxWarmup:
		return fmt.Errorf("-warmup %v out of range [0, %v]", c.warmup, maxWarmup)
	case c.conns < 1 || c.conns > maxConns:
		return fmt.Errorf("-conns %d out of range [1, %d]", c.conns, maxConns)
	}
	return nil
}

// selectScenarios resolves the -scenarios flag against the known scenarios,
// keeping the order given ("all" keeps the registry's order and leaves out
// the scenarios marked explicitOnly, whose set-up takes long).
func selectScenarios(list string, all []scenario) ([]scenario, error) {
	if list == "all" {
		var out []scenario
		for _, sc := range all {
			if !sc.explicitOnly {
				out = append(out, sc)
			}
		}
		return out, nil
	}
	var out []scenario
	seen := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" || seen[name] {
			continue
		}
		sc, ok := findScenario(name, all)
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q (try -list)", name)
		}
		seen[name] = true
		out = append(out, sc)
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario selected")
	}
	return out, nil
}
