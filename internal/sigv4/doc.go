// Package sigv4 verifies AWS Signature Version 4 on incoming requests, the
// only way into sigil. It knows the signing algorithm and nothing about who
// an access key belongs to: a [Credentials] (package authn) turns an access
// key id into its secret, and the [Result] says which key signed, with what
// session token, for which region and service.
//
// # Use
//
// Build one [Verifier] at start-up and call [Verifier.Verify] for every
// request, after reading the body under the server's size limit:
//
//	v, err := sigv4.New(sigv4.Options{
//		Region:      "us-east-1",
//		Services:    []string{"secretsmanager", "sts", "iam", "sigil"},
//		Credentials: keys, // implemented by authn
//		Now:         clock,
//	})
//	...
//	res, err := v.Verify(ctx, r, body)
//
// Both forms of SigV4 are accepted: the Authorization header
//
//	Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261204/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature=<hex>
//
// and presigned query parameters (X-Amz-Algorithm, X-Amz-Credential,
// X-Amz-Date, X-Amz-Expires of at most 7 days, X-Amz-SignedHeaders,
// X-Amz-Signature), as the aws CLI and SDKs produce with presign. A request
// with both is refused.
//
// # What is checked
//
//   - The canonical request is rebuilt as the specification defines it. The
//     path is the request target as sent on the wire (r.RequestURI), URI
//     encoded once more ("double encoding", as every service but S3 does).
//     Two path forms are accepted: with empty, "." and ".." segments removed
//     (the specification; botocore and the JavaScript SDK sign this) and as
//     sent (aws-sdk-go-v2 signs this, without normalising). Either way the
//     signature covers the path; a router must treat paths that normalise
//     alike as the same resource (Go's ServeMux redirects unclean paths).
//     S3's single encoding is not supported.
//   - Query parameters are decoded and re-encoded per RFC 3986 with
//     upper-case hex ("+" decodes to a space, as in Go's url.ParseQuery),
//     sorted by encoded name and then value; repeated names and empty values
//     are kept. A malformed percent escape fails.
//   - Headers are named lower-case in SignedHeaders, which must be sorted and
//     contain host, the date header used (x-amz-date, or date when there is
//     no X-Amz-Date), and x-amz-security-token when that header is present.
//     Values are trimmed, runs of spaces collapse to one, repeated headers
//     join with commas in the order received. A signed header that is absent
//     fails, and so does any X-Amz-* header that is present but not signed
//     (every SDK signs them all, and X-Amz-Target selects the operation);
//     only X-Amz-Cf-Id, which CloudFront adds, is exempt. Other unsigned
//     headers (User-Agent, and Content-Type, which some SDKs leave unsigned)
//     are not covered by the signature, so nothing may trust them for
//     authorization.
//   - The payload hash is the SHA-256 of the body. X-Amz-Content-Sha256, when
//     present, must equal it, or be UNSIGNED-PAYLOAD where
//     [Options.AllowUnsignedPayload] allows that.
//   - The credential scope must end in aws4_request, carry the date of
//     X-Amz-Date, the server's region, and one of the configured services.
//   - X-Amz-Date must be within [Options.MaxSkew] (5 minutes) of the
//     injected clock, in both directions. A presigned request is valid from
//     its X-Amz-Date (less the skew) until X-Amz-Date plus X-Amz-Expires.
//   - The signature is compared in constant time (hmac.Equal).
//
// # Errors
//
// Every authentication failure is an [*Error] whose Kind is a sentinel from
// errors.go, whose Message is safe for the client, and whose Debug (the
// server's canonical request and string to sign, the security token
// redacted) is for the server log at debug level only. Any other error is a
// Credentials failure, a server fault. The protocol edge (awsproto) maps the
// kinds; the codes AWS uses are:
//
//	Kind                    JSON 1.1 (secretsmanager)                query (sts, iam)
//	ErrMissingAuth          MissingAuthenticationTokenException 403  MissingAuthenticationToken 403
//	ErrIncompleteSignature  IncompleteSignatureException 400         IncompleteSignature 400
//	ErrSignatureMismatch    InvalidSignatureException 400            SignatureDoesNotMatch 403
//	ErrScope                InvalidSignatureException 400            SignatureDoesNotMatch 403
//	ErrSkewed               InvalidSignatureException 400            SignatureDoesNotMatch 403
//	ErrExpired              InvalidSignatureException 400            AccessDenied 403
//	ErrUnknownAccessKey     UnrecognizedClientException 400          InvalidClientTokenId 403
//
// with Message as the message ("Signature expired: ...", "Credential should
// be scoped to a valid region, not ...", "Request is missing Authentication
// Token", and so on).
//
// # Security notes
//
//   - Replay: SigV4 does not prevent replay. A captured request verifies
//     again, unchanged, for as long as its date is within the skew window
//     (presigned: until it expires), exactly as at AWS. Operations that must
//     not repeat need their own idempotency (Secrets Manager's
//     ClientRequestToken) and TLS keeps requests from being captured.
//   - Derived signing keys are cached per access key id, date, region and
//     service (bounded by [Options.CacheSize]); an entry also records the
//     secret it came from, so a rotated secret never uses a stale key. Keys
//     print as REDACTED and are never logged; neither is the secret, the
//     expected signature, nor the session token (which [Result] redacts in
//     String and LogValue).
//   - With UNSIGNED-PAYLOAD the body is not authenticated; it is refused
//     unless the caller opts in.
//   - Verify never reads r.Body; the caller passes the body it has read.
package sigv4
