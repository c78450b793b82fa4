// Package secrets implements the semantics of AWS Secrets Manager for sigil:
// secrets with immutable versions, staging labels, scheduled deletion, tags
// and resource policies, served over the Secrets Manager JSON 1.1 protocol.
//
// # Using it
//
// Build a [Service] once with [New] and hand every decoded Secrets Manager
// request to [Service.Handle] as a [Call]. The HTTP server in front of it
// authenticates the request (SigV4), picks the operation from X-Amz-Target
// and writes what Handle returns: a response struct for awsproto.WriteJSON, or
// an error. An *awsproto.Error is shown to the client; any other error is an
// internal failure whose cause belongs in the server log only. Call
// [Service.PurgeExpired] periodically to remove secrets whose recovery window
// has ended (access purges them lazily as well).
//
// Every operation runs the same pipeline: decode the JSON body into a typed
// request, validate it (an AWS exception and nothing changed on failure),
// resolve the secret, ask the [Authorizer] with action
// "secretsmanager:<Operation>", the secret's ARN, its stored resource policy
// and the condition context, run the operation in one store transaction, and
// record an audit event. The operations are those of the AWS API reference:
// CreateSecret, GetSecretValue, BatchGetSecretValue, PutSecretValue,
// UpdateSecret, DescribeSecret, ListSecrets, ListSecretVersionIds,
// UpdateSecretVersionStage, DeleteSecret, RestoreSecret, TagResource,
// UntagResource, GetRandomPassword, PutResourcePolicy, GetResourcePolicy,
// DeleteResourcePolicy, ValidateResourcePolicy, ListResourcePolicies,
// RotateSecret and CancelRotateSecret. Replication is not supported.
//
// # Rotation
//
// RotateSecret stores the rotation configuration (RotationLambdaARN and
// RotationRules, parsed by package rotation/schedule) in the secret record
// and schedules the rotation; it never rotates by itself. The rotation
// runner in package rotation does, through a small Go API that acts as the
// service itself (no Authorizer, no audit event of its own: the runner
// records RotationStarted, RotationSucceeded and RotationFailed):
// [Service.DueRotations] lists what is due, [Service.ClaimRotation] lets one
// runner across all replicas take a rotation for a while, [Service.RotationValue]
// and [Service.PutPendingValue] read and write versions for the four steps,
// and [Service.FinishRotation] or [Service.FailRotation] end an attempt.
// Webhook rotators use the ordinary API instead, as Lambdas do.
//
//   - RotateImmediately (true by default) makes the rotation due now, with the
//     ClientRequestToken as the version id of the new AWSPENDING value (a
//     random UUID when absent), and calls Config.OnRotate after the commit so
//     the runner can start at once; false schedules it in the next window
//     (the token is then unused; the runner picks one when it starts). A
//     repeated call with the same token is idempotent; a call with another
//     token while a rotation is pending, or while AWSPENDING is on a version
//     other than AWSCURRENT's, is AWS's InvalidRequestException "A previous
//     rotation isn't complete". A token that names an existing version that
//     is not pending (a finished rotation retried) starts nothing.
//   - RotationRules and RotationLambdaARN may be left out once stored; they
//     replace the stored ones when given. Config.Rotators, when set, checks
//     that a RotationLambdaARN names a rotator sigil has.
//   - A rotation finishes by moving AWSCURRENT to the new version (the old
//     one becomes AWSPREVIOUS), removing AWSPENDING and setting
//     LastRotatedDate; the next one is scheduled from the rules, counted from
//     that rotation for AutomaticallyAfterDays and rate(), at an instant
//     drawn uniformly from its window so that secrets sharing a schedule do
//     not all rotate in the same second. A failure leaves AWSCURRENT and
//     AWSPENDING alone, keeps the token for the retry, and shows in
//     DescribeSecret and ListSecrets as sigil's extra member
//     SigilRotationStatus {Step, Error, Attempts, LastAttempt}.
//   - CancelRotateSecret turns rotation off (RotationEnabled false, no
//     NextRotationDate) and keeps the rules and the rotator; like AWS it
//     leaves AWSPENDING on the version a cancelled rotation created and
//     returns that version's id.
//   - Dynamic secrets are never rotated (InvalidRequestException), nor are
//     secrets scheduled for deletion. A secret scheduled for deletion leaves
//     the schedule index, and RestoreSecret puts it back, so a deleted secret
//     never comes up as due.
//   - PutSecretValue and UpdateSecret do not move the schedule (AWS counts
//     them as rotations for AutomaticallyAfterDays; sigil does not).
//
// # Choices where AWS leaves room
//
//   - Existence is never revealed before authorization. For a secret that does
//     not exist, the Authorizer is asked about the ARN given in SecretId, or,
//     for a name, about the pattern
//     arn:aws:secretsmanager:<region>:<account>:secret:<name>-?????? that
//     every ARN of a secret with that name matches. A caller without
//     permission gets AccessDeniedException either way.
//   - A SecretId such as "arn:...:secret:db-AbCdEf" is first read as the full
//     ARN of a secret named "db" and then as the partial ARN of a secret named
//     "db-AbCdEf". This is the ambiguity AWS documents for names that end in a
//     hyphen and six characters; such names are allowed, and plain names are
//     never treated as partial ARNs.
//   - ListSecrets sorts by creation date, ascending, unless SortBy and
//     SortOrder say otherwise (name, created-date, last-changed-date and
//     last-accessed-date are all supported in both orders, each backed by an
//     index, so a page reads one bounded range of one index). Ascending
//     creation order means a walk over all pages also sees secrets created
//     while it runs. A page scans at most 1,000 index entries, so with
//     selective filters a page may be short or empty yet carry a NextToken, as
//     AWS documents. Secrets whose sort key changes during a walk (a change
//     under last-changed-date) may be seen twice or not at all.
//   - Filter values are OR-ed within a filter and filters are AND-ed. A value
//     starting with "!" matches a secret when no attribute value matches the
//     rest. name, tag-key, tag-value and primary-region are case-sensitive
//     prefix matches and description a case-insensitive one; "all" splits the
//     value into words and matches any word that begins a word of the name,
//     description, tag keys or tag values, ignoring case. owning-service
//     never matches (sigil has no owning services), so "!x" always does.
//   - NextToken values are AES-256-GCM sealed with a key kept in the store
//     (so every replica accepts them) and bound to the operation, the secret
//     and the filters. A token that fails to open, or is used with other
//     filters, is an InvalidNextTokenException.
//   - Versions: a secret keeps every version that has a staging label. When
//     it holds more than 100 versions, the oldest versions without labels that
//     are at least 24 hours old are removed, as AWS documents. AWS does not
//     publish its hard quota; sigil refuses a version beyond 500 with
//     LimitExceededException. A secret carries at most 20 staging labels
//     across all its versions.
//   - A repeated ClientRequestToken with the same value is idempotent for
//     CreateSecret, PutSecretValue and UpdateSecret (the same response, no new
//     version); with a different value it is a ResourceExistsException.
//     UpdateSecret still applies its Description and KmsKeyId changes.
//     ClientRequestToken must be 32-64 printable ASCII characters.
//   - DeleteSecret: DescribeSecret's DeletedDate is the time of the delete
//     request; DeletionDate (returned by DeleteSecret) is that plus the
//     recovery window. A scheduled secret can still be described, listed
//     with IncludePlannedDeletion, restored or force-deleted, and its
//     versions and policy listed or read; reading its value or changing it
//     in any other way is an InvalidRequestException, and its name stays
//     taken until it is purged. Once DeletionDate has passed it is gone: reads treat
//     it as absent and purge it. Force-deleting a secret that does not exist
//     succeeds, as AWS documents. RestoreSecret on a secret that is not
//     scheduled for deletion succeeds and changes nothing.
//   - TagResource and UntagResource re-ask the Authorizer with the tags the
//     secret would have afterwards and refuse a change that would lock the
//     caller out of the action they just used.
//   - LastAccessedDate is kept per secret at day precision, as AWS reports it;
//     the first read of a day writes it (best effort). Versions do not carry
//     their own LastAccessedDate.
//   - Managed external secrets (Type), replication (AddReplicaRegions,
//     CrossAccountPrimaryARN) are refused with InvalidParameterException;
//     RotationToken is accepted and ignored.
//
// # Audit and failing closed
//
// Every call that reaches authorization produces exactly one audit event
// (BatchGetSecretValue one for itself and one per secret it authorizes),
// allowed or denied, with the outcome. The event is recorded before Handle
// returns. If recording fails for a successful call that returns secret
// material or changes state, Handle returns ServiceUnavailable instead of the
// response. For a write, the change has already been committed at that point
// (the event describes a committed change, so it can only be written after
// the commit); the response is withheld, and a retry with the same
// ClientRequestToken is idempotent.
//
// # Storage
//
// The package works over any store.Store; in production that is the barrier,
// which encrypts every value, so this package never encrypts anything itself.
// All keys live under "secrets/" and every record carries a format version
// ("v"):
//
//	secrets/n/<name>                 the secret record: metadata, tags, policy,
//	                                 and the labelled versions with their stages
//	secrets/x/<id>                   the version index: every version id with its
//	                                 creation time, oldest first (reserves <id>)
//	secrets/v/<id>/<version id>      one immutable version value
//	secrets/i/<sort>/<order>/<key>   list indexes (naming the secret) for created,
//	                                 last-changed and last-accessed dates in both
//	                                 orders, and names descending
//	secrets/d/<deletion time>/<name> secrets scheduled for deletion, by date
//	secrets/r/<due time>/<name>      the rotation schedule: secrets whose next
//	                                 rotation (or retry) is scheduled, by due time
//	secrets/g/<id>                   a purge in progress (versions still to remove)
//	secrets/k/token                  the key that seals pagination tokens
//
// <id> is a random identifier fixed when the secret is created, so a secret
// created again under a deleted secret's name shares nothing with it. The
// record is keyed by name, so GetSecretValue by name or ARN reads the record
// (which names the AWSCURRENT version) and the version. Every call reads the
// record from the store; decoded records and versions are cached in memory
// (bounded by Config.CacheBytes and Config.CacheEntries), so a repeated read
// decodes nothing and reads a labelled version without a second Get. The
// caches never change what a read returns: a record is reused only for the
// identical stored bytes, and a version (immutable by design) only while the
// freshly read record still labels it; cache.go explains why. The record
// key is also the uniqueness guard: creation commits only if the name key is
// still absent, so of two concurrent CreateSecret calls for one name exactly
// one wins. Every read-modify-write runs in store.Update.
//
// # Security
//
// Secret values never appear in errors, log lines or audit events: request
// and response types that carry them print as REDACTED, messages name
// secrets and versions but never values, and values are compared with
// crypto/subtle. Random passwords, ARN suffixes and version ids come from
// Config.Rand (crypto/rand by default) with rejection sampling, so there is
// no modulo bias.
package secrets
