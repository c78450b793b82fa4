package sts_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	stssdk "github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/barrier"
	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/store/bolt"
	"sigil.dev/sigil/internal/sts"
	"sigil.dev/sigil/internal/testutil"
)

// session assumes the application role and returns its credentials.
func (sc *scenario) session(t testing.TB) *ststypes.Credentials {
	t.Helper()
	out, err := sc.assume(t, sc.appToken())
	mustNoErr(t, err)
	return out.Credentials
}

// readSecret reads the application secret with creds, returning the error.
func (sc *scenario) readSecret(creds aws.Config) error {
	_, err := sc.h.secretsClient(creds).GetSecretValue(context.Background(),
		&secretsmanager.GetSecretValueInput{SecretId: aws.String(appSecret)})
	return err
}

func (sc *scenario) callerIdentity(creds aws.Config) error {
	_, err := sc.h.stsClient(creds).GetCallerIdentity(context.Background(), &stssdk.GetCallerIdentityInput{})
	return err
}

func TestSessionCredentialsRefused(t *testing.T) {
	sc := newScenario(t)
	c := sc.session(t)
	id, secret, token := aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)
	other := sc.session(t)

	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name              string
		id, secret, token string
		query, json       string // wanted codes from STS and Secrets Manager
	}{
		{"tampered token (first byte)", id, secret, flip(token, 0), "InvalidClientTokenId", "UnrecognizedClientException"},
		{"tampered token (middle)", id, secret, flip(token, len(token)/2), "InvalidClientTokenId", "UnrecognizedClientException"},
		{"tampered token (last byte)", id, secret, flip(token, len(token)-1), "InvalidClientTokenId", "UnrecognizedClientException"},
		{"truncated token", id, secret, token[:len(token)-4], "InvalidClientTokenId", "UnrecognizedClientException"},
		{"temporary key without its session token", id, secret, "", "InvalidClientTokenId", "UnrecognizedClientException"},
		{"another session's token", id, secret, aws.ToString(other.SessionToken), "InvalidClientTokenId", "UnrecognizedClientException"},
		{"wrong secret", id, aws.ToString(other.SecretAccessKey), token, "SignatureDoesNotMatch", "InvalidSignatureException"},
		{"session token with a long-term key", sc.h.rootID, sc.h.rootSecret, token, "InvalidClientTokenId", "UnrecognizedClientException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sc.h.awsConfig(tt.id, tt.secret, tt.token)
			wantCode(t, sc.callerIdentity(cfg), tt.query)
			wantCode(t, sc.readSecret(cfg), tt.json)
		})
	}
	// The untouched credentials still work, and nothing secret was logged.
	mustNoErr(t, sc.readSecret(sc.sessionConfig(c)))
	if logs := sc.h.logs.String(); strings.Contains(logs, token) || strings.Contains(logs, secret) {
		t.Error("the server log contains a session token or secret")
	}
}

func TestSessionExpires(t *testing.T) {
	sc := newScenario(t)
	out, err := sc.assume(t, sc.appToken(), func(in *stssdk.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(900) })
	mustNoErr(t, err)
	cfg := sc.sessionConfig(out.Credentials)
	mustNoErr(t, sc.readSecret(cfg))
	sc.h.clock.Advance(14 * time.Minute)
	mustNoErr(t, sc.readSecret(cfg))
	sc.h.clock.Advance(time.Minute + time.Second)
	wantCode(t, sc.callerIdentity(cfg), "ExpiredToken")
	wantCode(t, sc.readSecret(cfg), "ExpiredTokenException")
}

func TestRevocationReachesEveryReplica(t *testing.T) {
	sc := newScenario(t)
	h := sc.h
	ctx := context.Background()
	replica := h.newSTS() // a second replica over the same store
	const deadline = time.Second

	c := sc.session(t)
	id, token := aws.ToString(c.AccessKeyId), aws.ToString(c.SessionToken)
	p, err := replica.Principal(ctx, id, token)
	mustNoErr(t, err)

	t.Run("one session", func(t *testing.T) {
		keep := sc.session(t)
		mustNoErr(t, h.sts.RevokeSession(ctx, p.Session.ID))
		// The revoking replica refuses at once.
		if _, err := h.sts.Principal(ctx, id, token); !errors.Is(err, sts.ErrRevokedSession) {
			t.Fatalf("revoking replica: %v, want ErrRevokedSession", err)
		}
		wantCode(t, sc.readSecret(sc.sessionConfig(c)), "UnrecognizedClientException")
		testutil.WaitFor(t, deadline, func() bool {
			_, err := replica.Principal(ctx, id, token)
			return errors.Is(err, sts.ErrRevokedSession)
		})
		if _, err := replica.Principal(ctx, aws.ToString(keep.AccessKeyId), aws.ToString(keep.SessionToken)); err != nil {
			t.Fatalf("another session of the role was revoked too: %v", err)
		}
	})

	t.Run("role sessions issued before", func(t *testing.T) {
		before := sc.session(t)
		cut := h.clock.Now()
		mustNoErr(t, replica.RevokeRoleSessions(ctx, sc.roleARN, cut))
		after := sc.session(t)
		testutil.WaitFor(t, deadline, func() bool {
			_, err := h.sts.Principal(ctx, aws.ToString(before.AccessKeyId), aws.ToString(before.SessionToken))
			return errors.Is(err, sts.ErrRevokedSession)
		})
		wantCode(t, sc.callerIdentity(sc.sessionConfig(before)), "InvalidClientTokenId")
		mustNoErr(t, sc.readSecret(sc.sessionConfig(after)))
		// An earlier cut-off does not shorten the revocation.
		mustNoErr(t, replica.RevokeRoleSessions(ctx, sc.roleARN, cut.Add(-time.Hour)))
		wantCode(t, sc.callerIdentity(sc.sessionConfig(before)), "InvalidClientTokenId")
	})

	t.Run("bad arguments", func(t *testing.T) {
		for _, err := range []error{
			h.sts.RevokeSession(ctx, "not-a-session"),
			h.sts.RevokeRoleSessions(ctx, "arn:aws:iam::999999999999:role/x", time.Now()),
			h.sts.RevokeRoleSessions(ctx, "arn:aws:iam::"+testAccount+":user/x", time.Now()),
			h.sts.RevokeRoleSessions(ctx, sc.roleARN, time.Time{}),
		} {
			if !errors.Is(err, sts.ErrInvalidRevocation) {
				t.Errorf("got %v, want ErrInvalidRevocation", err)
			}
		}
	})
}

func TestKeyRotationKeepsOldSessions(t *testing.T) {
	sc := newScenario(t)
	h := sc.h
	ctx := context.Background()
	replica := h.newSTS()
	old := sc.session(t)
	kid, err := h.sts.RotateKey(ctx)
	mustNoErr(t, err)
	if kid != 2 {
		t.Fatalf("rotated to key %d, want 2", kid)
	}
	fresh := sc.session(t)
	if aws.ToString(fresh.AccessKeyId)[4:6] == aws.ToString(old.AccessKeyId)[4:6] {
		t.Errorf("new session %s names the old key like %s", aws.ToString(fresh.AccessKeyId), aws.ToString(old.AccessKeyId))
	}
	mustNoErr(t, sc.readSecret(sc.sessionConfig(old)))
	mustNoErr(t, sc.readSecret(sc.sessionConfig(fresh)))
	// The other replica learns the new key from the store.
	testutil.WaitFor(t, time.Second, func() bool {
		_, err := replica.Principal(ctx, aws.ToString(fresh.AccessKeyId), aws.ToString(fresh.SessionToken))
		return err == nil
	})
}

func TestReplicasShareTheSessionKey(t *testing.T) {
	sc := newScenario(t)
	ctx := context.Background()
	replica := sc.h.newSTS()
	c := sc.session(t)
	p, err := replica.Principal(ctx, aws.ToString(c.AccessKeyId), aws.ToString(c.SessionToken))
	mustNoErr(t, err)
	secret, err := replica.SecretKey(ctx, aws.ToString(c.AccessKeyId))
	mustNoErr(t, err)
	if secret != aws.ToString(c.SecretAccessKey) {
		t.Error("the replica derives another secret for the session")
	}
	if p.Session.RoleARN != sc.roleARN || p.Session.Name != "my-app-session" || p.Session.FederatedProvider != sc.providerARN {
		t.Errorf("replica's principal: %+v", p.Session)
	}
	if _, err := replica.SecretKey(ctx, "ASIA!!!!!!!!!!!!!!!!"); err == nil {
		t.Error("a malformed session key id has a secret")
	}
}

func TestAuditFailureWithholdsCredentials(t *testing.T) {
	sc := newScenario(t)
	sc.h.audit.fail.Store(true)
	_, err := sc.assume(t, sc.appToken())
	wantCode(t, err, "ServiceUnavailable")
}

func TestAuthErrorMapping(t *testing.T) {
	tests := []struct {
		err         error
		query, json string
	}{
		{sts.ErrExpiredSessionToken, "ExpiredToken", "ExpiredTokenException"},
		{sts.ErrInvalidSessionToken, "InvalidClientTokenId", "UnrecognizedClientException"},
		{sts.ErrRevokedSession, "InvalidClientTokenId", "UnrecognizedClientException"},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			if got := sts.AuthError(tt.err, awsproto.ProtocolQuery); got == nil || got.Code != tt.query {
				t.Errorf("query: %v, want %s", got, tt.query)
			}
			if got := sts.AuthError(tt.err, awsproto.ProtocolJSON); got == nil || got.Code != tt.json {
				t.Errorf("json: %v, want %s", got, tt.json)
			}
		})
	}
	if sts.AuthError(errors.New("store down"), awsproto.ProtocolQuery) != nil {
		t.Error("an unrelated error was mapped")
	}
}

func TestWebIdentityRoleProvider(t *testing.T) {
	sc := newScenario(t)
	path := filepath.Join(t.TempDir(), "token")
	mustNoErr(t, os.WriteFile(path, []byte(sc.appToken()), 0o600))
	client := stssdk.New(stssdk.Options{Region: testRegion, BaseEndpoint: aws.String(sc.h.srv.URL)})
	provider := stscreds.NewWebIdentityRoleProvider(client, sc.roleARN, stscreds.IdentityTokenFile(path))
	creds, err := provider.Retrieve(context.Background())
	mustNoErr(t, err)
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" || !creds.CanExpire {
		t.Fatalf("provider returned %s (expires %v)", creds.AccessKeyID, creds.Expires)
	}
	cfg := sc.h.awsConfig("", "", "")
	cfg.Credentials = aws.NewCredentialsCache(provider)
	mustNoErr(t, sc.readSecret(cfg))
}

func TestWebIdentityFromEnvironment(t *testing.T) {
	sc := newScenario(t)
	path := filepath.Join(t.TempDir(), "token")
	mustNoErr(t, os.WriteFile(path, []byte(sc.appToken()), 0o600))
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ROLE_ARN":                sc.roleARN,
		"AWS_WEB_IDENTITY_TOKEN_FILE": path,
		"AWS_ROLE_SESSION_NAME":       "from-env",
		"AWS_ENDPOINT_URL":            sc.h.srv.URL,
		// The SDK builds the web-identity STS client before it applies
		// AWS_ENDPOINT_URL; the service-specific variable reaches it.
		"AWS_ENDPOINT_URL_STS":        sc.h.srv.URL,
		"AWS_REGION":                  testRegion,
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_ACCESS_KEY_ID":           "",
		"AWS_SECRET_ACCESS_KEY":       "",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
	} {
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	mustNoErr(t, err)
	creds, err := cfg.Credentials.Retrieve(context.Background())
	mustNoErr(t, err)
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") {
		t.Fatalf("credentials %s are not session credentials", creds.AccessKeyID)
	}
	out, err := stssdk.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &stssdk.GetCallerIdentityInput{})
	mustNoErr(t, err)
	if want := "arn:aws:sts::" + testAccount + ":assumed-role/" + appRole + "/from-env"; aws.ToString(out.Arn) != want {
		t.Errorf("caller %s, want %s", aws.ToString(out.Arn), want)
	}
	mustNoErr(t, sc.readSecret(cfg))
}

func TestRevocationsAreCollected(t *testing.T) {
	sc := newScenario(t)
	h := sc.h
	ctx := context.Background()
	c := sc.session(t)
	p, err := h.sts.Principal(ctx, aws.ToString(c.AccessKeyId), aws.ToString(c.SessionToken))
	mustNoErr(t, err)
	mustNoErr(t, h.sts.RevokeSession(ctx, p.Session.ID))
	mustNoErr(t, h.sts.RevokeRoleSessions(ctx, sc.roleARN, h.clock.Now()))
	stored := func() int {
		ents, _, err := h.store.List(ctx, "sts/revoked/", "", 0)
		mustNoErr(t, err)
		return len(ents)
	}
	if n := stored(); n != 2 {
		t.Fatalf("%d revocations stored, want 2", n)
	}
	// Once every session they could apply to has expired, Run drops them.
	h.clock.Advance(13 * time.Hour)
	testutil.WaitFor(t, 5*time.Second, func() bool { return stored() == 0 })
	// A session issued now is unaffected, and revoking still works.
	fresh := sc.session(t)
	mustNoErr(t, sc.readSecret(sc.sessionConfig(fresh)))
}

func TestReplicasCreatingTheKeyringAgree(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "sigil.db"), bolt.Options{})
	mustNoErr(t, err)
	b := barrier.New(db, barrier.Options{})
	mustNoErr(t, b.Initialize(ctx, make([]byte, 32)))
	t.Cleanup(func() { _ = b.Close() })
	ents, err := iam.NewEntities(iam.EntitiesConfig{Store: b, AccountID: testAccount, Keys: authn.NewKeys(b, nil)})
	mustNoErr(t, err)

	const replicas = 4
	svcs := make([]*sts.Service, replicas)
	errs := make(chan error, replicas)
	start := make(chan struct{})
	for i := range svcs {
		go func() {
			<-start
			var err error
			svcs[i], err = sts.New(ctx, sts.Config{Store: b, Entities: ents, Federation: federation.NewVerifier(federation.Options{}),
				Authorizer: iam.RootOnly{}, Audit: audit.Discard{}, AccountID: testAccount, Region: testRegion})
			errs <- err
		}()
	}
	close(start)
	for range svcs {
		mustNoErr(t, <-errs)
	}
	const id = "ASIAABQRSTUVWXYZ2345"
	want, err := svcs[0].SecretKey(ctx, id)
	mustNoErr(t, err)
	for i, s := range svcs[1:] {
		if got, err := s.SecretKey(ctx, id); err != nil || got != want {
			t.Errorf("replica %d derives another secret (%v)", i+1, err)
		}
	}
	// The key material is stored behind the barrier only.
	raw, err := db.Get(ctx, "sts/keyring")
	mustNoErr(t, err)
	if strings.Contains(string(raw.Value), `"keys"`) || strings.Contains(string(raw.Value), `"current"`) {
		t.Error("the session keyring is stored in plaintext")
	}
}
