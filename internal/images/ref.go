package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RefKind says where an image reference points.
type RefKind int

// The kinds of image reference.
const (
	// RefRegistry is a registry reference such as
	// registry.example.com/team/app:1.0 or ...@sha256:....
	RefRegistry RefKind = iota + 1
	// RefOCI is an OCI image layout directory: "oci:DIR", "oci:DIR:tag"
	// or "oci:DIR@sha256:<hex>".
	RefOCI
	// RefDockerArchive is a "docker save" tarball: "docker-archive:FILE"
	// or "docker-archive:FILE:name[:tag]".
	RefDockerArchive
)

// ociRefName is the annotation naming an image in an OCI layout's index.
const ociRefName = "org.opencontainers.image.ref.name"

var ociTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// Reference is a parsed image source or destination.
//
// For RefOCI, Selector is a tag (matched against the
// org.opencontainers.image.ref.name annotation of the layout's index), a
// digest "sha256:<hex>", or empty; an empty selector reads the layout's
// only entry and fails with ErrAmbiguousImage if it has several. A tag is
// recognised after the last ':' that follows the last '/', so a directory
// name containing ':' needs a trailing "/" or an explicit tag. When
// writing, a tag replaces the entry with that tag, and no tag appends.
//
// For RefDockerArchive, Selector is the image name inside the tarball
// (e.g. "app:1.0", split at the first ':' after "docker-archive:", so FILE
// cannot contain ':'); reading without it needs a tarball of exactly one
// image; writing without it tags the image "<repository>:latest".
type Reference struct {
	// Kind is where the reference points.
	Kind RefKind
	// Path is the layout directory or tarball file (RefOCI,
	// RefDockerArchive).
	Path string
	// Selector picks an image inside a layout or tarball; see above.
	Selector string
	// Name is the registry reference (RefRegistry).
	Name name.Reference
}

// ParseReference parses SRC/DST syntax: "oci:DIR[:tag|@sha256:hex]",
// "docker-archive:FILE[:name[:tag]]", or anything else as a registry
// reference (name.ParseReference with strict validation: the registry
// and the tag or digest must be explicit, since the repository is what
// the key is bound to).
func ParseReference(s string) (Reference, error) {
	switch {
	case strings.HasPrefix(s, "oci:"):
		rest := strings.TrimPrefix(s, "oci:")
		r := Reference{Kind: RefOCI, Path: rest}
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			r.Path, r.Selector = rest[:i], rest[i+1:]
			if _, err := v1.NewHash(r.Selector); err != nil || !strings.HasPrefix(r.Selector, "sha256:") {
				return Reference{}, fmt.Errorf("%w: %q: the part after @ must be sha256:<64 hex>", ErrBadReference, s)
			}
		} else if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
			r.Path, r.Selector = rest[:i], rest[i+1:]
			if !ociTag.MatchString(r.Selector) {
				return Reference{}, fmt.Errorf("%w: %q: bad tag %q", ErrBadReference, s, r.Selector)
			}
		}
		if r.Path == "" {
			return Reference{}, fmt.Errorf("%w: %q: no directory after oci:", ErrBadReference, s)
		}
		return r, nil
	case strings.HasPrefix(s, "docker-archive:"):
		rest := strings.TrimPrefix(s, "docker-archive:")
		r := Reference{Kind: RefDockerArchive, Path: rest}
		if i := strings.Index(rest, ":"); i >= 0 {
			r.Path, r.Selector = rest[:i], rest[i+1:]
			if _, err := name.NewTag(r.Selector); err != nil || strings.LastIndex(r.Selector, ":") < strings.LastIndex(r.Selector, "/") {
				return Reference{}, fmt.Errorf("%w: %q: bad image name %q (want name:tag)", ErrBadReference, s, r.Selector)
			}
		}
		if r.Path == "" {
			return Reference{}, fmt.Errorf("%w: %q: no file after docker-archive:", ErrBadReference, s)
		}
		return r, nil
	}
	n, err := name.ParseReference(s, name.StrictValidation)
	if err != nil {
		return Reference{}, fmt.Errorf("%w: %q is not oci:DIR, docker-archive:FILE or a registry reference: %v", ErrBadReference, s, err)
	}
	return Reference{Kind: RefRegistry, Name: n}, nil
}

// String returns the reference in SRC/DST syntax.
func (r Reference) String() string {
	switch r.Kind {
	case RefOCI:
		switch {
		case strings.HasPrefix(r.Selector, "sha256:"):
			return "oci:" + r.Path + "@" + r.Selector
		case r.Selector != "":
			return "oci:" + r.Path + ":" + r.Selector
		}
		return "oci:" + r.Path
	case RefDockerArchive:
		if r.Selector != "" {
			return "docker-archive:" + r.Path + ":" + r.Selector
		}
		return "docker-archive:" + r.Path
	case RefRegistry:
		return r.Name.String()
	}
	return ""
}

// RemoteOptions configure registry access. The zero value uses
// authn.DefaultKeychain (docker config, credential helpers) and
// http.DefaultTransport.
type RemoteOptions struct {
	// Keychain resolves registry credentials; nil means
	// authn.DefaultKeychain.
	Keychain authn.Keychain
	// Transport carries registry requests; nil means
	// remote.DefaultTransport.
	Transport http.RoundTripper
}

func (o RemoteOptions) options(ctx context.Context) []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	return opts
}

// artifact is what a reference resolves to: one image or one index.
type artifact struct {
	image v1.Image
	index v1.ImageIndex
}

// read loads the image or index r points to.
func (r Reference) read(ctx context.Context, ro RemoteOptions) (artifact, error) {
	switch r.Kind {
	case RefRegistry:
		desc, err := remote.Get(r.Name, ro.options(ctx)...)
		if err != nil {
			return artifact{}, fmt.Errorf("reading %s: %w", r.Name, err)
		}
		if desc.MediaType.IsIndex() {
			idx, err := desc.ImageIndex()
			if err != nil {
				return artifact{}, fmt.Errorf("reading index %s: %w", r.Name, err)
			}
			return artifact{index: idx}, nil
		}
		img, err := desc.Image()
		if err != nil {
			return artifact{}, fmt.Errorf("reading image %s: %w", r.Name, err)
		}
		return artifact{image: img}, nil
	case RefOCI:
		return r.readLayout()
	case RefDockerArchive:
		var tag *name.Tag
		if r.Selector != "" {
			t, err := name.NewTag(r.Selector)
			if err != nil {
				return artifact{}, fmt.Errorf("%w: %v", ErrBadReference, err)
			}
			tag = &t
		}
		img, err := tarball.ImageFromPath(r.Path, tag)
		if err != nil {
			return artifact{}, fmt.Errorf("reading docker archive %q: %w", r.Path, err)
		}
		// Force the manifest now so a missing tag is reported here.
		if _, err := img.Manifest(); err != nil {
			return artifact{}, fmt.Errorf("reading docker archive %q: %w", r.Path, err)
		}
		return artifact{image: img}, nil
	}
	return artifact{}, fmt.Errorf("%w: empty reference", ErrBadReference)
}

func (r Reference) readLayout() (artifact, error) {
	idx, err := layout.ImageIndexFromPath(r.Path)
	if err != nil {
		return artifact{}, fmt.Errorf("reading OCI layout %q: %w", r.Path, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return artifact{}, fmt.Errorf("reading OCI layout %q: %w", r.Path, err)
	}
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		switch {
		case r.Selector == "":
			found = append(found, d)
		case strings.HasPrefix(r.Selector, "sha256:"):
			if d.Digest.String() == r.Selector {
				found = append(found, d)
			}
		case d.Annotations[ociRefName] == r.Selector:
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0:
		return artifact{}, fmt.Errorf("%w: %s", ErrImageNotFound, r)
	case len(found) > 1 && r.Selector == "":
		return artifact{}, fmt.Errorf("%w: %q holds %d entries; add :tag or @sha256:... to choose one", ErrAmbiguousImage, r.Path, len(found))
	case len(found) > 1:
		return artifact{}, fmt.Errorf("%w: %d entries of %q match %q", ErrAmbiguousImage, len(found), r.Path, r.Selector)
	}
	d := found[0]
	switch {
	case d.MediaType.IsIndex():
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return artifact{}, fmt.Errorf("reading index %s in %q: %w", d.Digest, r.Path, err)
		}
		return artifact{index: child}, nil
	case d.MediaType.IsImage():
		img, err := idx.Image(d.Digest)
		if err != nil {
			return artifact{}, fmt.Errorf("reading image %s in %q: %w", d.Digest, r.Path, err)
		}
		return artifact{image: img}, nil
	}
	return artifact{}, fmt.Errorf("%w: %s is a %s, not an image or index", ErrImageNotFound, d.Digest, d.MediaType)
}

// write stores a (the sealed image or index) at r; repository names the
// image in a docker archive written without a selector.
func (r Reference) write(ctx context.Context, a artifact, repository string, ro RemoteOptions) error {
	switch r.Kind {
	case RefRegistry:
		if _, ok := r.Name.(name.Digest); ok {
			return fmt.Errorf("%w: destination %s names a digest; sealing changes it, give a tag", ErrBadReference, r.Name)
		}
		var err error
		if a.index != nil {
			err = remote.WriteIndex(r.Name, a.index, ro.options(ctx)...)
		} else {
			err = remote.Write(r.Name, a.image, ro.options(ctx)...)
		}
		if err != nil {
			return fmt.Errorf("pushing %s: %w", r.Name, err)
		}
		return nil
	case RefOCI:
		return r.writeLayout(a)
	case RefDockerArchive:
		if a.index != nil {
			return fmt.Errorf("%w: a docker archive holds no multi-platform index; write to oci:DIR or a registry", ErrBadReference)
		}
		sel := r.Selector
		if sel == "" {
			sel = repository + ":latest"
		}
		tag, err := name.NewTag(sel)
		if err != nil {
			return fmt.Errorf("%w: cannot name the archive's image %q: %v", ErrBadReference, sel, err)
		}
		return writeArchive(r.Path, tag, a.image)
	}
	return fmt.Errorf("%w: empty reference", ErrBadReference)
}

func (r Reference) writeLayout(a artifact) error {
	if strings.HasPrefix(r.Selector, "sha256:") {
		return fmt.Errorf("%w: destination %s names a digest; sealing changes it, give a tag or none", ErrBadReference, r)
	}
	p, err := layout.FromPath(r.Path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("opening OCI layout %q: %w", r.Path, err)
		}
		if p, err = layout.Write(r.Path, empty.Index); err != nil {
			return fmt.Errorf("creating OCI layout %q: %w", r.Path, err)
		}
	}
	var opts []layout.Option
	if r.Selector != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{ociRefName: r.Selector}))
	}
	switch {
	case a.index != nil && r.Selector != "":
		err = p.ReplaceIndex(a.index, match.Annotation(ociRefName, r.Selector), opts...)
	case a.index != nil:
		err = p.AppendIndex(a.index, opts...)
	case r.Selector != "":
		err = p.ReplaceImage(a.image, match.Annotation(ociRefName, r.Selector), opts...)
	default:
		err = p.AppendImage(a.image, opts...)
	}
	if err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", r.Path, err)
	}
	return nil
}

// writeArchive writes the tarball next to its destination and renames it
// into place, so a failed write leaves no partial file.
func writeArchive(path string, tag name.Tag, img v1.Image) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating docker archive %q: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := tarball.Write(tag, img, f); err != nil {
		f.Close()
		return fmt.Errorf("writing docker archive %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing docker archive %q: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing docker archive %q: %w", path, err)
	}
	return nil
}
