package images

import (
	"archive/tar"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// writeLayout writes img into a fresh OCI layout with the given tag.
func writeLayout(t testing.TB, img v1.Image, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var opts []layout.Option
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{ociRefName: tag}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readLayoutImage(t testing.TB, dir string, d string) v1.Image {
	t.Helper()
	a, err := mustRef(t, "oci:"+dir+"@"+d).read(context.Background(), RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return a.image
}

// checkSealed verifies a sealed image against its original and the
// registration: original layers unchanged, one new layer holding exactly
// the bootstrap file (0400, uid:gid) and its directories, labels and env
// set, the registered digest and key matching.
func checkSealed(t *testing.T, orig, sealed v1.Image, reg *fakeRegistrar, res *SealResult, uid int) *Bootstrap {
	t.Helper()
	od, sd := layerDigests(t, orig), layerDigests(t, sealed)
	if len(sd) != len(od)+1 || !slices.Equal(sd[:len(od)], od) {
		t.Fatalf("sealed layers %v, want the original %v plus one", sd, od)
	}
	ls, _ := sealed.Layers()
	entries := layerEntries(t, ls[len(ls)-1])
	var names []string
	for _, e := range entries {
		names = append(names, e.header.Name)
	}
	want := []string{"var/run/sigil/", "var/run/sigil/bootstrap.json"}
	if !slices.Equal(names, want) {
		t.Fatalf("seal layer entries %v, want %v", names, want)
	}
	f, dh := entries[1].header, entries[0].header
	if f.Mode != 0o400 || f.Uid != uid || f.Gid != uid || f.Typeflag != tar.TypeReg {
		t.Errorf("bootstrap file mode %o owner %d:%d, want a regular file 0400 %d:%d", f.Mode, f.Uid, f.Gid, uid, uid)
	}
	if dh.Mode != 0o500 || dh.Uid != uid || dh.Typeflag != tar.TypeDir {
		t.Errorf("bootstrap directory mode %o owner %d, want 0500 %d", dh.Mode, dh.Uid, uid)
	}
	cf, err := sealed.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseBootstrap(entries[1].body)
	if err != nil {
		t.Fatalf("sealed bootstrap file: %v", err)
	}
	if cf.Config.Labels[LabelKeyID] != b.KeyID || cf.Config.Labels[LabelBootstrap] != BootstrapPath {
		t.Errorf("labels %v, want key id %s and the bootstrap path", cf.Config.Labels, b.KeyID)
	}
	if !slices.Contains(cf.Config.Env, EnvBootstrap+"="+BootstrapPath) {
		t.Errorf("env %v lacks %s", cf.Config.Env, EnvBootstrap)
	}
	d, _ := sealed.Digest()
	got, ok := reg.activeKeys()[b.KeyID]
	if !ok {
		t.Fatalf("key %s not registered (active: %v)", b.KeyID, reg.activeKeys())
	}
	if got.Digest != d.String() {
		t.Errorf("registered digest %s, image digest %s", got.Digest, d)
	}
	pub := ed25519.NewKeyFromSeed(b.PrivateKey).Public().(ed25519.PublicKey)
	if got.PublicKey != base64.StdEncoding.EncodeToString(pub) {
		t.Error("registered public key does not match the sealed private key")
	}
	if res != nil && res.KeyID != "" && (res.KeyID != b.KeyID || res.Digest != d.String()) {
		t.Errorf("result %+v, want key %s digest %s", res, b.KeyID, d)
	}
	if b.Audience != SealAudience("123456789012") || b.RoleARN != testRole || b.Repository != "registry.example.com/team/app" {
		t.Errorf("bootstrap %v has the wrong audience, role or repository", b)
	}
	return b
}

func TestSealOCILayout(t *testing.T) {
	for _, tc := range []struct {
		name, srcTag, dst string
		uid               int
	}{
		{"new layout untagged", "", "new", DefaultUID},
		{"new layout tagged", "v1", "new:sealed", 1000},
		{"same layout", "v1", "same:sealed", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := testImage(t, 1024, 3)
			src := writeLayout(t, orig, tc.srcTag)
			srcRef := "oci:" + src
			if tc.srcTag != "" {
				srcRef += ":" + tc.srcTag
			}
			dst := filepath.Join(t.TempDir(), "out")
			if strings.HasPrefix(tc.dst, "same") {
				dst = src
			}
			dstRef := "oci:" + dst
			if _, tag, ok := strings.Cut(tc.dst, ":"); ok {
				dstRef += ":" + tag
			}
			reg := newFakeRegistrar()
			o := baseOptions(mustRef(t, srcRef), mustRef(t, dstRef), reg)
			o.UID, o.GID = tc.uid, tc.uid
			res, err := Seal(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Reference != "oci:"+dst+"@"+res.Digest {
				t.Errorf("reference %q", res.Reference)
			}
			sealed := readLayoutImage(t, dst, res.Digest)
			checkSealed(t, orig, sealed, reg, res, tc.uid)
			if len(reg.requests) != 1 || reg.requests[0].Reseal {
				t.Errorf("registrations %+v, want one without reseal", reg.requests)
			}
			// The original is still readable and unchanged.
			od, _ := orig.Digest()
			if got, _ := readLayoutImage(t, src, od.String()).Digest(); got != od {
				t.Errorf("source image changed: %s, want %s", got, od)
			}
			if tc.dst != "new" {
				a, err := mustRef(t, dstRef).read(context.Background(), RemoteOptions{})
				if err != nil {
					t.Fatalf("reading the sealed image by tag: %v", err)
				}
				if d, _ := a.image.Digest(); d.String() != res.Digest {
					t.Errorf("tag points at %s, want %s", d, res.Digest)
				}
			}
		})
	}
}

func TestSealDockerArchiveRoundTrip(t *testing.T) {
	orig := testImage(t, 2048, 2)
	src := filepath.Join(t.TempDir(), "in.tar")
	tag, _ := name.NewTag("registry.example.com/team/app:1.0")
	if err := tarball.WriteToFile(src, tag, orig); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "out.tar")
	reg := newFakeRegistrar()
	o := baseOptions(mustRef(t, "docker-archive:"+src), mustRef(t, "docker-archive:"+dst+":registry.example.com/team/app:sealed"), reg)
	o.Repository = "" // derived from the destination's name
	res, err := Seal(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	a, err := mustRef(t, "docker-archive:"+dst+":registry.example.com/team/app:sealed").read(context.Background(), RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkSealed(t, orig, a.image, reg, res, DefaultUID)
	if d, _ := a.image.Digest(); d.String() != res.Digest {
		t.Errorf("archive image digest %s, result %s", d, res.Digest)
	}
}

// newRegistry starts pkg/registry behind handler wrappers.
func newRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u.Host
}

func remoteOpts() RemoteOptions { return RemoteOptions{Keychain: authn.NewMultiKeychain()} }

func TestSealRegistryPush(t *testing.T) {
	host := newRegistry(t, nil)
	orig := testImage(t, 4096, 2)
	src, _ := name.ParseReference(host + "/team/app:1.0")
	if err := remote.Write(src, orig); err != nil {
		t.Fatal(err)
	}
	reg := newFakeRegistrar()
	o := baseOptions(mustRef(t, host+"/team/app:1.0"), mustRef(t, host+"/team/app:1.0-sealed"), reg)
	o.Repository, o.Remote = "", remoteOpts()
	res, err := Seal(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Repository != host+"/team/app" || res.Reference != host+"/team/app@"+res.Digest {
		t.Errorf("result %+v", res)
	}
	ref, _ := name.ParseReference(res.Reference)
	sealed, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	// checkSealed expects the example repository; rebind for the check.
	for id, r := range reg.activeKeys() {
		if r.Repository != host+"/team/app" {
			t.Errorf("key %s bound to %q", id, r.Repository)
		}
	}
	b, err := ParseBootstrap(extractBootstrap(t, sealed))
	if err != nil {
		t.Fatal(err)
	}
	if b.Repository != host+"/team/app" || reg.activeKeys()[b.KeyID].Digest != res.Digest {
		t.Errorf("bootstrap %v / registrations %v do not match %s", b, reg.activeKeys(), res.Digest)
	}
	if od, sd := layerDigests(t, orig), layerDigests(t, sealed); !slices.Equal(sd[:len(od)], od) {
		t.Errorf("original layers changed: %v vs %v", od, sd)
	}
}

func TestSealFailedWriteLeavesNoKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(r *http.Request) bool
	}{
		{"manifest put fails", func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
		}},
		{"blob upload fails", func(r *http.Request) bool {
			return r.Method == http.MethodPatch || (r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var failed atomic.Int32
			var pushing atomic.Bool
			host := newRegistry(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if pushing.Load() && tc.fail(r) {
						failed.Add(1)
						http.Error(w, "injected failure", http.StatusInternalServerError)
						return
					}
					h.ServeHTTP(w, r)
				})
			})
			src, _ := name.ParseReference(host + "/team/app:1.0")
			if err := remote.Write(src, testImage(t, 1024, 1)); err != nil {
				t.Fatal(err)
			}
			pushing.Store(true)
			reg := newFakeRegistrar()
			o := baseOptions(mustRef(t, host+"/team/app:1.0"), mustRef(t, host+"/team/app:sealed"), reg)
			_, err := Seal(context.Background(), o)
			if err == nil {
				t.Fatal("seal succeeded against a failing registry")
			}
			if failed.Load() == 0 {
				t.Fatal("the injected failure was never hit")
			}
			if len(reg.requests) != 1 {
				t.Fatalf("%d registrations, want 1 (register before push)", len(reg.requests))
			}
			if act := reg.activeKeys(); len(act) != 0 {
				t.Errorf("keys left registered after a failed push: %v", act)
			}
			if len(reg.deregistered) != 1 {
				t.Errorf("deregistered %v, want the one key", reg.deregistered)
			}
			pushing.Store(false)
			tag, _ := name.ParseReference(host + "/team/app:sealed")
			if _, err := remote.Head(tag); err == nil {
				t.Error("the sealed tag exists after a failed push")
			}
		})
	}
}

func TestSealRegisterFailureWritesNothing(t *testing.T) {
	src := writeLayout(t, testImage(t, 512, 1), "")
	dst := filepath.Join(t.TempDir(), "out")
	reg := newFakeRegistrar()
	reg.failRegister = errors.New("AccessDeniedException: not allowed")
	_, err := Seal(context.Background(), baseOptions(mustRef(t, "oci:"+src), mustRef(t, "oci:"+dst), reg))
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("err = %v, want the register error", err)
	}
	if _, err := layout.FromPath(dst); err == nil {
		t.Error("a layout was written although registration failed")
	}
}

func TestSealLostRegisterAnswerLeavesNoKey(t *testing.T) {
	src := writeLayout(t, testImage(t, 512, 1), "")
	reg := newFakeRegistrar()
	reg.loseAnswer = true
	_, err := Seal(context.Background(), baseOptions(mustRef(t, "oci:"+src), mustRef(t, "oci:"+t.TempDir()+"/out"), reg))
	if err == nil {
		t.Fatal("seal succeeded although registration answered an error")
	}
	if len(reg.requests) != 1 || len(reg.activeKeys()) != 0 {
		t.Errorf("requests %d, active %v: the key registered before the lost answer is still there", len(reg.requests), reg.activeKeys())
	}
}

func TestSealRegistrationMismatchRollsBack(t *testing.T) {
	src := writeLayout(t, testImage(t, 512, 1), "")
	reg := newFakeRegistrar()
	reg.keyID = func(RegisterRequest) string { return "img-aaaaaaaaaaaaaaaaaaaaaaaaaa" }
	_, err := Seal(context.Background(), baseOptions(mustRef(t, "oci:"+src), mustRef(t, "oci:"+t.TempDir()+"/out"), reg))
	if !errors.Is(err, ErrRegistrationMismatch) {
		t.Fatalf("err = %v, want ErrRegistrationMismatch", err)
	}
	if len(reg.activeKeys()) != 0 {
		t.Errorf("mismatched key left registered: %v", reg.activeKeys())
	}
}

func TestSealAlreadySealed(t *testing.T) {
	orig := testImage(t, 1024, 2)
	src := writeLayout(t, orig, "")
	once := filepath.Join(t.TempDir(), "once")
	reg := newFakeRegistrar()
	first, err := Seal(context.Background(), baseOptions(mustRef(t, "oci:"+src), mustRef(t, "oci:"+once), reg))
	if err != nil {
		t.Fatal(err)
	}
	firstImg := readLayoutImage(t, once, first.Digest)
	oldBoot := extractBootstrap(t, firstImg)

	t.Run("refused", func(t *testing.T) {
		_, err := Seal(context.Background(), baseOptions(mustRef(t, "oci:"+once), mustRef(t, "oci:"+t.TempDir()+"/x"), reg))
		if !errors.Is(err, ErrAlreadySealed) {
			t.Fatalf("err = %v, want ErrAlreadySealed", err)
		}
		if len(reg.requests) != 1 {
			t.Errorf("a refused seal registered a key")
		}
	})
	t.Run("reseal", func(t *testing.T) {
		twice := filepath.Join(t.TempDir(), "twice")
		o := baseOptions(mustRef(t, "oci:"+once), mustRef(t, "oci:"+twice), reg)
		o.Reseal = true
		res, err := Seal(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if last := reg.requests[len(reg.requests)-1]; !last.Reseal {
			t.Error("reseal was not sent to the server")
		}
		sealed := readLayoutImage(t, twice, res.Digest)
		b := checkSealed(t, orig, sealed, reg, res, DefaultUID)
		if b.KeyID == first.KeyID {
			t.Error("reseal kept the old key id")
		}
		if len(res.Revoked) != 1 || res.Revoked[0] != first.Digest || len(reg.revoked) != 1 || reg.revoked[0] != first.Digest {
			t.Errorf("revoked %v (server saw %v), want the replaced digest %s", res.Revoked, reg.revoked, first.Digest)
		}
		// The old private key is no longer in any layer.
		old, _ := ParseBootstrap(oldBoot)
		ls, _ := sealed.Layers()
		for _, l := range ls {
			for _, e := range layerEntries(t, l) {
				if strings.Contains(string(e.body), base64.StdEncoding.EncodeToString(old.PrivateKey)) {
					t.Fatal("the resealed image still holds the old private key")
				}
			}
		}
	})
}

func TestResealWithoutRevoke(t *testing.T) {
	src := writeLayout(t, testImage(t, 512, 1), "")
	once := filepath.Join(t.TempDir(), "once")
	reg := newFakeRegistrar()
	first, err := Seal(context.Background(), baseOptions(mustRef(t, "oci:"+src), mustRef(t, "oci:"+once), reg))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		registrar KeyRegistrar
		fail      error
	}{
		{"registrar cannot revoke", registerOnly{reg}, nil},
		{"revoke refused", reg, errors.New("AccessDeniedException: no sigil:RevokeImage")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg.failRevoke = tc.fail
			o := baseOptions(mustRef(t, "oci:"+once), mustRef(t, "oci:"+filepath.Join(t.TempDir(), "x")), tc.registrar)
			o.Reseal = true
			res, err := Seal(context.Background(), o)
			if err != nil {
				t.Fatalf("a reseal whose revoke failed must still succeed: %v", err)
			}
			if len(res.Revoked) != 0 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "sigil image revoke "+first.Digest) {
				t.Errorf("revoked %v warnings %v, want one warning naming %s", res.Revoked, res.Warnings, first.Digest)
			}
		})
	}
}

func TestSealIndex(t *testing.T) {
	amd, arm := testImage(t, 1024, 2), testImage(t, 1024, 2)
	att := testImage(t, 128, 1)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}},
	)
	host := newRegistry(t, nil)
	src, _ := name.ParseReference(host + "/team/app:multi")
	if err := remote.WriteIndex(src, idx); err != nil {
		t.Fatal(err)
	}
	reg := newFakeRegistrar()
	o := baseOptions(mustRef(t, host+"/team/app:multi"), mustRef(t, host+"/team/app:multi-sealed"), reg)
	o.Repository = "registry.example.com/team/app" // the repository the keys bind to, explicitly
	res, err := Seal(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Platforms) != 2 || res.KeyID != "" {
		t.Fatalf("result %+v, want two platform entries", res)
	}
	ref, _ := name.ParseReference(res.Reference)
	sidx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := sidx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Fatalf("sealed index has %d entries, want 2 (attestation dropped)", len(im.Manifests))
	}
	origs := map[string]v1.Image{"linux/amd64": amd, "linux/arm64/v8": arm}
	keys := map[string]bool{}
	for i, d := range im.Manifests {
		p := d.Platform.String()
		if res.Platforms[i].Platform != p || res.Platforms[i].Digest != d.Digest.String() {
			t.Errorf("platform entry %+v, index entry %s %s", res.Platforms[i], p, d.Digest)
		}
		sealed, err := sidx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		b := checkSealed(t, origs[p], sealed, reg, nil, DefaultUID)
		keys[b.KeyID] = true
	}
	if len(keys) != 2 {
		t.Error("the platform images share a key")
	}

	t.Run("into an OCI layout", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "multi")
		o := baseOptions(mustRef(t, host+"/team/app:multi"), mustRef(t, "oci:"+dir+":multi"), reg)
		res, err := Seal(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		a, err := mustRef(t, "oci:"+dir+":multi").read(context.Background(), RemoteOptions{})
		if err != nil || a.index == nil {
			t.Fatalf("reading the sealed index back: %v", err)
		}
		if d, _ := a.index.Digest(); d.String() != res.Digest || len(res.Platforms) != 2 {
			t.Errorf("index %s, result %+v", d, res)
		}
	})
	t.Run("not into a docker archive", func(t *testing.T) {
		before := len(reg.activeKeys())
		o := baseOptions(mustRef(t, host+"/team/app:multi"), mustRef(t, "docker-archive:"+filepath.Join(t.TempDir(), "x.tar")), reg)
		if _, err := Seal(context.Background(), o); !errors.Is(err, ErrBadReference) {
			t.Fatalf("err = %v, want ErrBadReference", err)
		}
		if len(reg.activeKeys()) != before {
			t.Error("keys left registered for an index that could not be written")
		}
	})
}

func TestSealOptionsRejected(t *testing.T) {
	src := mustRef(t, "oci:"+t.TempDir())
	for _, tc := range []struct {
		name string
		edit func(*SealOptions)
	}{
		{"bad role", func(o *SealOptions) { o.RoleARN = "app" }},
		{"no endpoint", func(o *SealOptions) { o.Endpoint = "" }},
		{"negative ttl", func(o *SealOptions) { o.TTL = -1 }},
		{"no registrar", func(o *SealOptions) { o.Registrar = nil }},
		{"no repository for a layout", func(o *SealOptions) { o.Repository = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions(src, src, newFakeRegistrar())
			tc.edit(&o)
			if _, err := Seal(context.Background(), o); !errors.Is(err, ErrInvalidSealOptions) {
				t.Errorf("err = %v, want ErrInvalidSealOptions", err)
			}
		})
	}
}
