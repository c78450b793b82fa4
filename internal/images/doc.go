// Package images seals bootstrap identities into OCI container images and
// holds the server's registry of image keys.
//
// # Sealing (client side)
//
// [Seal] reads an image (a registry reference, an OCI image layout
// "oci:DIR" or a "docker save" tarball "docker-archive:FILE"; see
// [ParseReference]), generates a fresh Ed25519 key pair per platform
// image, appends one layer holding the bootstrap file
// /var/run/sigil/bootstrap.json (mode 0400, owned by a configurable
// uid/gid), labels the config, registers the public key bound to the new
// image digest through a [KeyRegistrar], and then writes or pushes the
// image. If writing fails after the key was registered, the key is
// deregistered again, so no key is left for an image that does not exist.
//
// At run time the workload reads the file with [ParseBootstrap], signs a
// short-lived assertion with [Bootstrap.Assertion] and trades it for
// session credentials with [Exchange] (STS AssumeRoleWithWebIdentity).
//
// # Security notes
//
// The private key exists in memory while sealing and in the sealed layer;
// it is never written anywhere else, never logged, never sent to the
// server, and [Bootstrap] prints REDACTED in place of it. The key is only
// good for the exchange, and only while the image digest is not revoked.
package images
