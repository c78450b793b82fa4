package images

import (
	"archive/tar"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

const testRole = "arn:aws:iam::123456789012:role/app"

// fakeRegistrar records registrations like the server would, deriving key
// ids and the audience as the contract says.
type fakeRegistrar struct {
	mu           sync.Mutex
	active       map[string]RegisterRequest // by key id
	requests     []RegisterRequest
	deregistered []string
	revoked      []string
	failRevoke   error
	failRegister error
	loseAnswer   bool                         // register, then answer with an error
	keyID        func(RegisterRequest) string // overrides the derived id
}

func newFakeRegistrar() *fakeRegistrar {
	return &fakeRegistrar{active: map[string]RegisterRequest{}}
}

func (s *fakeRegistrar) RegisterImageKey(_ context.Context, reg RegisterRequest) (*RegisterResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, reg)
	if s.failRegister != nil {
		return nil, s.failRegister
	}
	pub, err := base64.StdEncoding.DecodeString(reg.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("InvalidParameterException: bad key")
	}
	id := SealKeyID(pub)
	if s.keyID != nil {
		id = s.keyID(reg)
	}
	s.active[id] = reg
	if s.loseAnswer {
		return nil, errors.New("calling the server: context deadline exceeded")
	}
	return &RegisterResponse{KeyID: id, Digest: reg.Digest, Repository: reg.Repository, RoleARN: reg.RoleARN,
		Audience: SealAudience("123456789012"), Issuer: ImageIssuer}, nil
}

func (s *fakeRegistrar) DeregisterImageKey(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.active[id]; !ok {
		return fmt.Errorf("ResourceNotFoundException: %s", id)
	}
	delete(s.active, id)
	s.deregistered = append(s.deregistered, id)
	return nil
}

func (s *fakeRegistrar) RevokeImage(_ context.Context, digest, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failRevoke != nil {
		return s.failRevoke
	}
	s.revoked = append(s.revoked, digest)
	return nil
}

// registerOnly hides RevokeImage, like a client that cannot revoke.
type registerOnly struct{ KeyRegistrar }

func (s *fakeRegistrar) activeKeys() map[string]RegisterRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]RegisterRequest{}
	for k, v := range s.active {
		out[k] = v
	}
	return out
}

func testImage(t testing.TB, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustRef(t testing.TB, s string) Reference {
	t.Helper()
	r, err := ParseReference(s)
	if err != nil {
		t.Fatalf("ParseReference(%q): %v", s, err)
	}
	return r
}

func baseOptions(src, dst Reference, reg KeyRegistrar) SealOptions {
	return SealOptions{Source: src, Destination: dst, Repository: "registry.example.com/team/app",
		RoleARN: testRole, Endpoint: "https://sigil.example:8200", Region: "us-east-1",
		UID: DefaultUID, GID: DefaultGID, Registrar: reg}
}

// tarEntry is one entry of a layer.
type tarEntry struct {
	header *tar.Header
	body   []byte
}

func layerEntries(t testing.TB, l v1.Layer) []tarEntry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h, b})
	}
}

// extractBootstrap returns the bootstrap file from a sealed image's top
// layer.
func extractBootstrap(t testing.TB, img v1.Image) []byte {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range layerEntries(t, ls[len(ls)-1]) {
		if e.header.Name == "var/run/sigil/bootstrap.json" {
			return e.body
		}
	}
	t.Fatal("no bootstrap file in the top layer")
	return nil
}

func layerDigests(t testing.TB, img v1.Image) []v1.Hash {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func mustDigest(t testing.TB, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
