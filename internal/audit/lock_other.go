//go:build !unix

package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// lockFileName is the lock file a Log holds in its directory.
const lockFileName = "audit.lock"

// lockDir creates dir/audit.lock exclusively where flock is unavailable, so
// two writers never interleave one chain; the returned function removes
// it. A crash leaves the file behind: remove it once no sigil process runs.
func lockDir(dir string) (func(), error) {
	p := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: %s (remove %s if no sigil process is running)", ErrLocked, dir, p)
		}
		return nil, fmt.Errorf("creating audit lock: %w", err)
	}
	f.Close()
	return func() { os.Remove(p) }, nil
}
