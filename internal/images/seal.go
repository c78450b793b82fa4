package images

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// sealHistoryPrefix starts the history entry of every seal layer; reseal
// uses it to find the layer to drop.
const sealHistoryPrefix = "sigil seal: bootstrap identity "

// deregisterTimeout bounds the rollback of a registration after a failed
// write; it runs even when the caller's context is already cancelled.
const deregisterTimeout = 30 * time.Second

// KeyRegistrar registers image public keys with the server (the native
// API, action sigil:RegisterImageKey) and takes a registration back.
type KeyRegistrar interface {
	// RegisterImageKey binds a public key to an image digest.
	RegisterImageKey(ctx context.Context, req RegisterRequest) (*RegisterResponse, error)
	// DeregisterImageKey removes a key registered by mistake.
	DeregisterImageKey(ctx context.Context, keyID string) error
}

// ImageRevoker revokes an image digest (POST /v1/images/revoke, action
// sigil:RevokeImage). A KeyRegistrar that also implements it lets a
// reseal revoke the replaced image's digest once the new one is written.
type ImageRevoker interface {
	// RevokeImage revokes every key of digest.
	RevokeImage(ctx context.Context, digest, reason string) error
}

// SealOptions configure [Seal]. Source, Destination, RoleARN, Endpoint,
// Region and Registrar are required.
type SealOptions struct {
	// Source is the image or multi-platform index to seal.
	Source Reference
	// Destination is where the sealed image is written or pushed; it may
	// equal Source for an OCI layout (the sealed image is added to it).
	Destination Reference
	// Repository is the repository the key is bound to. Empty means the
	// destination's repository for a registry, the repository of the
	// destination's (or else the source's) name for a docker archive;
	// for an OCI layout it is required.
	Repository string
	// RoleARN is the role the sealed identity may assume
	// (arn:aws:iam::ACCOUNT:role/NAME); its account gives the audience.
	RoleARN string
	// Endpoint is the sigil server URL written into the bootstrap file.
	Endpoint string
	// Region is the region written into the bootstrap file.
	Region string
	// TTL is the key's lifetime; zero means no expiry.
	TTL time.Duration
	// Reseal allows sealing an image that is already sealed: the old seal
	// layer is removed (so the old private key is not shipped), the
	// registration is sent with reseal set and, after the write, the old
	// sealed digest is revoked if the Registrar is an ImageRevoker (a
	// refusal is reported in SealResult.Warnings, not as a failure: the
	// new image is already written).
	Reseal bool
	// UID and GID own the bootstrap file; zero means root. The CLI
	// defaults to DefaultUID and DefaultGID.
	UID, GID int
	// Registrar registers the public keys.
	Registrar KeyRegistrar
	// Remote configures registry access.
	Remote RemoteOptions
	// Rand is the key source; nil means crypto/rand.Reader.
	Rand io.Reader
	// Logger receives progress (digests and key ids, never keys); nil
	// discards it.
	Logger *slog.Logger
}

// SealResult describes a sealed image.
type SealResult struct {
	// Reference is the sealed artifact's reference with its digest.
	Reference string `json:"reference"`
	// Digest is the manifest digest of the sealed image or index.
	Digest string `json:"digest"`
	// KeyID is the image key id (empty for an index; see Platforms).
	KeyID string `json:"keyId,omitempty"`
	// Repository is the repository the keys are bound to.
	Repository string `json:"repository"`
	// Expires is the key expiry (RFC 3339), empty without a TTL.
	Expires string `json:"expires,omitempty"`
	// Platforms lists the sealed images of a multi-platform index.
	Platforms []PlatformSeal `json:"platforms,omitempty"`
	// Revoked lists the digests of replaced seals revoked by a reseal.
	Revoked []string `json:"revoked,omitempty"`
	// Warnings says what a reseal could not do (e.g. revoking the old
	// digest without sigil:RevokeImage).
	Warnings []string `json:"warnings,omitempty"`
}

// PlatformSeal is one sealed image of an index.
type PlatformSeal struct {
	// Platform is "os/arch[/variant]".
	Platform string `json:"platform"`
	// Digest is the sealed platform image's digest.
	Digest string `json:"digest"`
	// KeyID is its image key id.
	KeyID string `json:"keyId"`
}

// sealedImage is one image sealed in memory, not yet registered.
type sealedImage struct {
	image    v1.Image
	digest   v1.Hash
	keyID    string
	audience string
	pub      ed25519.PublicKey
	platform string
	// replaced is the digest of the sealed image this one replaces
	// (reseal), empty otherwise.
	replaced string
}

// Seal reads the source, seals every image in it with a fresh key,
// registers the keys and writes the destination. Registration comes
// after the sealed digests are known and before the write; if the write
// (or a later registration) fails, every key registered by this call is
// deregistered, so no key outlives a failed seal.
func Seal(ctx context.Context, o SealOptions) (*SealResult, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	repo, err := o.repository()
	if err != nil {
		return nil, err
	}
	account := strings.Split(o.RoleARN, ":")[4]
	src, err := o.Source.read(ctx, o.Remote)
	if err != nil {
		return nil, err
	}
	if src.index != nil && o.Destination.Kind == RefDockerArchive {
		return nil, fmt.Errorf("%w: %s is a multi-platform index and a docker archive cannot hold one; write to oci:DIR or a registry", ErrBadReference, o.Source)
	}
	var sealed []*sealedImage
	var out artifact
	if src.index != nil {
		out.index, sealed, err = o.sealIndex(src.index, repo, account)
	} else {
		var s *sealedImage
		s, err = o.sealOne(src.image, repo, account, "")
		if s != nil {
			out.image, sealed = s.image, []*sealedImage{s}
		}
	}
	if err != nil {
		return nil, err
	}
	res := &SealResult{Repository: repo}
	var registered []string
	rollback := func(cause error) error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deregisterTimeout)
		defer cancel()
		var errs []error
		for _, id := range registered {
			if err := o.Registrar.DeregisterImageKey(rctx, id); err != nil {
				errs = append(errs, fmt.Errorf("deregistering image key %s: %w", id, err))
				log.Error("image key left registered after a failed seal; deregister it by hand", "keyId", id, "err", err)
			} else {
				log.Info("image key deregistered after a failed seal", "keyId", id)
			}
		}
		return errors.Join(append([]error{cause}, errs...)...)
	}
	for _, s := range sealed {
		reg, err := o.Registrar.RegisterImageKey(ctx, RegisterRequest{
			Digest: s.digest.String(), Repository: repo, RoleARN: o.RoleARN,
			PublicKey: base64.StdEncoding.EncodeToString(s.pub), TTLSeconds: int64(o.TTL / time.Second), Reseal: o.Reseal,
		})
		if err != nil {
			// The call may have failed after the server registered the key
			// (a timeout, a lost answer): the id is known, so take it back
			// too. A key that was never registered makes that a no-op
			// whose error is not worth reporting.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deregisterTimeout)
			if o.Registrar.DeregisterImageKey(rctx, s.keyID) == nil {
				log.Info("image key deregistered after a failed registration", "keyId", s.keyID)
			}
			cancel()
			return nil, rollback(fmt.Errorf("registering the key of %s: %w", s.digest, err))
		}
		if reg.KeyID != "" {
			registered = append(registered, reg.KeyID)
		}
		if reg.KeyID != s.keyID || reg.Audience != s.audience {
			return nil, rollback(fmt.Errorf("%w: sealed keyId %s audience %q, server answered keyId %q audience %q",
				ErrRegistrationMismatch, s.keyID, s.audience, reg.KeyID, reg.Audience))
		}
		if reg.Expires != nil {
			res.Expires = reg.Expires.UTC().Format(time.RFC3339)
		}
		log.Info("image key registered", "digest", s.digest.String(), "keyId", s.keyID, "platform", s.platform)
		if s.platform != "" {
			res.Platforms = append(res.Platforms, PlatformSeal{Platform: s.platform, Digest: s.digest.String(), KeyID: s.keyID})
		}
	}
	if err := o.Destination.write(ctx, out, repo, o.Remote); err != nil {
		return nil, rollback(err)
	}
	var d v1.Hash
	if out.index != nil {
		d, err = out.index.Digest()
	} else {
		d, err = out.image.Digest()
		res.KeyID = sealed[0].keyID
	}
	if err != nil {
		return nil, fmt.Errorf("computing the sealed digest: %w", err)
	}
	res.Digest = d.String()
	res.Reference = o.Destination.sealedReference(d)
	log.Info("sealed image written", "reference", res.Reference)
	for _, s := range sealed {
		if s.replaced == "" {
			continue
		}
		rv, ok := o.Registrar.(ImageRevoker)
		if !ok {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the replaced image %s was not revoked; run sigil image revoke %s", s.replaced, s.replaced))
			continue
		}
		if err := rv.RevokeImage(ctx, s.replaced, "resealed as "+s.digest.String()); err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("revoking the replaced image %s: %v (run sigil image revoke %s with sigil:RevokeImage)", s.replaced, err, s.replaced))
			log.Warn("replaced image not revoked", "digest", s.replaced, "err", err)
			continue
		}
		res.Revoked = append(res.Revoked, s.replaced)
		log.Info("replaced image revoked", "digest", s.replaced)
	}
	return res, nil
}

// sealedReference names what was written, with its digest.
func (r Reference) sealedReference(d v1.Hash) string {
	switch r.Kind {
	case RefRegistry:
		return r.Name.Context().Digest(d.String()).String()
	case RefOCI:
		return "oci:" + r.Path + "@" + d.String()
	}
	return r.String() + "@" + d.String()
}

func (o *SealOptions) check() error {
	bad := func(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidSealOptions, msg) }
	parts := strings.Split(o.RoleARN, ":")
	switch {
	case o.Source.Kind == 0 || o.Destination.Kind == 0:
		return bad("source and destination are required")
	case len(parts) != 6 || parts[0] != "arn" || parts[4] == "" || !strings.HasPrefix(parts[5], "role/"):
		return bad("the role must be an ARN like arn:aws:iam::123456789012:role/app")
	case o.Endpoint == "":
		return bad("the endpoint written into the bootstrap file is required")
	case o.Region == "":
		return bad("the region is required")
	case o.TTL < 0:
		return bad("the TTL cannot be negative")
	case o.TTL%time.Second != 0:
		return bad("the TTL must be a whole number of seconds")
	case o.UID < 0 || o.GID < 0:
		return bad("uid and gid cannot be negative")
	case o.Registrar == nil:
		return bad("a key registrar is required")
	}
	return nil
}

func (o *SealOptions) repository() (string, error) {
	if o.Repository != "" {
		return o.Repository, nil
	}
	for _, r := range []Reference{o.Destination, o.Source} {
		switch {
		case r.Kind == RefRegistry:
			return r.Name.Context().Name(), nil
		case r.Kind == RefDockerArchive && r.Selector != "":
			ref, err := ParseReference(r.Selector)
			if err == nil && ref.Kind == RefRegistry {
				return ref.Name.Context().Name(), nil
			}
		}
	}
	return "", fmt.Errorf("%w: cannot tell the image repository from %s; give it (e.g. --repository registry.example.com/team/app)", ErrInvalidSealOptions, o.Destination)
}

// sealIndex seals every platform image of idx and builds the new index.
// Entries that are not runnable images (attestations, platform
// unknown/unknown) are dropped: they describe the unsealed images.
func (o *SealOptions) sealIndex(idx v1.ImageIndex, repo, account string) (v1.ImageIndex, []*sealedImage, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the index manifest: %w", err)
	}
	mt, err := idx.MediaType()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the index media type: %w", err)
	}
	out := mutate.IndexMediaType(empty.Index, mt)
	var sealed []*sealedImage
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			return nil, nil, fmt.Errorf("%w: index entry %s is a %s; nested indexes cannot be sealed", ErrImageNotFound, d.Digest, d.MediaType)
		}
		if d.Platform == nil || d.Platform.OS == "unknown" {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, nil, fmt.Errorf("reading platform image %s: %w", d.Digest, err)
		}
		s, err := o.sealOne(img, repo, account, d.Platform.String())
		if err != nil {
			return nil, nil, fmt.Errorf("sealing platform %s: %w", d.Platform, err)
		}
		sealed = append(sealed, s)
		out = mutate.AppendManifests(out, mutate.IndexAddendum{Add: s.image,
			Descriptor: v1.Descriptor{Platform: d.Platform, Annotations: d.Annotations}})
	}
	if len(sealed) == 0 {
		return nil, nil, fmt.Errorf("%w: the index holds no platform image", ErrImageNotFound)
	}
	return out, sealed, nil
}

// sealOne seals one image in memory with a fresh key.
func (o *SealOptions) sealOne(img v1.Image, repo, account, platform string) (*sealedImage, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	var replaced string
	if old, ok := cf.Config.Labels[LabelKeyID]; ok {
		if !o.Reseal {
			return nil, fmt.Errorf("%w with key %s (hint: --reseal replaces the seal)", ErrAlreadySealed, old)
		}
		d, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("computing the sealed digest: %w", err)
		}
		replaced = d.String()
		if img, err = unseal(img); err != nil {
			return nil, err
		}
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, fmt.Errorf("reading the image media type: %w", err)
	}
	rnd := o.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	pub, priv, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("generating the image key: %w", err)
	}
	b := &Bootstrap{Version: 1, Endpoint: o.Endpoint, Region: o.Region, RoleARN: o.RoleARN,
		KeyID: SealKeyID(pub), PrivateKey: priv.Seed(), Issuer: ImageIssuer,
		Audience: SealAudience(account), Repository: repo}
	content, err := b.MarshalJSON()
	clear(b.PrivateKey)
	clear(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding the bootstrap file: %w", err)
	}
	layer, err := bootstrapLayer(append(content, '\n'), o.UID, o.GID, layerMediaType(mt))
	clear(content)
	if err != nil {
		return nil, err
	}
	out, err := mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: layerEpoch}, CreatedBy: sealHistoryPrefix + b.KeyID,
		Comment: "sigil seal: " + BootstrapPath,
	}})
	if err != nil {
		return nil, fmt.Errorf("appending the bootstrap layer: %w", err)
	}
	cf, err = out.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the sealed config: %w", err)
	}
	cfg := *cf.Config.DeepCopy()
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[LabelBootstrap] = BootstrapPath
	cfg.Labels[LabelKeyID] = b.KeyID
	cfg.Env = append(withoutEnv(cfg.Env, EnvBootstrap), EnvBootstrap+"="+BootstrapPath)
	if out, err = mutate.Config(out, cfg); err != nil {
		return nil, fmt.Errorf("labelling the sealed config: %w", err)
	}
	d, err := out.Digest()
	if err != nil {
		return nil, fmt.Errorf("computing the sealed digest: %w", err)
	}
	return &sealedImage{image: out, digest: d, keyID: b.KeyID, audience: b.Audience, pub: pub, platform: platform, replaced: replaced}, nil
}

func withoutEnv(env []string, key string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, key+"=") {
			out = append(out, e)
		}
	}
	return out
}

// unseal drops the seal layer of an already-sealed image (its top layer,
// recognised by its history entry) and the seal's labels and env, giving
// back the image that was sealed.
func unseal(img v1.Image) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the image layers: %w", err)
	}
	last := -1
	for i := len(cf.History) - 1; i >= 0; i-- {
		if !cf.History[i].EmptyLayer {
			last = i
			break
		}
	}
	if len(layers) == 0 || last < 0 || !strings.HasPrefix(cf.History[last].CreatedBy, sealHistoryPrefix) {
		return nil, fmt.Errorf("%w: its top layer is not a sigil seal layer, so it cannot be resealed; seal the unsealed image instead", ErrAlreadySealed)
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, fmt.Errorf("reading the image media type: %w", err)
	}
	base := mutate.MediaType(empty.Image, mt)
	if mt == types.OCIManifestSchema1 {
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	adds := make([]mutate.Addendum, 0, len(layers)-1)
	for _, l := range layers[:len(layers)-1] {
		adds = append(adds, mutate.Addendum{Layer: l})
	}
	if base, err = mutate.Append(base, adds...); err != nil {
		return nil, fmt.Errorf("rebuilding the unsealed image: %w", err)
	}
	ncf := cf.DeepCopy()
	ncf.RootFS.DiffIDs = ncf.RootFS.DiffIDs[:len(ncf.RootFS.DiffIDs)-1]
	ncf.History = append(ncf.History[:last:last], ncf.History[last+1:]...)
	delete(ncf.Config.Labels, LabelKeyID)
	delete(ncf.Config.Labels, LabelBootstrap)
	ncf.Config.Env = withoutEnv(ncf.Config.Env, EnvBootstrap)
	out, err := mutate.ConfigFile(base, ncf)
	if err != nil {
		return nil, fmt.Errorf("rebuilding the unsealed config: %w", err)
	}
	return out, nil
}
