// Command imagetool builds and inspects the e-commerce example's image with
// go-containerregistry, without a Docker daemon:
//
//	imagetool build -binary app -layout DIR -tag TAG
//	    puts the static binary at /app on an empty base (OCI media types,
//	    entrypoint /app, user 65532) and writes it to the OCI layout DIR
//	    under TAG.
//	imagetool extract -layout DIR -tag TAG -path /var/run/sigil/bootstrap.json -to FILE
//	    copies one file out of the image's flattened filesystem to FILE
//	    (mode 0400), as the container runtime would present it.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const refName = "org.opencontainers.image.ref.name"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: imagetool build|extract [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = build(os.Args[2:])
	case "extract":
		err = extract(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want build or extract)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagetool:", err)
		os.Exit(1)
	}
}

func build(args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	binary := fs.String("binary", "", "static binary to put at /app")
	dir := fs.String("layout", "", "OCI layout directory to write")
	tag := fs.String("tag", "latest", "ref name of the image in the layout")
	fs.Parse(args)
	bin, err := os.ReadFile(*binary)
	if err != nil {
		return fmt.Errorf("reading the binary: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "app", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(bin); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	raw := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return fmt.Errorf("building the layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return err
	}
	img, err = mutate.Config(img, v1.Config{Entrypoint: []string{"/app"}, User: "65532:65532",
		Labels: map[string]string{"org.opencontainers.image.title": "my-app"}})
	if err != nil {
		return err
	}
	p, err := layout.FromPath(*dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if p, err = layout.Write(*dir, empty.Index); err != nil {
			return err
		}
	}
	if err := p.ReplaceImage(img, match.Annotation(refName, *tag), layout.WithAnnotations(map[string]string{refName: *tag})); err != nil {
		return fmt.Errorf("writing the layout: %w", err)
	}
	d, _ := img.Digest()
	fmt.Printf("built oci:%s:%s %s\n", *dir, *tag, d)
	return nil
}

func extract(args []string) error {
	fs := flag.NewFlagSet("extract", flag.ExitOnError)
	dir := fs.String("layout", "", "OCI layout directory")
	tag := fs.String("tag", "", "ref name of the image")
	path := fs.String("path", "/var/run/sigil/bootstrap.json", "file inside the image")
	to := fs.String("to", "", "where to write it (mode 0400)")
	fs.Parse(args)
	ii, err := layout.ImageIndexFromPath(*dir)
	if err != nil {
		return err
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		if d.Annotations[refName] != *tag {
			continue
		}
		img, err := ii.Image(d.Digest)
		if err != nil {
			return err
		}
		rc := mutate.Extract(img)
		defer rc.Close()
		tr := tar.NewReader(rc)
		want := strings.TrimPrefix(*path, "/")
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return fmt.Errorf("%s is not in the image", *path)
			}
			if err != nil {
				return err
			}
			if strings.TrimPrefix(h.Name, "./") != want {
				continue
			}
			f, err := os.OpenFile(*to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}
	}
	return fmt.Errorf("no image tagged %q in %s", *tag, *dir)
}
