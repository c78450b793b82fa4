package images

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// BenchmarkSealOCILayout compares sealing a 50 MiB image (five 10 MiB
// layers) from one OCI layout into a new one with a plain crane-style
// copy of the same image (layout.Write of the unmodified image), in the
// same run. The target is seal <= 2x copy.
func BenchmarkSealOCILayout(b *testing.B) {
	const layerSize, layers = 10 << 20, 5
	src := writeLayout(b, testImage(b, layerSize, layers), "")
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(layerSize * layers)
		dst := b.TempDir()
		i := 0
		for b.Loop() {
			a, err := mustRef(b, "oci:"+src).read(context.Background(), RemoteOptions{})
			if err != nil {
				b.Fatal(err)
			}
			p, err := layout.Write(filepath.Join(dst, "copy"+strconv.Itoa(i)), empty.Index)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.AppendImage(a.image); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("seal", func(b *testing.B) {
		b.SetBytes(layerSize * layers)
		dst := b.TempDir()
		reg := newFakeRegistrar()
		i := 0
		for b.Loop() {
			o := baseOptions(mustRef(b, "oci:"+src), mustRef(b, "oci:"+filepath.Join(dst, "seal"+strconv.Itoa(i))), reg)
			if _, err := Seal(context.Background(), o); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
