// Package testutil starts the real dependencies sigil's tests need: a
// temporary PostgreSQL server from the installed binaries, a temporary
// MariaDB server, and a test OIDC issuer. The in-process sigil server is in
// the subpackage testserver, so that the packages the server is built from
// can use these helpers in their own tests.
//
// Everything started here is torn down in t.Cleanup.
package testutil
