//go:build linux

package audit

import (
	"os"
	"syscall"
)

// datasync makes f's written data durable with fdatasync(2): the data and
// the metadata needed to read it back (the size, the block map), but not
// timestamps. On a segment whose size does not change it writes the data
// blocks and flushes the device cache, and nothing else.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// startWriteback asks the kernel to start writing [off, off+n) of f to disk
// without waiting (sync_file_range(2), SYNC_FILE_RANGE_WRITE), so that the
// zeros of a segment extension are on their way before the next fdatasync
// needs them. It makes nothing durable and its failure is harmless.
func startWriteback(f *os.File, off, n int64) {
	_ = syscall.SyncFileRange(int(f.Fd()), off, n, 0x2 /* SYNC_FILE_RANGE_WRITE */)
}
