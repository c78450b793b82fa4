package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"sigil.dev/sigil/internal/images"
	"sigil.dev/sigil/internal/testutil"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// imgClock is the real clock plus an adjustable offset.
type imgClock struct{ off atomic.Int64 }

func (c *imgClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *imgClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

const (
	imgRepo        = "registry.example.com/team/app"
	imgSecret      = "app/database"
	imgOtherSecret = "other/api-key"
	imgSecretValue = `{"password":"db-pass-4711"}`
)

// imgEnv is a real server with a role for sealed images, a policy reading
// app/database-* and two secrets.
type imgEnv struct {
	t       *testing.T
	srv     *testserver.Server
	clock   *imgClock
	account string
	roleARN string
}

// imgTrust is a trust policy for {"Federated": "sigil:image"} with the
// given conditions.
func imgTrust(conditions string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"sigil:image"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":` + conditions + `}]}`
}

func newImgEnv(t *testing.T, opts ...testserver.ServerOption) *imgEnv {
	t.Helper()
	e := &imgEnv{t: t, clock: &imgClock{}}
	e.srv = testserver.StartServer(t, append([]testserver.ServerOption{testserver.WithClock(e.clock.Now)}, opts...)...)
	ctx := context.Background()
	id, err := sts.NewFromConfig(e.srv.AWSConfig()).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	mustOK(t, err)
	e.account = aws.ToString(id.Account)
	e.roleARN = e.createRole("app", imgTrust(`{"StringEquals":{"sigil:ImageRepository":"`+imgRepo+`"}}`))
	sm := secretsmanager.NewFromConfig(e.srv.AWSConfig())
	for name, v := range map[string]string{imgSecret: imgSecretValue, imgOtherSecret: "other-value"} {
		_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(v)})
		mustOK(t, err)
	}
	return e
}

// createRole creates a role that may read app/database-*.
func (e *imgEnv) createRole(name, trust string) string {
	e.t.Helper()
	ctx := context.Background()
	ic := iam.NewFromConfig(e.srv.AWSConfig())
	role, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	mustOK(e.t, err)
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue",`+
		`"Resource":"arn:aws:secretsmanager:%s:%s:secret:%s-*"}]}`, e.srv.Config.Region, e.account, imgSecret)
	_, err = ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("read"), PolicyDocument: aws.String(policy)})
	mustOK(e.t, err)
	return aws.ToString(role.Role.Arn)
}

// native calls the /v1/ API signed as root; it returns the status and body.
func (e *imgEnv) native(path string, in any) (int, []byte) {
	e.t.Helper()
	return e.nativeAs(aws.Credentials{AccessKeyID: e.srv.AccessKeyID, SecretAccessKey: e.srv.SecretAccessKey}, path, in)
}

// nativeAs calls the /v1/ API signed with creds.
func (e *imgEnv) nativeAs(creds aws.Credentials, path string, in any) (int, []byte) {
	e.t.Helper()
	body, err := json.Marshal(in)
	mustOK(e.t, err)
	req, err := http.NewRequest("POST", e.srv.URL()+path, bytes.NewReader(body))
	mustOK(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	mustOK(e.t, v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "sigil", e.srv.Config.Region, e.clock.Now()))
	resp, err := http.DefaultClient.Do(req)
	mustOK(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	mustOK(e.t, err)
	return resp.StatusCode, b
}

// wantNative checks a native call's outcome: code "" means success, with
// the body decoded into out.
func (e *imgEnv) wantNative(path string, in, out any, code string) {
	e.t.Helper()
	status, body := e.native(path, in)
	if code == "" {
		if status != http.StatusOK {
			e.t.Fatalf("%s: %d %s", path, status, body)
		}
		if out != nil {
			mustOK(e.t, json.Unmarshal(body, out))
		}
		return
	}
	var ae struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &ae)
	if status == http.StatusOK || !strings.HasSuffix(ae.Type, code) || ae.Message == "" {
		e.t.Fatalf("%s: %d %s, want %s with a message", path, status, body, code)
	}
}

// workload is a sealed image as the workload sees it.
type workload struct {
	seed   []byte
	priv   ed25519.PrivateKey
	keyID  string
	digest string
	aud    string
}

func (e *imgEnv) seal(roleARN string, ttl int64) *workload {
	e.t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	mustOK(e.t, err)
	var d [32]byte
	_, _ = rand.Read(d[:])
	w := &workload{seed: priv.Seed(), priv: priv, digest: "sha256:" + hex.EncodeToString(d[:])}
	var resp images.RegisterResponse
	e.wantNative("/v1/images/register", images.RegisterRequest{Digest: w.digest, Repository: imgRepo, RoleARN: roleARN,
		PublicKey: base64.StdEncoding.EncodeToString(pub), TTLSeconds: ttl}, &resp, "")
	if resp.KeyID != images.KeyIDOf(pub) || resp.Issuer != "sigil:image" || resp.Audience == "" {
		e.t.Fatalf("register answered %+v", resp)
	}
	w.keyID, w.aud = resp.KeyID, resp.Audience
	return w
}

// assertion signs the contract's assertion at now, changed by the options.
func (w *workload) assertion(t *testing.T, now time.Time, change ...func(h, c map[string]any)) string {
	t.Helper()
	var j [16]byte
	_, _ = rand.Read(j[:])
	h := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": w.keyID}
	c := map[string]any{"iss": "sigil:image", "sub": w.keyID, "aud": w.aud, "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "jti": hex.EncodeToString(j[:])}
	for _, f := range change {
		f(h, c)
	}
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(c)
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	return in + "." + enc.EncodeToString(ed25519.Sign(w.priv, []byte(in)))
}

// exchange calls AssumeRoleWithWebIdentity, unsigned, with the SDK.
func (e *imgEnv) exchange(roleARN, token string) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	cfg := e.srv.AWSConfig()
	cfg.Credentials = aws.AnonymousCredentials{}
	return sts.NewFromConfig(cfg).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("image-test"), WebIdentityToken: aws.String(token)})
}

// secretsAs returns a Secrets Manager client with the session's credentials.
func (e *imgEnv) secretsAs(out *sts.AssumeRoleWithWebIdentityOutput) *secretsmanager.Client {
	c := out.Credentials
	return secretsmanager.NewFromConfig(testserver.AWSConfigFor(e.srv.URL(), e.srv.Config.Region,
		aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)))
}

func (e *imgEnv) read(sm *secretsmanager.Client, name string) (string, error) {
	out, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

func wantAPICode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("err = %v, want API error %s", err, code)
	}
}

func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestImageExchangeReadsAllowedSecret(t *testing.T) {
	e := newImgEnv(t)
	w := e.seal(e.roleARN, 0)
	out, err := e.exchange(e.roleARN, w.assertion(t, e.clock.Now()))
	mustOK(t, err)
	if aws.ToString(out.Provider) != "sigil:image" || aws.ToString(out.SubjectFromWebIdentityToken) != w.keyID {
		t.Fatalf("provider %q subject %q", aws.ToString(out.Provider), aws.ToString(out.SubjectFromWebIdentityToken))
	}
	sm := e.secretsAs(out)
	v, err := e.read(sm, imgSecret)
	mustOK(t, err)
	if v != imgSecretValue {
		t.Fatalf("read %q", v)
	}
	_, err = e.read(sm, imgOtherSecret)
	wantAPICode(t, err, "AccessDeniedException")

	var list images.ListResponse
	e.wantNative("/v1/images/list", struct{}{}, &list, "")
	if len(list.Images) != 1 || list.Images[0].Digest != w.digest || list.Images[0].Exchanges != 1 ||
		list.Images[0].CreatedBy != "arn:aws:iam::"+e.account+":root" || list.Images[0].Revoked {
		t.Fatalf("list = %+v", list.Images)
	}
	if !strings.Contains(e.srv.Logs.String(), w.digest) {
		t.Fatal("the registration is not in the server log")
	}
}

func TestImageExchangeRejections(t *testing.T) {
	e := newImgEnv(t)
	w := e.seal(e.roleARN, 0)
	other := e.seal(e.roleARN, 0)
	revoked := e.seal(e.roleARN, 0)
	e.wantNative("/v1/images/revoke", images.RevokeRequest{Digest: revoked.digest, Reason: "test"}, nil, "")
	otherRole := e.createRole("other", imgTrust(`{"StringEquals":{"sigil:ImageRepository":"`+imgRepo+`"}}`))
	pinned := e.createRole("pinned", imgTrust(`{"StringEquals":{"sigil:ImageDigest":"sha256:`+strings.Repeat("0", 64)+`"}}`))
	pinnedW := e.seal(pinned, 0)
	now := e.clock.Now()
	replayed := w.assertion(t, now)
	if _, err := e.exchange(e.roleARN, replayed); err != nil {
		t.Fatalf("first use: %v", err)
	}
	tampered := func() string {
		a := strings.Split(w.assertion(t, now), ".")
		b := strings.Split(w.assertion(t, now, func(_, c map[string]any) { c["exp"] = now.Add(4 * time.Minute).Unix() }), ".")
		return a[0] + "." + b[1] + "." + a[2]
	}
	withAlg := func(alg string) func(h, c map[string]any) { return func(h, _ map[string]any) { h["alg"] = alg } }
	tests := []struct {
		name, role, token, code string
	}{
		{"tampered", e.roleARN, tampered(), "InvalidIdentityToken"},
		{"signed by another key", e.roleARN, other.assertion(t, now, func(h, c map[string]any) { h["kid"], c["sub"] = w.keyID, w.keyID }), "InvalidIdentityToken"},
		{"replayed jti", e.roleARN, replayed, "InvalidIdentityToken"},
		{"expired", e.roleARN, w.assertion(t, now, func(_, c map[string]any) {
			c["iat"], c["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-6*time.Minute).Unix()
		}), "ExpiredTokenException"},
		{"exp - iat over 300 s", e.roleARN, w.assertion(t, now, func(_, c map[string]any) { c["exp"] = now.Add(10 * time.Minute).Unix() }), "InvalidIdentityToken"},
		{"alg none", e.roleARN, w.assertion(t, now, withAlg("none")), "InvalidIdentityToken"},
		{"alg RS256", e.roleARN, w.assertion(t, now, withAlg("RS256")), "InvalidIdentityToken"},
		{"key of a revoked digest", e.roleARN, revoked.assertion(t, now), "InvalidIdentityToken"},
		{"wrong audience", e.roleARN, w.assertion(t, now, func(_, c map[string]any) { c["aud"] = "sts.amazonaws.com" }), "InvalidIdentityToken"},
		{"role the image was not sealed for", otherRole, w.assertion(t, now), "AccessDenied"},
		{"trust policy pins another digest", pinned, pinnedW.assertion(t, now), "AccessDenied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.exchange(tc.role, tc.token)
			wantAPICode(t, err, tc.code)
		})
	}
}

func TestImageRevokeRejectsExistingSessions(t *testing.T) {
	e := newImgEnv(t)
	w := e.seal(e.roleARN, 0)
	keep := e.seal(e.roleARN, 0)
	out, err := e.exchange(e.roleARN, w.assertion(t, e.clock.Now()))
	mustOK(t, err)
	kept, err := e.exchange(e.roleARN, keep.assertion(t, e.clock.Now()))
	mustOK(t, err)
	sm, keptSM := e.secretsAs(out), e.secretsAs(kept)
	_, err = e.read(sm, imgSecret)
	mustOK(t, err)

	e.wantNative("/v1/images/revoke", images.RevokeRequest{Digest: "sha256:ABC"}, nil, "InvalidParameterException")
	var rr images.RevokeResponse
	e.wantNative("/v1/images/revoke", images.RevokeRequest{Digest: w.digest, Reason: "leaked"}, &rr, "")
	if rr.Digest != w.digest || rr.RevokedAt.IsZero() {
		t.Fatalf("revoke answered %+v", rr)
	}
	testutil.WaitFor(t, time.Second, func() bool {
		_, err := e.read(sm, imgSecret)
		return err != nil
	})
	_, err = e.read(sm, imgSecret)
	wantAPICode(t, err, "UnrecognizedClientException")
	_, err = e.exchange(e.roleARN, w.assertion(t, e.clock.Now()))
	wantAPICode(t, err, "InvalidIdentityToken")
	if _, err := e.read(keptSM, imgSecret); err != nil {
		t.Fatalf("a session of another image stopped working: %v", err)
	}
	var list images.ListResponse
	e.wantNative("/v1/images/list", struct{}{}, &list, "")
	for _, im := range list.Images {
		if im.Digest == w.digest && (!im.Revoked || im.Reason != "leaked") {
			t.Fatalf("listed %+v, want revoked", im)
		}
	}
}

func TestImageKeyTTL(t *testing.T) {
	e := newImgEnv(t)
	w := e.seal(e.roleARN, 60)
	_, err := e.exchange(e.roleARN, w.assertion(t, e.clock.Now()))
	mustOK(t, err)
	e.clock.Advance(61 * time.Second)
	_, err = e.exchange(e.roleARN, w.assertion(t, e.clock.Now()))
	wantAPICode(t, err, "InvalidIdentityToken")
	var ae smithy.APIError
	errors.As(err, &ae)
	if !strings.Contains(ae.ErrorMessage(), "expired") || !strings.Contains(ae.ErrorMessage(), "seal the image again") {
		t.Fatalf("message %q does not say the key expired", ae.ErrorMessage())
	}
}

func TestImageRegisterErrors(t *testing.T) {
	e := newImgEnv(t)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	w := e.seal(e.roleARN, 0)
	good := images.RegisterRequest{Digest: w.digest, Repository: imgRepo, RoleARN: e.roleARN, PublicKey: base64.StdEncoding.EncodeToString(pub)}
	tests := []struct {
		name   string
		change func(r *images.RegisterRequest)
		code   string
	}{
		{"digest not sha256 hex", func(r *images.RegisterRequest) { r.Digest = "sha256:" + strings.Repeat("g", 64) }, "InvalidParameterException"},
		{"digest upper case", func(r *images.RegisterRequest) { r.Digest = strings.ToUpper(r.Digest) }, "InvalidParameterException"},
		{"digest without algorithm", func(r *images.RegisterRequest) { r.Digest = r.Digest[7:] }, "InvalidParameterException"},
		{"bad key", func(r *images.RegisterRequest) { r.PublicKey = "AAAA" }, "InvalidParameterException"},
		{"unknown role", func(r *images.RegisterRequest) { r.RoleARN = "arn:aws:iam::" + e.account + ":role/none" }, "InvalidParameterException"},
		{"digest already sealed", func(*images.RegisterRequest) {}, "ResourceExistsException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := good
			tc.change(&req)
			e.wantNative("/v1/images/register", req, nil, tc.code)
		})
	}
	t.Run("reseal replaces the key", func(t *testing.T) {
		req := good
		req.Reseal = true
		var resp images.RegisterResponse
		e.wantNative("/v1/images/register", req, &resp, "")
		_, err := e.exchange(e.roleARN, w.assertion(t, e.clock.Now()))
		wantAPICode(t, err, "InvalidIdentityToken")
	})
	t.Run("deregister", func(t *testing.T) {
		e.wantNative("/v1/images/deregister", images.DeregisterRequest{KeyID: images.KeyIDOf(pub)}, nil, "")
		e.wantNative("/v1/images/deregister", images.DeregisterRequest{KeyID: images.KeyIDOf(pub)}, nil, "ResourceNotFoundException")
	})
	t.Run("unsigned", func(t *testing.T) {
		resp, err := http.Post(e.srv.URL()+"/v1/images/list", "application/json", strings.NewReader("{}"))
		mustOK(t, err)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("an unsigned list succeeded")
		}
	})
}

func TestImageK8sSecondProof(t *testing.T) {
	e := newImgEnv(t)
	issuer := testutil.StartOIDCIssuer(t)
	ctx := context.Background()
	ic := iam.NewFromConfig(e.srv.AWSConfig())
	_, err := ic.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String(issuer.URL),
		ClientIDList: []string{testutil.DefaultOIDCAudience}, ThumbprintList: []string{issuer.Thumbprint}})
	mustOK(t, err)
	role := e.createRole("both", imgTrust(`{"StringEquals":{"sigil:ImageRepository":"`+imgRepo+`"}}`))
	w := e.seal(role, 0)
	// One role requires both: this image digest and the service account.
	_, err = ic.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("both"),
		PolicyDocument: aws.String(imgTrust(`{"StringEquals":{"sigil:ImageDigest":"` + w.digest + `","sigil:k8s/serviceaccount":"my-app"}}`))})
	mustOK(t, err)
	tests := []struct {
		name string
		k8s  string
		code string
	}{
		{"image and service account", issuer.MintToken(testutil.TokenServiceAccount("my-app")), ""},
		{"image without the k8s proof", "", "AccessDenied"},
		{"another service account", issuer.MintToken(testutil.TokenServiceAccount("intruder")), "AccessDenied"},
		{"k8s token with a broken signature", issuer.MintToken(testutil.TokenServiceAccount("my-app")) + "x", "InvalidIdentityToken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := w.assertion(t, e.clock.Now(), func(_, c map[string]any) {
				if tc.k8s != "" {
					c["k8s"] = tc.k8s
				}
			})
			out, err := e.exchange(role, tok)
			if tc.code != "" {
				wantAPICode(t, err, tc.code)
				return
			}
			mustOK(t, err)
			if _, err := e.read(e.secretsAs(out), imgSecret); err != nil {
				t.Fatalf("the session cannot read its secret: %v", err)
			}
		})
	}
}

func TestImageSeedNeverStored(t *testing.T) {
	e := newImgEnv(t)
	w := e.seal(e.roleARN, 0)
	for range 3 {
		_, err := e.exchange(e.roleARN, w.assertion(t, e.clock.Now()))
		mustOK(t, err)
	}
	_, _ = e.exchange(e.roleARN, w.assertion(t, e.clock.Now(), func(h, _ map[string]any) { h["alg"] = "none" }))
	e.wantNative("/v1/images/revoke", images.RevokeRequest{Digest: w.digest}, nil, "")
	for name, needle := range map[string]string{
		"seed base64":        base64.StdEncoding.EncodeToString(w.seed),
		"seed base64url":     base64.RawURLEncoding.EncodeToString(w.seed),
		"seed hex":           hex.EncodeToString(w.seed),
		"private key base64": base64.StdEncoding.EncodeToString(w.priv),
	} {
		t.Run(name, func(t *testing.T) {
			testutil.AssertNotInDir(t, e.srv.Config.DataDir, needle)
			if strings.Contains(e.srv.Logs.String(), needle) {
				t.Fatal("the server log holds the private key")
			}
		})
	}
	t.Run("raw seed bytes", func(t *testing.T) {
		testutil.AssertNotInDir(t, e.srv.Config.DataDir, string(w.seed))
	})
}

// TestImageAPIAuthorization: a CI user allowed sigil:RegisterImageKey on
// one repository registers there and nowhere else, and may neither list
// nor revoke.
func TestImageAPIAuthorization(t *testing.T) {
	e := newImgEnv(t)
	ctx := context.Background()
	ic := iam.NewFromConfig(e.srv.AWSConfig())
	_, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("ci")})
	mustOK(t, err)
	// First without iam:PassRole on the role: registering is refused.
	registerOnly := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sigil:RegisterImageKey",`+
		`"Resource":"arn:aws:sigil:%s:%s:image/%s"}]}`, e.srv.Config.Region, e.account, imgRepo)
	_, err = ic.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("ci"), PolicyName: aws.String("seal"), PolicyDocument: aws.String(registerOnly)})
	mustOK(t, err)
	key, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("ci")})
	mustOK(t, err)
	ci := aws.Credentials{AccessKeyID: aws.ToString(key.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(key.AccessKey.SecretAccessKey)}
	register := func(repo string) (int, []byte) {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		var d [32]byte
		_, _ = rand.Read(d[:])
		return e.nativeAs(ci, "/v1/images/register", images.RegisterRequest{Digest: "sha256:" + hex.EncodeToString(d[:]),
			Repository: repo, RoleARN: e.roleARN, PublicKey: base64.StdEncoding.EncodeToString(pub)})
	}
	if status, body := register(imgRepo); status != http.StatusBadRequest || !strings.Contains(string(body), "iam:PassRole") {
		t.Fatalf("register without iam:PassRole on the role: %d %s", status, body)
	}
	policy := passRolePolicy(e.srv.Config.Region, e.account, imgRepo)
	_, err = ic.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("ci"), PolicyName: aws.String("seal"), PolicyDocument: aws.String(policy)})
	mustOK(t, err)
	if status, body := register(imgRepo); status != http.StatusOK {
		t.Fatalf("register on the allowed repository: %d %s", status, body)
	}
	tests := []struct {
		name string
		call func() (int, []byte)
	}{
		{"register on another repository", func() (int, []byte) { return register("registry.example.com/other/app") }},
		{"list", func() (int, []byte) { return e.nativeAs(ci, "/v1/images/list", struct{}{}) }},
		{"revoke", func() (int, []byte) {
			w := e.seal(e.roleARN, 0)
			return e.nativeAs(ci, "/v1/images/revoke", images.RevokeRequest{Digest: w.digest})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := tc.call()
			if status != http.StatusBadRequest && status != http.StatusForbidden || !strings.Contains(string(body), "AccessDenied") {
				t.Fatalf("%d %s, want AccessDeniedException", status, body)
			}
		})
	}
}

// TestImageResealNeedsTheOldRepository checks that a reseal, which stops
// the digest's current key, is authorized on that key's repository too: a
// principal allowed to register keys for one repository must not disable
// another repository's image by naming its digest.
func TestImageResealNeedsTheOldRepository(t *testing.T) {
	e := newImgEnv(t)
	ctx := context.Background()
	ic := iam.NewFromConfig(e.srv.AWSConfig())
	_, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("other-ci")})
	mustOK(t, err)
	const otherRepo = "registry.example.com/other/app"
	policy := passRolePolicy(e.srv.Config.Region, e.account, otherRepo)
	_, err = ic.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("other-ci"), PolicyName: aws.String("seal"), PolicyDocument: aws.String(policy)})
	mustOK(t, err)
	key, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("other-ci")})
	mustOK(t, err)
	other := aws.Credentials{AccessKeyID: aws.ToString(key.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(key.AccessKey.SecretAccessKey)}

	victim := e.seal(e.roleARN, 0)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	mustOK(t, err)
	status, body := e.nativeAs(other, "/v1/images/register", images.RegisterRequest{Digest: victim.digest, Repository: otherRepo,
		RoleARN: e.roleARN, PublicKey: base64.StdEncoding.EncodeToString(pub), Reseal: true})
	if status == http.StatusOK || !strings.Contains(string(body), "AccessDenied") {
		t.Fatalf("reseal of another repository's digest: %d %s, want AccessDeniedException", status, body)
	}
	if _, err := e.exchange(e.roleARN, victim.assertion(t, e.clock.Now())); err != nil {
		t.Fatalf("the victim's key stopped working after a refused reseal: %v", err)
	}

	t.Run("register over another repository's expired key", func(t *testing.T) {
		expired := e.seal(e.roleARN, 60)
		e.clock.Advance(2 * time.Minute)
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		mustOK(t, err)
		status, body := e.nativeAs(other, "/v1/images/register", images.RegisterRequest{Digest: expired.digest, Repository: otherRepo,
			RoleARN: e.roleARN, PublicKey: base64.StdEncoding.EncodeToString(pub)})
		if status == http.StatusOK || !strings.Contains(string(body), "AccessDenied") {
			t.Fatalf("register over another repository's expired key: %d %s, want AccessDeniedException", status, body)
		}
	})
	t.Run("reseal within the allowed repository", func(t *testing.T) {
		d := sha256.Sum256([]byte("other image"))
		digest := "sha256:" + hex.EncodeToString(d[:])
		for _, reseal := range []bool{false, true} {
			pub, _, err := ed25519.GenerateKey(rand.Reader)
			mustOK(t, err)
			status, body := e.nativeAs(other, "/v1/images/register", images.RegisterRequest{Digest: digest, Repository: otherRepo,
				RoleARN: e.roleARN, PublicKey: base64.StdEncoding.EncodeToString(pub), Reseal: reseal})
			if status != http.StatusOK {
				t.Fatalf("register (reseal %v) on the allowed repository: %d %s", reseal, status, body)
			}
		}
	})
}

// passRolePolicy allows registering image keys for repo and passing the
// test role to them.
func passRolePolicy(region, account, repo string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sigil:RegisterImageKey",`+
		`"Resource":"arn:aws:sigil:%s:%s:image/%s"},`+
		`{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::%s:role/app"}]}`, region, account, repo, account)
}
