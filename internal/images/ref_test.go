package images

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	for _, tc := range []struct {
		in       string
		kind     RefKind
		path     string
		selector string
		err      error
	}{
		{in: "oci:dir", kind: RefOCI, path: "dir"},
		{in: "oci:/a/b:v1", kind: RefOCI, path: "/a/b", selector: "v1"},
		{in: "oci:/a:b/c", kind: RefOCI, path: "/a:b/c"},
		{in: "oci:d@sha256:" + hex64, kind: RefOCI, path: "d", selector: "sha256:" + hex64},
		{in: "oci:d@sha256:abc", err: ErrBadReference},
		{in: "oci:", err: ErrBadReference},
		{in: "oci:d:bad tag", err: ErrBadReference},
		{in: "docker-archive:f.tar", kind: RefDockerArchive, path: "f.tar"},
		{in: "docker-archive:f.tar:app:1.0", kind: RefDockerArchive, path: "f.tar", selector: "app:1.0"},
		{in: "docker-archive:f.tar:BAD", err: ErrBadReference},
		{in: "docker-archive:", err: ErrBadReference},
		{in: "registry.example.com/team/app:1.0", kind: RefRegistry},
		{in: "Not A Reference", err: ErrBadReference},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := ParseReference(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind != tc.kind || r.Path != tc.path || r.Selector != tc.selector {
				t.Errorf("got %+v", r)
			}
			if r.String() != tc.in {
				t.Errorf("String() = %q, want %q", r.String(), tc.in)
			}
		})
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestReadLayoutSelection(t *testing.T) {
	a, b := testImage(t, 256, 1), testImage(t, 256, 1)
	dir := writeLayout(t, a, "one")
	p := mustRef(t, "oci:"+dir)
	only, err := p.read(context.Background(), RemoteOptions{})
	if err != nil {
		t.Fatalf("single-image layout: %v", err)
	}
	if d1, _ := only.image.Digest(); d1 != mustDigest(t, a) {
		t.Errorf("read %s", d1)
	}
	if err := (Reference{Kind: RefOCI, Path: dir, Selector: "two"}).writeLayout(artifact{image: b}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref  string
		want error
	}{
		{"oci:" + dir, ErrAmbiguousImage},
		{"oci:" + dir + ":three", ErrImageNotFound},
		{"oci:" + dir + ":two", nil},
		{"oci:" + dir + "@" + mustDigest(t, a).String(), nil},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := mustRef(t, tc.ref).read(context.Background(), RemoteOptions{})
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzParseReference(f *testing.F) {
	for _, name := range []string{"references.txt", "bad_references.txt"} {
		for _, line := range strings.Split(string(readTestdata(f, name)), "\n") {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, ErrBadReference) {
				t.Fatalf("error %v is not ErrBadReference", err)
			}
			return
		}
		// A parsed local reference prints back to something that parses to
		// the same place.
		if r.Kind == RefRegistry {
			return
		}
		r2, err := ParseReference(r.String())
		if err != nil || r2.Kind != r.Kind || r2.Path != r.Path || r2.Selector != r.Selector {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, r, r.String(), r2, err)
		}
	})
}
