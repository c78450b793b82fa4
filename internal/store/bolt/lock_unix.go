//go:build !windows && !plan9 && !solaris && !aix && !android

package bolt

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockRetry is how often lockFile tries again while another process holds
// the lock.
const lockRetry = 50 * time.Millisecond

// lockFile takes the exclusive advisory lock (flock) that bbolt itself uses,
// on f's open file description, so that checkFile inspects the file only once
// no other process can be writing it. bbolt's own flock on the same
// description then succeeds at once. waiting is called once if the lock is
// held by someone else. lockFile returns an error wrapping ErrLocked when the
// lock is still held after timeout.
func lockFile(f *os.File, timeout time.Duration, waiting func()) error {
	deadline := time.Now().Add(timeout)
	for first := true; ; first = false {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("locking file: %w", err)
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: still locked after %s", ErrLocked, timeout)
		}
		if first {
			waiting()
		}
		time.Sleep(min(lockRetry, time.Until(deadline)))
	}
}
