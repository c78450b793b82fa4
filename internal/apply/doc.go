// Package apply makes a sigil server match a declarative YAML file, the way
// Terraform or `kubectl apply` do: it is an API client that reads the
// server's state through the IAM and Secrets Manager APIs (the real
// aws-sdk-go-v2 clients) and sigil's native API (NewNative, for databases,
// dynamic secrets and rotators) and makes the calls needed to reach the
// file.
//
// Three calls, each a phase:
//
//	f, err := apply.Parse(r, filepath.Dir(path), os.LookupEnv) // validate; no I/O but value files
//	plan, err := apply.Plan(ctx, clients, f, apply.Options{})  // read the server; change nothing
//	res, err := apply.Apply(ctx, clients, plan)                // make the plan's calls
//
// The file (version 1) lists, by kind, OIDC providers, managed policies,
// roles (trust policy, inline and attached policies, permissions boundary,
// max session duration, path, description, tags), users (the same, without
// a trust policy), databases (engine, host, port, dbname, privileged
// username and password, TLS, connection cap), dynamic secrets (a
// database, default and maximum TTL, creation, renew and revocation
// statements, username prefix, password length, description, tags),
// rotators (a random string or JSON field with a password policy, or an
// HTTP webhook with its URL, timeout and HMAC key) and secrets
// (description, KMS key id, tags, resource policy, initial value,
// rotation). A name is either a secret or a dynamic secret, never both.
// Policy documents are YAML maps (converted to JSON in key order) or
// strings holding JSON. Any string may hold {{account}} and {{region}},
// except a dynamic secret's statements, a random rotator's field and
// excludeCharacters, and a rotation's schedule. Parse reports every
// problem at once with its line: unknown keys, bad names, references to
// managed policies the file does not declare, unreadable value files.
//
// Semantics:
//
//   - Idempotent: Plan compares policies by meaning (canonical JSON), so a
//     second run of the same file plans no change and Apply makes no call.
//   - Dependency order: OIDC providers, managed policies, roles, users,
//     databases, dynamic secrets, rotators, secrets. An attached policy named by name
//     resolves to the ARN of the file's managed policy; a secret's value
//     template may name a dynamic secret's ARN.
//   - For an object in the file, the file is the whole truth: inline
//     policies, attachments and tags it does not list are removed, and an
//     absent description or boundary is cleared.
//   - Objects absent from the file are never deleted (like `kubectl apply`
//     without --prune): removing an entry from the file leaves the object
//     on the server. Delete it with the IAM or Secrets Manager API.
//   - Immutable fields (a role's, user's or policy's path, a managed
//     policy's description, a database's engine), secrets scheduled for
//     deletion, a dynamic secret whose name a static secret holds, and a
//     database to register without a password make Plan fail with
//     ErrConflict before anything is applied.
//   - A managed policy's changed document becomes a new default version;
//     when the policy already has IAM's five versions, the oldest non-default
//     one is deleted first (it stays deleted if creating the new one fails).
//   - Users get no access keys: apply never creates, changes or deletes
//     credentials.
//   - Apply stops at the first failing step. An object being created is
//     rolled back (every call that succeeded is undone, newest first, so the
//     object does not exist afterwards); an object that existed keeps the
//     steps before the failing one, and the error names the failing step.
//     See Apply.
//
// Security notes: a secret's value is read from a file (valueFile, relative
// to the YAML file) or an environment variable (valueEnv), never from the
// YAML itself. It is held in a Value, which prints, logs and marshals as
// REDACTED, and it appears in no Change, Result, message or error. It is
// written only when the secret is created; an existing secret's value is left
// as is unless Options.UpdateValues is set, in which case Plan fetches the
// current value and compares SHA-256 digests with crypto/subtle, writing a
// new version only when they differ. Resource policies are put with
// BlockPublicPolicy, so a policy open to everyone is refused.
//
// A database's password (passwordFile, one trailing newline dropped, or
// passwordEnv) is held in a Value too. The server never returns it, so it
// cannot be compared: it is sent when the database is registered, and
// later only with Options.UpdateValues, which sends it on every run, except
// after the server has rotated it (sigil db rotate-root), when the file's
// password no longer works and is never sent. A dynamic secret's
// statements are sent as written; the server fills in their {{name}},
// {{password}} and {{expiration}} for each user it issues.
//
// Rotation: a secret's rotation block names a rotator (a function name,
// which becomes arn:aws:lambda:{{region}}:{{account}}:function:NAME, or a
// full RotationLambdaARN), a schedule (automaticallyAfterDays, or a
// scheduleExpression rate(...) or cron(...)) and optionally a window
// duration. Plan compares it with DescribeSecret's RotationEnabled,
// RotationLambdaARN and RotationRules and, when they differ or rotation is
// off, makes one RotateSecret call with RotateImmediately as the file says:
// false unless rotateImmediately: true, so applying never rotates a secret
// by itself, and an unchanged file makes no call at all (rotateImmediately
// matters only when the rotation changes). "enabled: false" cancels an
// enabled rotation (CancelRotateSecret). A secret without a rotation block
// keeps whatever rotation the server has. A rotator's webhook key
// (keyFile, base64 text on one line, or keyEnv) is write-only like a
// database password, held in a Value: it is sent when the rotator is
// registered, with every change of its other settings (a put replaces a
// rotator whole, and the server would otherwise generate a new key), and
// on every run with Options.UpdateValues. Apply never has the server
// generate a key, so a webhook rotator needs a key source. Its
// excludeCharacters and field are sent as written, without placeholder
// expansion; its url may hold {{account}} and {{region}}.
package apply
