package images

import "errors"

// Errors of sealing ([Seal], [ParseReference]) and of the workload side
// ([ParseBootstrap], [Exchange]). Callers branch with errors.Is. They live
// in this file rather than errors.go because the package is shared with
// the server-side key registry, whose sentinels are in registry_errors.go.
var (
	// ErrBadReference means an image reference is neither a registry
	// reference, "oci:DIR[:tag|@digest]" nor "docker-archive:FILE[:ref]".
	ErrBadReference = errors.New("images: invalid image reference")
	// ErrAmbiguousImage means an OCI layout holds several images and the
	// reference selects none of them (add ":tag" or "@sha256:...").
	ErrAmbiguousImage = errors.New("images: image reference is ambiguous")
	// ErrImageNotFound means the selected image is not in the layout or
	// archive.
	ErrImageNotFound = errors.New("images: image not found")
	// ErrAlreadySealed means the image config already carries the
	// dev.sigil.key-id label and resealing was not asked for.
	ErrAlreadySealed = errors.New("images: image is already sealed")
	// ErrRegistrationMismatch means the server answered a register call
	// with a key id or audience other than the one sealed into the layer;
	// the key has been deregistered again.
	ErrRegistrationMismatch = errors.New("images: server registration does not match the sealed layer")
	// ErrInvalidSealOptions means a required sealing option is missing or
	// out of range.
	ErrInvalidSealOptions = errors.New("images: invalid seal options")
	// ErrBadBootstrap means a bootstrap file is not valid JSON of version
	// 1 with every required field well formed.
	ErrBadBootstrap = errors.New("images: invalid bootstrap file")
)
