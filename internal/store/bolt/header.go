package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"slices"
)

// The layout of a bbolt meta page (bbolt's internal/common), which checkFile
// reads before bbolt maps the file. bbolt writes these fields in the host's
// byte order; format version 2 has been stable since 2014.
const (
	boltMagic      uint32 = 0xED0CDAED
	boltVersion    uint32 = 2
	pageHeaderSize        = 16 // id uint64, flags uint16, count uint16, overflow uint32
	metaSize              = 64 // magic .. checksum
	checksumOffset        = 56 // the checksum covers the meta bytes before it
	noFreelist            = ^uint64(0)
	minPageSize           = pageHeaderSize + metaSize
	maxPageSize           = 1 << 30
)

// boltMeta is a decoded bbolt meta page.
type boltMeta struct {
	magic, version, pageSize uint32
	root, freelist, pgid     uint64
	txid                     uint64
	err                      error // why the page is invalid, or nil
}

// readMeta decodes the meta page at byte offset off of r. A page that cannot
// be read in full or fails bbolt's own checks comes back with err set.
func readMeta(r io.ReaderAt, off int64) boltMeta {
	var buf [pageHeaderSize + metaSize]byte
	if _, err := r.ReadAt(buf[:], off); err != nil {
		return boltMeta{err: fmt.Errorf("meta page at offset %d cannot be read: %w", off, err)}
	}
	b := buf[pageHeaderSize:]
	ne := binary.NativeEndian
	m := boltMeta{
		magic:    ne.Uint32(b[0:]),
		version:  ne.Uint32(b[4:]),
		pageSize: ne.Uint32(b[8:]),
		root:     ne.Uint64(b[16:]),
		freelist: ne.Uint64(b[32:]),
		pgid:     ne.Uint64(b[40:]),
		txid:     ne.Uint64(b[48:]),
	}
	h := fnv.New64a()
	h.Write(b[:checksumOffset])
	switch {
	case m.magic != boltMagic:
		m.err = fmt.Errorf("meta page at offset %d has no bbolt magic number", off)
	case m.version != boltVersion:
		m.err = fmt.Errorf("%w: meta page at offset %d is bbolt file format %d, this build reads format %d",
			ErrUnsupportedFormat, off, m.version, boltVersion)
	case h.Sum64() != ne.Uint64(b[checksumOffset:]):
		m.err = fmt.Errorf("meta page at offset %d fails its checksum", off)
	case m.pageSize < minPageSize || m.pageSize > maxPageSize:
		m.err = fmt.Errorf("meta page at offset %d declares an impossible page size %d", off, m.pageSize)
	}
	return m
}

// checkFile inspects the bbolt meta pages of f, before bbolt memory-maps the
// file, and reports what is wrong with a file bbolt would misread or crash on:
// one that is not a bbolt database, was written by an incompatible bbolt, or
// is shorter than its meta page says (bbolt would fault reading past the end
// of the mapping). An empty file is fine: bbolt initialises it.
//
// The errors wrap ErrCorrupt or ErrUnsupportedFormat. checkFile only reads.
func checkFile(f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("inspecting file: %w", err)
	}
	size := info.Size()
	if size == 0 {
		return nil
	}

	// Find the page size as bbolt does: from the first meta page, or, if that
	// one is damaged, from the first valid meta page at a power-of-two offset.
	m0 := readMeta(f, 0)
	pageSize := int64(m0.pageSize)
	if m0.err != nil {
		pageSize = 0
		for i := 0; i <= 14; i++ {
			off := int64(1024) << i
			if off >= size-1024 {
				break
			}
			if m := readMeta(f, off); m.err == nil {
				pageSize = int64(m.pageSize)
				break
			}
		}
		if pageSize == 0 {
			return describeInvalid(m0.err, size)
		}
	}
	m1 := readMeta(f, pageSize)

	// bbolt uses the valid meta page with the higher transaction id.
	a, b := m0, m1
	if b.txid > a.txid {
		a, b = b, a
	}
	m := a
	if m.err != nil {
		m = b
	}
	if m.err != nil {
		return describeInvalid(m0.err, size)
	}
	if int64(m.pageSize) != pageSize {
		return fmt.Errorf("%w: the meta pages disagree about the page size (%d and %d)", ErrCorrupt, pageSize, m.pageSize)
	}

	// Pages 0 and 1 are the meta pages; the root bucket and the freelist live
	// below the high-water mark pgid, and the file holds at least pgid pages.
	switch {
	case m.pgid < 4 || m.pgid > uint64(maxFileSize/pageSize):
		return fmt.Errorf("%w: the meta page declares an impossible page count %d", ErrCorrupt, m.pgid)
	case m.root < 2 || m.root >= m.pgid:
		return fmt.Errorf("%w: the meta page puts the root bucket at page %d, outside the file's %d pages", ErrCorrupt, m.root, m.pgid)
	case m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pgid):
		return fmt.Errorf("%w: the meta page puts the freelist at page %d, outside the file's %d pages", ErrCorrupt, m.freelist, m.pgid)
	case int64(m.pgid)*pageSize > size:
		return fmt.Errorf("%w: the file is %d bytes but its meta page describes %d pages of %d bytes (%d bytes): it was truncated",
			ErrCorrupt, size, m.pgid, pageSize, int64(m.pgid)*pageSize)
	}

	// bbolt reads the freelist and the root bucket's page while opening, and
	// panics if either is not what the meta page says it is.
	if m.freelist != noFreelist {
		if err := checkPage(f, pageSize, m.freelist, m.pgid, "freelist", freelistPageFlag); err != nil {
			return err
		}
	}
	return checkPage(f, pageSize, m.root, m.pgid, "root bucket", branchPageFlag, leafPageFlag)
}

// Page types of bbolt's page header.
const (
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
)

// checkPage checks that page id of f carries its own id and one of the
// expected page types, and that it and its overflow pages lie below the
// high-water mark pgid.
func checkPage(f io.ReaderAt, pageSize int64, id, pgid uint64, what string, types ...uint16) error {
	var hdr [pageHeaderSize]byte
	if _, err := f.ReadAt(hdr[:], int64(id)*pageSize); err != nil {
		return fmt.Errorf("%w: the %s page %d cannot be read: %v", ErrCorrupt, what, id, err)
	}
	ne := binary.NativeEndian
	gotID, flags, overflow := ne.Uint64(hdr[0:]), ne.Uint16(hdr[8:]), uint64(ne.Uint32(hdr[12:]))
	switch {
	case gotID != id:
		return fmt.Errorf("%w: the %s page %d is marked as page %d", ErrCorrupt, what, id, gotID)
	case !slices.Contains(types, flags):
		return fmt.Errorf("%w: the %s page %d has page type %#x", ErrCorrupt, what, id, flags)
	case id+overflow >= pgid:
		return fmt.Errorf("%w: the %s page %d runs past the file's %d pages", ErrCorrupt, what, id, pgid)
	}
	return nil
}

// maxFileSize bounds the sizes checkFile accepts (1 TiB), far beyond any
// store sigil writes, so that page arithmetic cannot overflow.
const maxFileSize = 1 << 40

// describeInvalid explains a file in which no meta page is valid, from the
// reason the first one failed.
func describeInvalid(err0 error, size int64) error {
	if errors.Is(err0, ErrUnsupportedFormat) {
		return err0
	}
	if size < 2*minPageSize {
		return fmt.Errorf("%w: the file is only %d bytes, too short to be a bbolt database (%v)", ErrCorrupt, size, err0)
	}
	return fmt.Errorf("%w: neither meta page is valid, so this is not a bbolt database or it was damaged (%v)", ErrCorrupt, err0)
}
