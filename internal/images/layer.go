package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultUID and DefaultGID own the bootstrap file unless SealOptions say
// otherwise (65532 is the "nonroot" user of distroless images).
const (
	DefaultUID = 65532
	DefaultGID = 65532
)

// layerEpoch is the modification time of every entry in the sealed layer,
// so that the layer depends only on its content.
var layerEpoch = time.Unix(0, 0).UTC()

// bootstrapLayerTar builds the uncompressed tar of the sealed layer: the
// directory /var/run/sigil (mode 0500, owned by uid:gid, so only the
// workload can enter it) and the file itself (mode 0400, uid:gid).
//
// The layer deliberately has no entries for /var and /var/run: in most
// base images (Debian, Alpine, distroless) /var/run is a symlink to /run,
// and a directory entry for it would replace the symlink in the sealed
// image. Container runtimes create missing parents and resolve existing
// ones (symlinks included) when they apply a layer, so the file appears at
// /var/run/sigil/bootstrap.json either way.
func bootstrapLayerTar(content []byte, uid, gid int) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := &tar.Header{Typeflag: tar.TypeDir, Name: path.Dir(strings.TrimPrefix(BootstrapPath, "/")) + "/",
		Mode: 0o500, Uid: uid, Gid: gid, ModTime: layerEpoch, Format: tar.FormatPAX}
	if err := tw.WriteHeader(dir); err != nil {
		return nil, fmt.Errorf("writing layer directory: %w", err)
	}
	h := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(BootstrapPath, "/"), Mode: 0o400,
		Uid: uid, Gid: gid, Size: int64(len(content)), ModTime: layerEpoch, Format: tar.FormatPAX}
	if err := tw.WriteHeader(h); err != nil {
		return nil, fmt.Errorf("writing layer file header: %w", err)
	}
	if _, err := tw.Write(content); err != nil {
		return nil, fmt.Errorf("writing layer file: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing layer tar: %w", err)
	}
	return buf.Bytes(), nil
}

// bootstrapLayer wraps the tar in a gzip-compressed v1.Layer of media
// type mt, kept in memory (the layer is small).
func bootstrapLayer(content []byte, uid, gid int, mt types.MediaType) (v1.Layer, error) {
	raw, err := bootstrapLayerTar(content, uid, gid)
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(mt), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("building the bootstrap layer: %w", err)
	}
	return l, nil
}

// layerMediaType picks the layer media type matching an image manifest's
// media type: OCI for OCI manifests, Docker otherwise.
func layerMediaType(manifest types.MediaType) types.MediaType {
	if manifest == types.OCIManifestSchema1 {
		return types.OCILayer
	}
	return types.DockerLayer
}
