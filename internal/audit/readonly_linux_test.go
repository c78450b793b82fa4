package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fsImmutableFL is FS_IMMUTABLE_FL from linux/fs.h (golang.org/x/sys does
// not define it).
const fsImmutableFL = 0x00000010

// makeReadOnly makes dir refuse new files for real: by mode for a normal
// user, and with the immutable attribute for root, whom modes do not stop.
// It returns the undo function (also run at cleanup).
func makeReadOnly(t *testing.T, dir string) func() {
	t.Helper()
	var undo func() error
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		undo = func() error { return os.Chmod(dir, 0o700) }
	} else {
		f, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
		if err == nil {
			err = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsImmutableFL))
		}
		if err != nil {
			msg := "cannot make a directory read-only as root (needs CAP_LINUX_IMMUTABLE and a file system with the immutable attribute, such as ext4): " + err.Error()
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		undo = func() error {
			f, err := os.Open(dir)
			if err != nil {
				return err
			}
			defer f.Close()
			return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags&^fsImmutableFL))
		}
	}
	done := false
	run := func() {
		if !done {
			done = true
			if err := undo(); err != nil {
				t.Errorf("making %s writable again: %v", dir, err)
			}
		}
	}
	t.Cleanup(run)
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o600); err == nil {
		run()
		t.Fatal("the directory still accepts new files")
	}
	return run
}

// TestFailClosedReadOnlyDir: when the log must start a new segment in a
// directory that has become read-only, Record fails with ErrUnavailable
// and Healthy is false; once the directory is writable again the log
// recovers and the chain verifies across the gap.
func TestFailClosedReadOnlyDir(t *testing.T) {
	dir := t.TempDir()
	keys := testKeys(t)
	l := openLog(t, dir, Options{Keys: keys, SegmentSize: 2 << 10, RetryInterval: time.Hour})
	record(t, l, sampleEvent(1))
	writable := makeReadOnly(t, dir)
	// The next record does not fit: the log rotates and cannot create the
	// new segment.
	err := l.Record(context.Background(), sampleEvent(2))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Record in a read-only directory: %v, want ErrUnavailable", err)
	}
	if l.Healthy() {
		t.Fatal("Healthy in a read-only directory")
	}
	writable()
	record(t, l, sampleEvent(3))
	if !l.Healthy() {
		t.Fatalf("not healthy after recovery: %v", l.Err())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, dir, keys, true)
	if !rep.OK() || rep.Records != 2 || rep.Segments != 2 {
		t.Fatalf("report %+v %v", rep, rep.Problem)
	}
}
