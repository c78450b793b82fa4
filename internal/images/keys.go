package images

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Key ids and digests
//
// A key id is "img-" and the lower-case unpadded base32 of the first 16
// bytes of the SHA-256 of the public key: the sealing side must know it
// before registering, because it is part of the layer whose digest the
// registration names. A digest is "sha256:" and 64 lower-case hex digits, as OCI spells
// image manifest digests.

// keyIDPrefix starts every image key id.
const keyIDPrefix = "img-"

var (
	digestFormat = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	keyIDFormat  = regexp.MustCompile(`^img-[a-z2-7]{26}$`)
	keyIDEnc     = base32.StdEncoding.WithPadding(base32.NoPadding)
)

// ValidDigest reports whether d is "sha256:" followed by 64 lower-case hex
// digits.
func ValidDigest(d string) bool { return digestFormat.MatchString(d) }

// ValidKeyID reports whether id has the shape of an image key id.
func ValidKeyID(id string) bool { return keyIDFormat.MatchString(id) }

// KeyIDOf returns the key id of an image public key.
func KeyIDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return keyIDPrefix + strings.ToLower(keyIDEnc.EncodeToString(sum[:16]))
}

// ParsePublicKey decodes the base64 (standard, padded) of a 32-byte
// Ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: publicKey must be the base64 of a 32-byte Ed25519 public key", ErrInvalidKey)
	}
	return ed25519.PublicKey(b), nil
}

// Key is one registered image key. It holds no secret: the private half
// exists only in the sealed image.
type Key struct {
	// ID is the key id ("img-...").
	ID string `json:"id"`
	// Digest is the image digest the key is bound to.
	Digest string `json:"digest"`
	// Repository is the image's repository (registry host and path).
	Repository string `json:"repository"`
	// RoleARN is the role the image's bootstrap file names.
	RoleARN string `json:"roleArn"`
	// PublicKey is the Ed25519 public key.
	PublicKey []byte `json:"publicKey"`
	// Created is when the key was registered, CreatedBy the ARN of the
	// principal that registered it.
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"createdBy"`
	// Expires is when the key stops working; zero means never.
	Expires time.Time `json:"expires,omitzero"`
	// Replaced is when a reseal replaced the key; zero while it is the
	// digest's active key.
	Replaced time.Time `json:"replaced,omitzero"`
	// LastUsed and Exchanges count successful verifications, as flushed
	// to the store (at most once a second per replica).
	LastUsed  time.Time `json:"lastUsed,omitzero"`
	Exchanges int64     `json:"exchanges"`
}

// active reports whether k can still be used at now (ignoring digest
// revocations).
func (k *Key) active(now time.Time) bool {
	return k.Replaced.IsZero() && (k.Expires.IsZero() || now.Before(k.Expires))
}
