package images

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ExchangeOptions adjust [Exchange]. The zero value signs with the
// current time and crypto/rand, carries no Kubernetes token, names the
// session after the key id and uses http.DefaultClient.
type ExchangeOptions struct {
	// Assertion adjusts the signed assertion (clock, randomness, k8s
	// token).
	Assertion AssertionOptions
	// SessionName is the RoleSessionName; empty means "image-" and the
	// key id's base32 part.
	SessionName string
	// Duration is the requested session lifetime; zero lets the server
	// choose (the role's default).
	Duration time.Duration
	// HTTPClient carries the STS call; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Exchange signs a fresh assertion with the bootstrap key and trades it
// for session credentials with an unsigned STS AssumeRoleWithWebIdentity
// call at b.Endpoint. STS errors come back as returned by aws-sdk-go-v2
// (a smithy.APIError such as InvalidIdentityToken or
// ExpiredTokenException).
func Exchange(ctx context.Context, b *Bootstrap, o ExchangeOptions) (aws.Credentials, error) {
	token, err := b.Assertion(o.Assertion)
	if err != nil {
		return aws.Credentials{}, err
	}
	so := sts.Options{
		Region:       b.Region,
		BaseEndpoint: aws.String(b.Endpoint),
		Credentials:  aws.AnonymousCredentials{},
		// Do not retry: each try would need a new assertion (jti).
		RetryMaxAttempts: 1,
	}
	if o.HTTPClient != nil {
		so.HTTPClient = o.HTTPClient
	}
	client := sts.New(so)
	session := o.SessionName
	if session == "" {
		session = "image-" + b.KeyID[len("img-"):]
	}
	in := &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(b.RoleARN), RoleSessionName: aws.String(session), WebIdentityToken: aws.String(token),
	}
	if o.Duration > 0 {
		in.DurationSeconds = aws.Int32(int32(o.Duration / time.Second))
	}
	out, err := client.AssumeRoleWithWebIdentity(ctx, in)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("exchanging the image identity %s for %s at %s: %w", b.KeyID, b.RoleARN, b.Endpoint, err)
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil {
		return aws.Credentials{}, fmt.Errorf("exchanging the image identity %s: STS answered without credentials", b.KeyID)
	}
	creds := aws.Credentials{AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey,
		SessionToken: *c.SessionToken, Source: "sigil:image"}
	if c.Expiration != nil {
		creds.CanExpire, creds.Expires = true, *c.Expiration
	}
	return creds, nil
}
