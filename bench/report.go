package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the outcome of a whole run, as printed by -json.
type report struct {
	GoVersion       string    `json:"go_version"`
	CPUs            int       `json:"cpus"`
	Conns           int       `json:"conns"`
	WarmupSeconds   float64   `json:"warmup_seconds"`
	DurationSeconds float64   `json:"duration_seconds"`
	Results         []*result `json:"results"`
	// OK is false if any scenario failed to run or saw any error.
	OK bool `json:"ok"`
}

// result is one scenario's figures. Latencies are in nanoseconds.
type result struct {
	Scenario          string  `json:"scenario"`
	Requests          int64   `json:"requests"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	P50NS             int64   `json:"p50_ns"`
	P99NS             int64   `json:"p99_ns"`
	MaxNS             int64   `json:"max_ns"`
	// PeakRSSBytes is the server process's VmHWM at the end of the load.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// Errors is NonSuccess plus TransportErrors, warmup included.
	Errors          int64            `json:"errors"`
	NonSuccess      map[string]int64 `json:"non_2xx,omitempty"`
	TransportErrors int64            `json:"transport_errors"`
	FirstError      string           `json:"first_error,omitempty"`
	Reconnects      int64            `json:"reconnects"`
	// RatioToBare is RequestsPerSecond divided by that of "bare", when
	// bare ran too.
	RatioToBare *float64 `json:"ratio_to_bare,omitempty"`
	// Failure says why the scenario could not be measured, if it could not.
	Failure string `json:"failure,omitempty"`
}

// failed reports whether the scenario makes the run fail.
func (r *result) failed() bool { return r.Failure != "" || r.Errors > 0 }

// probeTimeout bounds the single request sent before the load.
const probeTimeout = 10 * time.Second

// run measures every scenario in turn and returns the report. Progress goes
// to progress.
func run(ctx context.Context, cfg config, selected []scenario, progress io.Writer) *report {
	rep := &report{
		GoVersion:       runtime.Version(),
		CPUs:            runtime.NumCPU(),
		Conns:           cfg.conns,
		WarmupSeconds:   cfg.warmup.Seconds(),
		DurationSeconds: cfg.duration.Seconds(),
		OK:              true,
	}
	logDir, err := os.MkdirTemp("", "sigil-bench-")
	if err != nil {
		rep.OK = false
		rep.Results = append(rep.Results, &result{Scenario: "-", Failure: fmt.Sprintf("creating log directory: %v", err)})
		return rep
	}
	defer os.RemoveAll(logDir)

	for _, sc := range selected {
		if ctx.Err() != nil {
			rep.Results = append(rep.Results, &result{Scenario: sc.name, Failure: "interrupted"})
			continue
		}
		fmt.Fprintf(progress, "bench: %s: %v warmup, then %v measured with %d connections\n", sc.name, cfg.warmup, cfg.duration, cfg.conns)
		res := runScenario(ctx, cfg, sc, logDir)
		rep.Results = append(rep.Results, res)
	}

	var bare *result
	for _, r := range rep.Results {
		if r.Scenario == "bare" && r.Failure == "" {
			bare = r
		}
	}
	for _, r := range rep.Results {
		if r.failed() {
			rep.OK = false
		}
		if bare != nil && r.Failure == "" && bare.RequestsPerSecond > 0 {
			ratio := r.RequestsPerSecond / bare.RequestsPerSecond
			r.RatioToBare = &ratio
		}
	}
	return rep
}

// runScenario starts sc's server, checks one request, loads it, and stops it.
func runScenario(ctx context.Context, cfg config, sc scenario, logDir string) *result {
	res := &result{Scenario: sc.name}
	lifetime := cfg.warmup + cfg.duration + sc.readyWithin() + probeTimeout + responseGrace + time.Minute
	c, ready, err := startChild(ctx, sc.name, lifetime, sc.readyWithin(), logDir)
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	defer func() {
		if err := c.stop(); err != nil && res.Failure == "" {
			res.Failure = err.Error()
		}
		if st := c.cmd.ProcessState; st != nil && !st.Success() && res.Failure == "" {
			res.Failure = fmt.Sprintf("server exited with %v\n--- child log ---\n%s", st, tail(c.logPath))
		}
	}()

	req, err := sc.prepare(ready.Addr, ready.Info)
	if err != nil {
		res.Failure = fmt.Sprintf("preparing request: %v", err)
		return res
	}
	if err := probe(ctx, ready.Addr, req); err != nil {
		res.Failure = fmt.Sprintf("probe request: %v\n--- child log ---\n%s", err, tail(c.logPath))
		return res
	}

	stats := runLoad(ctx, loadSpec{addr: ready.Addr, raw: req.raw, conns: cfg.conns, warmup: cfg.warmup, measure: cfg.duration})
	if ctx.Err() != nil {
		res.Failure = "interrupted"
		return res
	}
	rss, err := peakRSS(c.pid())
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	res.PeakRSSBytes = rss
	res.Requests = stats.hist.n
	res.RequestsPerSecond = float64(stats.hist.n) / stats.window.Seconds()
	res.P50NS = int64(stats.hist.quantile(0.50))
	res.P99NS = int64(stats.hist.quantile(0.99))
	res.MaxNS = int64(stats.hist.max)
	res.Errors = stats.errors()
	res.TransportErrors = stats.transportErrors
	res.FirstError = stats.firstError
	res.Reconnects = stats.reconnects
	if len(stats.non2xx) > 0 {
		res.NonSuccess = map[string]int64{}
		for code, n := range stats.non2xx {
			res.NonSuccess[strconv.Itoa(code)] = n
		}
	}
	if stats.hist.n == 0 {
		res.Failure = errNoRequests.Error()
	}
	return res
}

// probe sends req once on its own connection and checks that the answer is
// a 2xx whose body passes req.check.
func probe(ctx context.Context, addr string, req *request) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", addr, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("setting deadline: %w", err)
	}
	if _, err := conn.Write(req.raw); err != nil {
		return fmt.Errorf("writing request: %w", err)
	}
	var body []byte
	resp, err := readResponse(bufio.NewReader(conn), &body)
	if err != nil {
		return fmt.Errorf("reading response: %w", err)
	}
	if resp.status < 200 || resp.status > 299 {
		return fmt.Errorf("status %d, body %.300q", resp.status, body)
	}
	if req.check != nil {
		if err := req.check(body); err != nil {
			return fmt.Errorf("unexpected response: %w", err)
		}
	}
	return nil
}

// peakRSS returns the peak resident set size (VmHWM) of process pid.
func peakRSS(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading peak RSS of process %d: %w", pid, err)
	}
	n, err := parseVmHWM(status)
	if err != nil {
		return 0, fmt.Errorf("reading peak RSS of process %d: %w", pid, err)
	}
	return n, nil
}

// parseVmHWM extracts VmHWM, in bytes, from the text of /proc/PID/status,
// where it reads "VmHWM:	   12345 kB".
func parseVmHWM(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		fields := strings.Fields(string(rest))
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("%w: %q", errNoVmHWM, line)
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb <= 0 || kb > 1<<40 {
			return 0, fmt.Errorf("%w: %q", errNoVmHWM, line)
		}
		return kb << 10, nil
	}
	return 0, errNoVmHWM
}

// writeJSON prints the report as indented JSON.
func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable prints the report as an aligned table, followed by the
// failures and error details, if any.
func (r *report) writeTable(w io.Writer) {
	fmt.Fprintf(w, "# %s, %d CPUs shared by the load generator and the servers; %d connections; %gs warmup, %gs measured\n",
		r.GoVersion, r.CPUs, r.Conns, r.WarmupSeconds, r.DurationSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\treq/s\tp50\tp99\tmax\tpeak RSS MiB\terrors\tratio to bare")
	for _, res := range r.Results {
		if res.Failure != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\tFAILED\t-\n", res.Scenario)
			continue
		}
		ratio := "-"
		if res.RatioToBare != nil {
			ratio = fmt.Sprintf("%.2f", *res.RatioToBare)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%.1f\t%d\t%s\n",
			res.Scenario, res.RequestsPerSecond,
			millis(res.P50NS), millis(res.P99NS), millis(res.MaxNS),
			float64(res.PeakRSSBytes)/(1<<20), res.Errors, ratio)
	}
	_ = tw.Flush()
	for _, res := range r.Results {
		switch {
		case res.Failure != "":
			fmt.Fprintf(w, "\n%s failed: %s\n", res.Scenario, res.Failure)
		case res.Errors > 0:
			codes := make([]string, 0, len(res.NonSuccess))
			for code, n := range res.NonSuccess {
				codes = append(codes, fmt.Sprintf("%s x%d", code, n))
			}
			sort.Strings(codes)
			fmt.Fprintf(w, "\n%s errors: non-2xx [%s], transport %d", res.Scenario, strings.Join(codes, ", "), res.TransportErrors)
			if res.FirstError != "" {
				fmt.Fprintf(w, " (first: %s)", res.FirstError)
			}
			fmt.Fprintln(w)
		}
	}
}

// millis formats nanoseconds as milliseconds with microsecond precision.
func millis(ns int64) string {
	return fmt.Sprintf("%.3fms", float64(ns)/1e6)
}
