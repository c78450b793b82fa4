// Package federation verifies web-identity tokens: OpenID Connect ID tokens
// and Kubernetes service-account tokens, signed by a registered identity
// provider, as STS's AssumeRoleWithWebIdentity receives them. It turns a
// token into an [Identity] whose [Identity.ConditionContext] feeds the
// role's trust policy. It does not decide anything about roles; package sts
// does, on top of it.
//
// # Use
//
// Build one [Verifier] at start-up and, for every request, pick the
// provider by the token's (unverified) issuer and verify against it:
//
//	v := federation.NewVerifier(federation.Options{Now: clock, Logger: log})
//	...
//	iss, err := federation.IssuerOf(token)     // for the lookup only
//	p, ok := providers[iss]                    // package iam's registry
//	if !ok { /* ErrUnknownProvider */ }
//	id, err := v.Verify(ctx, p, token)
//	keys := id.ConditionContext()              // "<host/path>:sub", ":aud", "sigil:k8s/..."
//
// A [Provider] is what IAM's OpenIDConnectProvider holds (URL, client IDs,
// thumbprints) plus sigil's extras: a CA bundle, a static JWKS for clusters
// whose issuer sigil cannot reach, and AllowHTTP for labs.
//
// # Keys
//
// Keys come from OpenID Connect discovery: GET
// <issuer>/.well-known/openid-configuration, whose issuer must equal the
// provider URL exactly, then its jwks_uri. Both must be https (plain http
// only with [Provider.AllowHTTP] on a verifier with
// [Options.AllowInsecureHTTP]). Responses are limited to MaxResponseSize,
// requests to 5 seconds, redirects are not followed and no proxy is used.
//
// The keys are cached per provider. A token whose kid is unknown makes the
// verifier fetch them again, at most once per [Options.RefreshInterval] per
// provider, however many verifications are waiting: concurrent callers
// share one fetch. After a failed fetch, none starts for the same interval. Keys older than [Options.KeyTTL] are fetched again on
// next use; if that fails, the old keys stay in use until a fetch succeeds.
// A provider with a static JWKS is never contacted.
//
// # TLS trust
//
// As in IAM: a provider's server is trusted when its certificate chain
// verifies, for the URL's host, against the system roots
// ([Options.RootCAs]) or the provider's CA bundle. Otherwise it is trusted
// only through [Provider.Thumbprints]: some certificate in the chain the
// server sends must have a listed SHA-1 thumbprint, and the server's own
// certificate must chain, for the host, to that certificate. IAM documents
// the thumbprint of the last certificate the server sends (the top
// intermediate CA); sigil accepts a match on any certificate of the sent
// chain, so that also works for a leaf or a self-signed certificate.
// Matching a thumbprint is never enough on its own, since certificates are
// public: the chain check is what ties the pinned certificate to the key
// the server proved it holds. The check runs in the TLS handshake
// (tls.Config.VerifyConnection) on every connection; connections are not
// reused.
//
// # Tokens
//
// Only compact JWS with exactly one signature, algorithms RS256 (RSA of at
// least 2048 bits), ES256 and EdDSA: never "none", never HMAC, whatever the
// JWKS says. The key is chosen by kid among keys of the algorithm's type; a
// kid is required when the JWKS holds more than one key. Then iss must
// equal the provider URL, aud must contain a registered client ID, sub must
// be present, exp must be present and in the future, and nbf and iat must
// not be in the future by more than [Options.Skew]. Tokens over
// MaxTokenSize are refused unread. See [Verifier.Verify].
//
// # Condition keys
//
// For a provider at https://host/path the keys are "host/path:sub" and
// "host/path:aud" (IAM's names). Kubernetes service-account tokens, which
// carry
//
//	"kubernetes.io": {"namespace": "prod",
//	                  "serviceaccount": {"name": "web", "uid": "..."},
//	                  "pod": {"name": "web-5d8f", "uid": "..."}}
//
// add [KeyK8sNamespace], [KeyK8sServiceAccount], [KeyK8sServiceAccountUID],
// [KeyK8sPod] and [KeyK8sPodUID]. Session tags passed in the [TagsClaim]
// claim add "aws:RequestTag/<key>" and "aws:TagKeys". Matching several
// issuers, StringLike on sub and policy size limits are the policy
// engine's business.
//
// # Errors
//
// Every failure is an [*Error] whose Kind is one of the sentinels in
// errors.go, each mapping to one STS error code. Its Message is vague on
// purpose ("The web identity token is invalid.") and is what the client
// sees; Detail and the wrapped cause say exactly which check failed, for
// the server log. Neither ever contains the token.
package federation
