//go:build !linux

package audit

import "os"

// datasync makes f's written data durable; without fdatasync(2) that is a
// full fsync.
func datasync(f *os.File) error { return f.Sync() }

// startWriteback is a no-op where sync_file_range(2) does not exist.
func startWriteback(*os.File, int64, int64) {}
