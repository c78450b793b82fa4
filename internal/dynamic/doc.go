// Package dynamic issues short-lived database users and keeps track of them
// as leases.
//
// Three pieces work together:
//
//   - An [Engine] creates, renews and revokes database users. [PostgresEngine]
//     is the PostgreSQL implementation: it runs creation, renew and revocation
//     statements written as templates with {{name}}, {{password}} and
//     {{expiration}}, which are expanded with proper identifier and literal
//     quoting so that no username or password can change the statement.
//     Every user gets a VALID UNTIL, so PostgreSQL itself refuses an expired
//     user even while sigil is down.
//
//   - [Leases] records every user as a lease in a [store.Store]. The record
//     is written in state creating before the user exists in the database and
//     marked active afterwards, so a crash at any point leaves something the
//     reaper can find. A caller session asking again for the same dynamic
//     secret gets the same user until two thirds of its TTL have passed.
//
//   - [Reaper] revokes expired leases, retrying failures with exponential
//     backoff, and finishes or undoes leases left creating by a crash. Only
//     one reaper is active across replicas: the holder of a lock key in the
//     store, kept alive by renewal and taken over after it expires.
//
// Clocks and randomness are injected; nothing here reads the environment.
//
// Security: passwords are returned to the caller and kept in the lease record
// so that a session can be given the same credential again; the record is
// written through the store, which the barrier encrypts. Passwords never
// appear in errors, logs or [Lease] values.
package dynamic
