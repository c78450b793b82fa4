// Package sts is sigil's Security Token Service: it exchanges a proof of
// identity for short-lived session credentials, and verifies those
// credentials on every later request without reading the store.
//
// # Actions
//
// STS's query protocol (Version 2011-06-15, form-encoded POST or GET, XML
// responses in STS's schema and error codes):
//
//   - AssumeRoleWithWebIdentity, unsigned: an OIDC or Kubernetes
//     service-account token from a registered provider, checked by package
//     federation and then against the role's trust policy
//     ({"Federated": "arn:aws:iam::ACCOUNT:oidc-provider/<host/path>"} with
//     conditions on "<host/path>:sub", ":aud" and sigil:k8s/*). A token
//     whose iss is "sigil:image" is instead a sealed image's assertion,
//     verified by package images (Config.Images) and trusted as
//     {"Federated": "sigil:image"} with conditions on sigil:ImageDigest,
//     sigil:ImageRepository and sigil:ImageKeyId; its sessions carry the
//     digest and stop working when it is revoked.
//   - AssumeRole, signed by an IAM user or a role session: the trust policy
//     and the caller's own policies, with AWS's same-account rules (see
//     assumerole.go and iam.Grant).
//   - GetCallerIdentity, signed by anyone.
//
// Both assume actions take DurationSeconds (900 to the role's
// MaxSessionDuration, default 3600; at most 3600 when chaining), an inline
// session policy (Policy) and managed ones (PolicyArns), and produce
// session tags (request Tags, the token's tags claim, a chaining caller's
// transitive tags).
//
// # Wiring
//
// The HTTP server builds one Service with New, runs Service.Run in the
// background, and for every query-protocol request with Version
// 2011-06-15:
//
//	vals, err := awsproto.ParseQuery(body, r)
//	var p *authn.Principal
//	if !svc.Unsigned(vals.Action()) {
//		res, err := verifier.Verify(ctx, r, body) // sigv4, with sts.Credentials{Sessions: svc, Keys: ...}
//		p, err = svc.Resolve(ctx, res, keys)     // errors: sts.AuthError, then awsproto.AuthError
//	}
//	resp, err := svc.Handle(ctx, &sts.Call{Action: vals.Action(), Form: vals, Principal: p,
//		SessionToken: res.SessionToken, ...})
//	awsproto.WriteQueryResult(w, awsproto.STSNamespace, vals.Action(), requestID, resp)
//
// Every other API authenticates the same way: sts.Credentials answers
// SigV4's secret lookup for session access keys (ASIA...) and Resolve
// verifies the session token.
//
// # Session credentials
//
// An access key id is "ASIA", two characters naming the session key that
// issued it, and fourteen random ones. Its secret is derived from the id
// with HMAC under that key, so SigV4 verification needs no lookup. The
// session token is the sealed claim set (XChaCha20-Poly1305, the access key
// id as additional data; format in token.go): role, session name, tags,
// source identity, issue and expiry times, session id, session policies,
// the federated provider and token claims for audit, an image digest, and
// the key id. Principal opens it, checks expiry and the in-memory
// revocations, and returns the session's authn.Principal.
//
// The session keys live in the store (behind the barrier), created once
// with compare-and-swap so that all replicas use the same ones; RotateKey
// adds a key, and old keys stay until their sessions have expired.
// Revocations (RevokeRoleSessions, RevokeSession) are records in the store
// that Run mirrors into memory every PollInterval, so every replica
// enforces them within a second.
//
// # Security notes
//
// Refusals are vague to the client (InvalidIdentityToken, AccessDenied,
// InvalidClientTokenId) and precise in the server log, which never
// receives a token, a secret or key material. Every call is audited; a
// call that would issue credentials fails if its audit event cannot be
// recorded. A session never outgrows what it was issued with: its
// policies are the role's current ones intersected with its session
// policies, and a session policy that can no longer be resolved denies
// everything (iam.Engine).
package sts
