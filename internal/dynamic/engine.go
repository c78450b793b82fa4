package dynamic

import (
	"context"
	"fmt"
	"time"
)

// Creation describes a database user to create.
type Creation struct {
	// Username is the name of the user, usually from the engine's Username
	// method. It is recorded in the lease before Create is called.
	Username string
	// Expires is when the database itself stops accepting the user.
	Expires time.Time
}

// Credential is a database user as handed to a caller.
type Credential struct {
	// Username is the database user.
	Username string
	// Password is the user's password. It must never be logged.
	Password string
	// Expires is when the user stops working.
	Expires time.Time
}

// Engine creates, renews and revokes users in one database. Implementations
// are safe for concurrent use.
type Engine interface {
	// Username returns a new, random username whose readable part is
	// derived from role, within the database's name-length limit.
	Username(role string) (string, error)
	// Create creates the user described by c with a freshly generated
	// password and returns it. On error nothing is left in the database.
	Create(ctx context.Context, c Creation) (Credential, error)
	// Renew moves the user's database-side expiry to expires.
	Renew(ctx context.Context, username string, expires time.Time) error
	// Revoke terminates the user's sessions and removes the user. Revoking a
	// user that does not exist is not an error.
	Revoke(ctx context.Context, username string) error
	// Exists reports whether the user exists in the database.
	Exists(ctx context.Context, username string) (bool, error)
}

// statements are an engine's parsed statement templates.
type statements struct {
	creation, renew, revocation []Template
}

// parseStatements parses an engine's creation, renew and revocation
// statements, each nil list replaced by its default, and refuses
// {{password}} outside the creation statements.
func parseStatements(creation, renew, revocation, defCreation, defRenew, defRevocation []string) (statements, error) {
	var st statements
	var err error
	if st.creation, err = parseAll("creation", creation, defCreation); err != nil {
		return statements{}, err
	}
	if st.renew, err = parseAll("renew", renew, defRenew); err != nil {
		return statements{}, err
	}
	if st.revocation, err = parseAll("revocation", revocation, defRevocation); err != nil {
		return statements{}, err
	}
	for _, t := range append(append([]Template{}, st.renew...), st.revocation...) {
		if t.Uses("password") {
			return statements{}, fmt.Errorf("%w: renew and revocation statements cannot use {{password}}", ErrTemplate)
		}
	}
	return st, nil
}
