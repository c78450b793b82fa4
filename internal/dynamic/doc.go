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
//   - [MySQLEngine] is the MySQL/MariaDB implementation (go-sql-driver/mysql).
//     {{name}} expands to a backtick identifier ({{name}}@'%' is an account)
//     and literals are escaped for the session's sql_mode, including
//     NO_BACKSLASH_ESCAPES. MySQL has no VALID UNTIL, so the default creation
//     statements also create an event, named like the user, that drops the
//     user at its expiry: the database refuses an expired user even while
//     sigil is down. This needs the server's event_scheduler ON (Create
//     refuses to create users otherwise) and a database in the DSN to hold
//     the events. DDL commits statement by statement, so a failed creation
//     is undone by revoking the user. Revocation locks the accounts, KILLs
//     their connections and drops user and event.
//
//   - [Catalog] stores registered databases (connection settings and the
//     privileged login, encrypted by the store's barrier, the password
//     write-only) and the configuration of each dynamic secret, builds each
//     secret's engine and rebuilds it when either record changes, and
//     rotates the privileged password with [Catalog.RotateRoot] so that only
//     sigil knows it. It implements [Roles].
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
