package main

import "errors"

// Errors the harness branches on or reports.
var (
	// errMalformed is wrapped by every error about a response that is not
	// valid HTTP/1.1, as opposed to a transport error.
	errMalformed = errors.New("malformed response")
	// errNoVmHWM means a /proc/PID/status text has no usable VmHWM line.
	errNoVmHWM = errors.New("no VmHWM line in kB")
	// errNoRequests means a measured window completed no request at all.
	errNoRequests = errors.New("no request completed in the measured window")
)
