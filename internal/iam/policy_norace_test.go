//go:build !race

package iam

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
