package apply

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"sigil.dev/sigil/internal/dynamic"
	"sigil.dev/sigil/internal/server"
)

// Planning databases and dynamic secrets, through sigil's native API
// (Clients.Native) and, for a dynamic secret's description, tags and
// deletion state, Secrets Manager's DescribeSecret.
//
// A database's password is write-only: the server never returns it, so it
// cannot be compared. It is sent when the database is registered; later
// only with Options.UpdateValues, and then on every run (the plan says
// so), except after sigil db rotate-root, when the file's password no
// longer works and is never sent again. A password never appears in a
// Change, a step, a message or an error.

// Notes about database passwords.
const (
	notePasswordLeft      = "password: left as is (write-only; pass --update-values to write it)"
	notePasswordUnmanaged = "password: not managed (no passwordFile or passwordEnv)"
)

// databaseARN is the ARN the server authorizes calls about database name
// on.
func (pl *planner) databaseARN(name string) string {
	return "arn:aws:sigil:" + pl.vars.region + ":" + pl.vars.account + ":database/" + name
}

// databaseRecord is d as the server stores and returns it (without the
// password): placeholders expanded, defaults filled in.
func (pl *planner) databaseRecord(d Database) dynamic.Database {
	db := dynamic.Database{
		Name: d.Name, Engine: d.Engine, Host: pl.vars.expand(d.Host), Port: d.Port,
		DBName: pl.vars.expand(d.DBName), Username: pl.vars.expand(d.Username),
		TLS:      dynamic.TLS{Mode: d.TLS.Mode, CACert: d.TLS.CACert, ServerName: pl.vars.expand(d.TLS.ServerName)},
		MaxConns: d.MaxConns,
	}
	if db.Port == 0 {
		db.Port = 5432
		if db.Engine == dynamic.EngineMySQL {
			db.Port = 3306
		}
	}
	if db.TLS.Mode == "" {
		db.TLS.Mode = dynamic.TLSVerifyFull
	}
	return db
}

// databaseChanges lists the settings in which have differs from want.
func databaseChanges(have, want dynamic.Database) []string {
	var fields []string
	for _, f := range []struct {
		name       string
		have, want string
	}{
		{"host", have.Host, want.Host},
		{"port", strconv.Itoa(have.Port), strconv.Itoa(want.Port)},
		{"dbname", have.DBName, want.DBName},
		{"username", have.Username, want.Username},
		{"tls mode", have.TLS.Mode, want.TLS.Mode},
		{"tls CA certificates", have.TLS.CACert, want.TLS.CACert},
		{"tls server name", have.TLS.ServerName, want.TLS.ServerName},
		{"max connections", strconv.Itoa(have.MaxConns), strconv.Itoa(want.MaxConns)},
	} {
		if f.have != f.want {
			fields = append(fields, f.name)
		}
	}
	return fields
}

func (pl *planner) database(ctx context.Context, d Database) error {
	want := pl.databaseRecord(d)
	ch := Change{Kind: KindDatabase, Name: d.Name, ARN: pl.databaseARN(d.Name), Line: d.Line}
	var have dynamic.Database
	err := pl.c.Native(ctx, "/v1/databases/get", server.NameRequest{Name: d.Name}, &have)
	if isNativeNotFound(err) {
		if d.Password == nil {
			pl.conflict(KindDatabase, d.Name, d.Line, "it is not registered, and the file gives no passwordFile or passwordEnv to register it with")
			return nil
		}
		ch.Notes = append(ch.Notes, "password from "+d.PasswordSource)
		pl.add(ch, true, []step{putDatabaseStep("register database", want, d.Password)})
		return nil
	}
	if err != nil {
		return readError(KindDatabase, d.Name, "databases/get", err)
	}
	if have.Engine != want.Engine {
		pl.conflict(KindDatabase, d.Name, d.Line, "it is registered as %s, and an engine cannot change; delete the registration first (sigil db delete)", have.Engine)
		return nil
	}
	fields := databaseChanges(have, want)
	var password *Value
	switch {
	case d.Password == nil:
		ch.Notes = append(ch.Notes, notePasswordUnmanaged)
	case !pl.opts.UpdateValues:
		ch.Notes = append(ch.Notes, notePasswordLeft)
	case !have.RootRotated.IsZero():
		ch.Notes = append(ch.Notes, "password: left as is: sigil rotated it at "+have.RootRotated.UTC().Format(time.RFC3339)+
			", so the file's password no longer works (register it again with sigil db put to take it back)")
	default:
		password = d.Password
		fields = append(fields, "password from "+d.PasswordSource+" (write-only, so written on every --update-values run)")
	}
	var steps []step
	if len(fields) > 0 {
		steps = append(steps, putDatabaseStep("update "+joinAnd(fields), want, password))
	}
	pl.add(ch, false, steps)
	return nil
}

// putDatabaseStep registers db, with password when it is not nil (an
// existing registration keeps its stored password otherwise).
func putDatabaseStep(desc string, db dynamic.Database, password *Value) step {
	return step{desc: desc, run: func(ctx context.Context, rs *runState) (*undo, error) {
		req := server.DatabaseRequest{Database: db}
		if password != nil {
			req.Password = string(password.b)
		}
		return nil, rs.c.Native(ctx, "/v1/databases/put", req, nil)
	}}
}

// dynamicRequest is s as the native API takes it.
func (pl *planner) dynamicRequest(s DynamicSecret) server.DynamicSecretRequest {
	req := server.DynamicSecretRequest{
		Name: s.Name, Description: pl.vars.expand(s.Description), Tags: pl.vars.expandTags(s.Tags), Database: s.Database,
		CreationStatements: s.CreationStatements, RenewStatements: s.RenewStatements, RevocationStatements: s.RevocationStatements,
		DefaultTTL: s.DefaultTTL.String(), UsernamePrefix: s.UsernamePrefix, PasswordLength: s.PasswordLength,
	}
	if s.MaxTTL > 0 {
		req.MaxTTL = s.MaxTTL.String()
	}
	return req
}

// dynamicChanges lists what differs between the server's configuration
// and s; maxTTL is the file's or, when it gives none, the default TTL.
func dynamicChanges(have server.DynamicSecretResponse, s DynamicSecret) []string {
	haveTTL, _ := time.ParseDuration(have.DefaultTTL)
	haveMax, _ := time.ParseDuration(have.MaxTTL)
	wantMax := s.MaxTTL
	if wantMax == 0 {
		wantMax = s.DefaultTTL
	}
	var fields []string
	add := func(changed bool, name string) {
		if changed {
			fields = append(fields, name)
		}
	}
	add(have.Database != s.Database, "database")
	add(haveTTL != s.DefaultTTL, "default ttl")
	add(haveMax != wantMax, "max ttl")
	add(!slices.Equal(have.CreationStatements, s.CreationStatements), "creation statements")
	add(!slices.Equal(have.RenewStatements, s.RenewStatements), "renew statements")
	add(!slices.Equal(have.RevocationStatements, s.RevocationStatements), "revocation statements")
	add(have.UsernamePrefix != s.UsernamePrefix, "username prefix")
	add(have.PasswordLength != s.PasswordLength, "password length")
	return fields
}

func (pl *planner) dynamicSecret(ctx context.Context, s DynamicSecret) error {
	req := pl.dynamicRequest(s)
	ch := Change{Kind: KindDynamicSecret, Name: s.Name, Line: s.Line}
	got, err := pl.c.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.Name)})
	if isSecretNotFound(err) {
		ch.Notes = append(ch.Notes, "database "+s.Database)
		pl.add(ch, true, []step{putDynamicStep("create dynamic secret", req)})
		return nil
	}
	if err != nil {
		return readError(KindDynamicSecret, s.Name, "DescribeSecret", err)
	}
	arn := aws.ToString(got.ARN)
	ch.ARN = arn
	pl.secretARNs[s.Name] = arn
	if got.DeletedDate != nil {
		pl.conflict(KindDynamicSecret, s.Name, s.Line, "it is scheduled for deletion; restore it (RestoreSecret) or wait until it is purged")
		return nil
	}
	var have server.DynamicSecretResponse
	err = pl.c.Native(ctx, "/v1/dynamic-secrets/get", server.NameRequest{Name: s.Name}, &have)
	if isNativeNotFound(err) {
		pl.conflict(KindDynamicSecret, s.Name, s.Line, "a static secret has this name; delete it first or choose another name")
		return nil
	}
	if err != nil {
		return readError(KindDynamicSecret, s.Name, "dynamic-secrets/get", err)
	}
	fields := dynamicChanges(have, s)
	if aws.ToString(got.Description) != req.Description {
		fields = append(fields, "description")
	}
	if haveTags := fromSMTags(got.Tags); !haveTags.equal(req.Tags) {
		fields = append(fields, describeTagChange(haveTags, req.Tags))
	}
	var steps []step
	if len(fields) > 0 {
		steps = append(steps, putDynamicStep("update "+joinAnd(fields), req))
	}
	pl.add(ch, false, steps)
	return nil
}

// putDynamicStep creates or updates a dynamic secret in one call, which
// sets its configuration, description and tags together, and records its
// ARN for {{secretArn:NAME}} in the secrets after it.
func putDynamicStep(desc string, req server.DynamicSecretRequest) step {
	return step{desc: desc, run: func(ctx context.Context, rs *runState) (*undo, error) {
		var resp server.DynamicSecretResponse
		if err := rs.c.Native(ctx, "/v1/dynamic-secrets/put", req, &resp); err != nil {
			return nil, err
		}
		if resp.ARN == "" {
			return nil, fmt.Errorf("the server's answer names no ARN for dynamic secret %q", req.Name)
		}
		rs.secretARNs[req.Name] = resp.ARN
		return nil, nil
	}}
}
