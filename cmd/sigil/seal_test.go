package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/images"
)

// fakeImageAPI answers /v1/images/register and /deregister as the
// contract says, for client tests that need no full server.
type fakeImageAPI struct {
	mu       sync.Mutex
	requests []images.RegisterRequest
	active   map[string]string // key id -> digest
	revoked  []string
	unsigned int
}

func startFakeImageAPI(t *testing.T) (*fakeImageAPI, string) {
	t.Helper()
	f := &fakeImageAPI{active: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			f.unsigned++
			w.WriteHeader(http.StatusForbidden)
			return
		}
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/v1/images/register":
			var reg images.RegisterRequest
			json.Unmarshal(body, &reg)
			f.requests = append(f.requests, reg)
			pub, _ := base64.StdEncoding.DecodeString(reg.PublicKey)
			id := images.SealKeyID(ed25519.PublicKey(pub))
			f.active[id] = reg.Digest
			json.NewEncoder(w).Encode(images.RegisterResponse{KeyID: id, Digest: reg.Digest, Repository: reg.Repository,
				RoleARN: reg.RoleARN, Audience: images.SealAudience("123456789012"), Issuer: images.ImageIssuer})
		case "/v1/images/revoke":
			var in images.RevokeRequest
			json.Unmarshal(body, &in)
			f.revoked = append(f.revoked, in.Digest)
			io.WriteString(w, `{"digest":"`+in.Digest+`","revokedAt":"2026-12-04T00:00:00Z"}`)
		case "/v1/images/deregister":
			var in struct{ KeyID string }
			json.Unmarshal(body, &in)
			delete(f.active, in.KeyID)
			io.WriteString(w, "{}")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// isolateAWS keeps the developer's AWS environment out of a test and
// returns flags signing with a throwaway credentials file.
func isolateAWS(t *testing.T) []string {
	t.Helper()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	creds := filepath.Join(t.TempDir(), "ci.credentials")
	if err := os.WriteFile(creds, []byte("[default]\naws_access_key_id = AKIACI\naws_secret_access_key = cisecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--credentials-file", creds, "--region", "us-east-1"}
}

func runCmd(t *testing.T, cmd *cobra.Command, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func testLayout(t *testing.T) string {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "src")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sealedKey extracts the bootstrap file of the image at ref.
func sealedBootstrap(t *testing.T, dir, digest string) *images.Bootstrap {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, _ := p.ImageIndex()
	im, _ := ii.IndexManifest()
	for _, d := range im.Manifests {
		if d.Digest.String() != digest {
			continue
		}
		img, err := ii.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := img.Layers()
		rc, _ := ls[len(ls)-1].Uncompressed()
		defer rc.Close()
		raw, _ := io.ReadAll(rc)
		start := bytes.Index(raw, []byte(`{"version"`))
		end := bytes.Index(raw[start:], []byte("}\n"))
		b, err := images.ParseBootstrap(raw[start : start+end+1])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Fatalf("no image %s in %s", digest, dir)
	return nil
}

// keyForms are the encodings a leaked key could appear in.
func keyForms(seed []byte) []string {
	return []string{base64.StdEncoding.EncodeToString(seed), base64.RawURLEncoding.EncodeToString(seed),
		hex.EncodeToString(seed), string(seed)}
}

func TestSealCmd(t *testing.T) {
	conn := isolateAWS(t)
	api, url := startFakeImageAPI(t)
	src := testLayout(t)
	out := filepath.Join(t.TempDir(), "out")
	base := append([]string{"--endpoint", url, "--role", "arn:aws:iam::123456789012:role/app",
		"--repository", "registry.example.com/team/app"}, conn...)

	stdout, stderr, err := runCmd(t, newSealCmd(), append([]string{"--image", "oci:" + src, "--out", "oci:" + out + ":sealed", "--json", "--ttl", "1h"}, base...)...)
	if err != nil {
		t.Fatalf("seal: %v\n%s", err, stderr)
	}
	var res images.SealResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if res.KeyID == "" || !strings.HasPrefix(res.Digest, "sha256:") || res.Reference != "oci:"+out+"@"+res.Digest {
		t.Fatalf("result %+v", res)
	}
	if api.unsigned != 0 || len(api.requests) != 1 || api.requests[0].TTLSeconds != 3600 || api.active[res.KeyID] != res.Digest {
		t.Fatalf("registrations %+v (unsigned %d)", api.requests, api.unsigned)
	}
	b := sealedBootstrap(t, out, res.Digest)
	if b.Endpoint != url || b.KeyID != res.KeyID {
		t.Errorf("bootstrap %v", b)
	}
	transcript := stdout + stderr

	t.Run("already sealed", func(t *testing.T) {
		stdout, stderr, err := runCmd(t, newSealCmd(), append([]string{"--image", "oci:" + out + ":sealed", "--out", "oci:" + out + ":again"}, base...)...)
		if err == nil || !strings.Contains(err.Error(), "already sealed") || !strings.Contains(err.Error(), "--reseal") {
			t.Fatalf("err = %v, want the already-sealed refusal with a hint", err)
		}
		transcript += stdout + stderr + err.Error()
		stdout, stderr, err = runCmd(t, newSealCmd(), append([]string{"--image", "oci:" + out + ":sealed", "--out", "oci:" + out + ":again", "--reseal"}, base...)...)
		if err != nil {
			t.Fatalf("reseal: %v", err)
		}
		transcript += stdout + stderr
		if last := api.requests[len(api.requests)-1]; !last.Reseal {
			t.Error("--reseal did not send reseal:true")
		}
		if len(api.revoked) != 1 || api.revoked[0] != res.Digest || !strings.Contains(stdout, "revoked the replaced image "+res.Digest) {
			t.Errorf("revoked %v, stdout %q; want the replaced digest %s", api.revoked, stdout, res.Digest)
		}
	})
	t.Run("bad reference", func(t *testing.T) {
		_, _, err := runCmd(t, newSealCmd(), append([]string{"--image", "oci:", "--out", "oci:" + out}, base...)...)
		if err == nil || !strings.Contains(err.Error(), "--image") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("private key never printed", func(t *testing.T) {
		for _, form := range keyForms(b.PrivateKey) {
			if strings.Contains(transcript, form) {
				t.Fatalf("the private key appears in the command's output")
			}
		}
		if !strings.Contains(transcript, res.KeyID) {
			t.Error("the transcript does not even name the key id; the search proves nothing")
		}
	})
}
