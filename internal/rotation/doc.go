// Package rotation rotates static secrets with the four-step contract of
// AWS Secrets Manager: createSecret, setSecret, testSecret, finishSecret.
//
// # Pieces
//
// A secret is rotated by the [Rotator] its RotationLambdaARN names,
// arn:aws:lambda:<region>:<account>:function:<name>. The [Registry]
// resolves the function name to
//
//   - a built-in: sigil-postgresql-single-user ([PostgreSQLRotator]) and
//     sigil-mysql-single-user ([MySQLRotator]) for secrets holding AWS's
//     database JSON {"engine","host","port","username","password","dbname"},
//     whose user changes its own password; sigil-random ([RandomRotator])
//     which replaces the whole SecretString with a random password;
//   - or a rotator registered in the store ([Registry.Put]) of type
//     "random" (a JSON member, a password policy) or "webhook" (an HTTPS
//     endpoint that receives each step as the JSON event a rotation Lambda
//     receives, and does the work itself through sigil's Secrets Manager
//     API, as a Lambda does).
//
// The [Runner] drives rotations. One runner across replicas is active, the
// holder of a lock in the store ([store.AcquireLock]); each pass (every
// Interval, and at once after [Runner.Kick]) it asks the secrets service
// for due rotations and, for each, at most Concurrency at a time:
//
//  1. claims it (ClaimRotation), so that no other runner runs it, and
//     records RotationStarted in the audit log;
//  2. runs the four steps through the rotator;
//  3. on success moves AWSCURRENT to the new version (FinishRotation: the
//     old AWSCURRENT becomes AWSPREVIOUS and the next rotation is
//     scheduled) and records RotationSucceeded;
//  4. on failure leaves AWSCURRENT untouched, keeps AWSPENDING, and
//     records the failed step and its cause (FailRotation, shown in
//     DescribeSecret) with a retry after exponential backoff, and records
//     RotationFailed with the cause as errorMessage.
//
// A typical wiring (the registry comes first, since the secrets service
// checks RotationLambdaARNs with it):
//
//	reg, err := rotation.NewRegistry(rotation.RegistryConfig{
//		Store: st, Region: region, AccountID: account,
//	})
//	var run *rotation.Runner
//	svc, err := secrets.New(secrets.Config{ /* ... */
//		Rotators: reg.Check, OnRotate: func() { run.Kick() },
//	})
//	run, err = rotation.New(rotation.Config{
//		Secrets: svc, Store: st, Registry: reg, Audit: auditLog,
//		HolderID: replicaID, AccountID: account, Region: region, Logger: log,
//	})
//	go run.Run(ctx)
//
// # Crash safety
//
// Every step is idempotent and every retry of a rotation uses the same
// ClientRequestToken: createSecret writes AWSPENDING only if that version
// does not exist yet, and setSecret first tries the AWSPENDING password and
// does nothing if it already works. A claim expires (Config.ClaimTTL), so a
// rotation interrupted by a crash is picked up again by whichever runner
// leads next, with the same token, and completes as if it had not been
// interrupted. The runner lock only saves duplicated effort; claims are
// what keep a rotation from running twice at once.
//
// # Webhooks
//
// A webhook request is a POST of {"Step","SecretId","ClientRequestToken"}
// with the header X-Sigil-Signature: t=<unix>,v1=<hex HMAC-SHA256(key,
// t + "." + body)>. Receivers check it with [VerifySignature], which
// compares in constant time and rejects stale timestamps. Any 2xx answer is
// success.
//
// # Security notes
//
// Failure causes are shown in DescribeSecret and the audit log, so no
// rotator may put a secret value in an error: the built-ins scrub the
// passwords they handle from database messages and never quote webhook
// response bodies. Generated passwords come from crypto/rand (unless a
// test injects another source) without characters that break connection
// strings. PostgreSQL passwords are sent to the server as SCRAM-SHA-256
// verifiers computed here, so the plaintext does not reach its statement
// log. Webhook keys live in the store (encrypted by the barrier) and are
// handed out once, by [Registry.Put].
package rotation
