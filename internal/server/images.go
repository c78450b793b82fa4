package server

import (
	"errors"
	"net/http"

	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/images"
)

// The sealed-image API: POST /v1/images/{register,deregister,list,revoke}
// with the bodies of package images, through the native call path
// (native.go): SigV4 for service "sigil", the policy engine
// (sigil:RegisterImageKey and sigil:RevokeImage on
// arn:aws:sigil:REGION:ACCOUNT:image/REPOSITORY, sigil:ListImages on "*"),
// and an audit event for every decision and outcome.

// imageWireError maps the registry's errors to the JSON 1.1 wire.
func imageWireError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, images.ErrInvalidDigest), errors.Is(err, images.ErrInvalidKey), errors.Is(err, images.ErrInvalidRequest):
		return awsproto.InvalidParameter("%v", err)
	case errors.Is(err, images.ErrDigestExists):
		return awsproto.Errorf("ResourceExistsException", http.StatusBadRequest, "%v", err)
	case errors.Is(err, images.ErrNotFound):
		return awsproto.ResourceNotFound("%v", err)
	}
	return err
}

// handleRegisterImage serves POST /v1/images/register: the sealing side
// binds a public key to an image digest.
func (s *Server) handleRegisterImage(w http.ResponseWriter, r *http.Request) {
	var req images.RegisterRequest
	c := s.beginNative(w, r, "sigil:RegisterImageKey", false, &req)
	if c == nil {
		return
	}
	// A digest that already has a key (active, expired or replaced) is
	// rebound to the new one: a reseal stops the current key, and revoking
	// the digest is then authorized on the new key's repository. When the
	// old key was registered for another repository the caller must be
	// allowed to register keys there too, or anyone allowed one repository
	// could disable other repositories' images by their (public) digests.
	if images.ValidDigest(req.Digest) {
		old, err := c.svc.images.KeyForDigest(r.Context(), req.Digest)
		switch {
		case err == nil && old.Repository != req.Repository:
			if !c.authorize(images.ResourceARN(s.cfg.Region, c.svc.account.ID, old.Repository)) {
				return
			}
		case err != nil && !errors.Is(err, images.ErrNotFound):
			s.jsonError(w, r, err)
			return
		}
	}
	if !c.authorize(images.ResourceARN(s.cfg.Region, c.svc.account.ID, req.Repository)) {
		return
	}
	// Binding a key to a role hands the role to whoever runs the image, as
	// passing a role to a service does in AWS: the caller must be allowed
	// iam:PassRole on it, or anyone allowed to seal any repository could
	// take a role that trusts sigil:image without a repository condition.
	if !c.authorizeAs("iam:PassRole", req.RoleARN) {
		return
	}
	resp, err := c.svc.images.Register(r.Context(), c.p.ARN, &req)
	c.finish(resp, imageWireError(err))
}

// handleDeregisterImage serves POST /v1/images/deregister: the sealing
// side takes back a registration whose image was never written. It is
// authorized like registering, on the key's repository; for an unknown key
// on "*", so that only callers allowed everywhere learn it does not exist.
func (s *Server) handleDeregisterImage(w http.ResponseWriter, r *http.Request) {
	var req images.DeregisterRequest
	c := s.beginNative(w, r, "sigil:RegisterImageKey", false, &req)
	if c == nil {
		return
	}
	k, err := c.svc.images.Key(r.Context(), req.KeyID)
	switch {
	case errors.Is(err, images.ErrNotFound):
		if c.authorize("*") {
			c.finish(nil, imageWireError(err))
		}
		return
	case err != nil:
		s.jsonError(w, r, err)
		return
	}
	if !c.authorize(images.ResourceARN(s.cfg.Region, c.svc.account.ID, k.Repository)) {
		return
	}
	c.finish(struct{}{}, imageWireError(c.svc.images.Deregister(r.Context(), req.KeyID)))
}

// handleListImages serves POST /v1/images/list.
func (s *Server) handleListImages(w http.ResponseWriter, r *http.Request) {
	c := s.beginNative(w, r, "sigil:ListImages", true, nil)
	if c == nil || !c.authorize("*") {
		return
	}
	list, err := c.svc.images.List(r.Context())
	if err != nil {
		c.finish(nil, err)
		return
	}
	c.finish(images.ListResponse{Images: list}, nil)
}

// handleRevokeImage serves POST /v1/images/revoke, authorized on the
// digest's repository (on "*" for a digest without a key, which then fails
// with ResourceNotFoundException).
func (s *Server) handleRevokeImage(w http.ResponseWriter, r *http.Request) {
	var req images.RevokeRequest
	c := s.beginNative(w, r, "sigil:RevokeImage", false, &req)
	if c == nil {
		return
	}
	if !images.ValidDigest(req.Digest) {
		s.jsonError(w, r, awsproto.InvalidParameter("digest %q must be sha256: followed by 64 lower-case hex digits", truncate(req.Digest, 80)))
		return
	}
	resource := "*"
	k, err := c.svc.images.KeyForDigest(r.Context(), req.Digest)
	switch {
	case err == nil:
		resource = images.ResourceARN(s.cfg.Region, c.svc.account.ID, k.Repository)
	case !errors.Is(err, images.ErrNotFound):
		s.jsonError(w, r, err)
		return
	}
	if !c.authorize(resource) {
		return
	}
	resp, err := c.svc.images.Revoke(r.Context(), req.Digest, req.Reason, c.p.ARN)
	c.finish(resp, imageWireError(err))
}
