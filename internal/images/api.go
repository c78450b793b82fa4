package images

import "time"

// The native API's request and response bodies (POST /v1/images/*, JSON,
// SigV4-signed for service "sigil"). The server decodes requests into
// these types and the CLI and the sealing code send them.

// RegisterRequest is the body of POST /v1/images/register, authorized as
// sigil:RegisterImageKey on [ResourceARN] of the repository.
type RegisterRequest struct {
	// Digest is the sealed image's digest, "sha256:" + 64 lower-case hex.
	Digest string `json:"digest"`
	// Repository is the image's repository, e.g.
	// registry.example.com/team/app.
	Repository string `json:"repository"`
	// RoleARN is the role the bootstrap file names; it must exist.
	RoleARN string `json:"roleArn"`
	// PublicKey is the base64 (standard) of the 32-byte Ed25519 public key.
	PublicKey string `json:"publicKey"`
	// TTLSeconds is the key's lifetime; 0 means no expiry.
	TTLSeconds int64 `json:"ttlSeconds"`
	// Reseal replaces the digest's active key (which stops working) instead
	// of failing with ErrDigestExists.
	Reseal bool `json:"reseal"`
}

// RegisterResponse answers POST /v1/images/register.
type RegisterResponse struct {
	KeyID      string     `json:"keyId"`
	Digest     string     `json:"digest"`
	Repository string     `json:"repository"`
	RoleARN    string     `json:"roleArn"`
	Expires    *time.Time `json:"expires,omitempty"`
	// Audience is the aud the image's assertions must carry; Issuer their
	// iss ([Issuer]).
	Audience string `json:"audience"`
	Issuer   string `json:"issuer"`
}

// DeregisterRequest is the body of POST /v1/images/deregister (action
// sigil:RegisterImageKey): it removes a key registered by mistake, e.g.
// when writing the sealed image failed.
type DeregisterRequest struct {
	KeyID string `json:"keyId"`
}

// ListResponse answers POST /v1/images/list (action sigil:ListImages on
// "*"): every registered key, newest first.
type ListResponse struct {
	Images []ImageInfo `json:"images"`
}

// ImageInfo describes one registered key and its image.
type ImageInfo struct {
	Digest     string     `json:"digest"`
	Repository string     `json:"repository"`
	RoleARN    string     `json:"roleArn"`
	KeyID      string     `json:"keyId"`
	Created    time.Time  `json:"created"`
	CreatedBy  string     `json:"createdBy"`
	Expires    *time.Time `json:"expires,omitempty"`
	LastUsed   *time.Time `json:"lastUsed,omitempty"`
	Exchanges  int64      `json:"exchanges"`
	// Revoked is true when the digest was revoked or a reseal replaced
	// the key; RevokedAt and Reason say when and why.
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
	Reason    string     `json:"reason,omitempty"`
}

// RevokeRequest is the body of POST /v1/images/revoke, authorized as
// sigil:RevokeImage on [ResourceARN] of the digest's repository.
type RevokeRequest struct {
	Digest string `json:"digest"`
	Reason string `json:"reason,omitempty"`
}

// RevokeResponse answers POST /v1/images/revoke.
type RevokeResponse struct {
	Digest    string    `json:"digest"`
	RevokedAt time.Time `json:"revokedAt"`
}

// ResourceARN is the resource the image actions are authorized on:
// arn:aws:sigil:REGION:ACCOUNT:image/REPOSITORY.
func ResourceARN(region, account, repository string) string {
	return "arn:aws:sigil:" + region + ":" + account + ":image/" + repository
}
