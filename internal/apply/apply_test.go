package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"sigil.dev/sigil/internal/testutil"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// env is a running server and clients for it, signed as root.
type env struct {
	srv *testserver.Server
	c   Clients
	iam *iam.Client
	sm  *secretsmanager.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := testserver.StartServer(t)
	cfg := srv.AWSConfig()
	e := &env{srv: srv, iam: iam.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg)}
	e.c = Clients{IAM: e.iam, SecretsManager: e.sm, Region: cfg.Region}
	return e
}

// parse parses src with value files in dir and the given environment.
func parse(t *testing.T, src, dir string, environ map[string]string) *File {
	t.Helper()
	f, err := Parse(strings.NewReader(src), dir, testEnv(environ))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func (e *env) plan(t *testing.T, f *File, opts Options) *PlanResult {
	t.Helper()
	p, err := Plan(context.Background(), e.c, f, opts)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

// apply plans and applies f, failing the test on any error.
func (e *env) apply(t *testing.T, f *File, opts Options) (*PlanResult, *Result) {
	t.Helper()
	p := e.plan(t, f, opts)
	r, err := Apply(context.Background(), e.c, p)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return p, r
}

// exampleAdminPassword is the example database administrator's password
// in these tests, given as sigil.yaml's SHOP_DB_ADMIN_PASSWORD.
const exampleAdminPassword = "example-admin-password-1"

// exampleFile parses the example's sigil.yaml. With pg, its database
// points at that server (loopback, no TLS) instead of db.example.internal.
func exampleFile(t *testing.T, pg *testutil.Postgres) *File {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", "ecommerce")
	b, err := os.ReadFile(filepath.Join(dir, "sigil.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f := parse(t, string(b), dir, map[string]string{"SHOP_DB_ADMIN_PASSWORD": exampleAdminPassword})
	if pg != nil {
		f.Databases[0].Host, f.Databases[0].Port, f.Databases[0].TLS = pg.Host, pg.Port, DatabaseTLS{Mode: "disable"}
	}
	return f
}

func actions(p *PlanResult) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, string(c.Kind)+" "+c.Name+": "+string(c.Action))
	}
	return out
}

func findChange(t *testing.T, p *PlanResult, k Kind, name string) Change {
	t.Helper()
	for _, c := range p.Changes {
		if c.Kind == k && c.Name == name {
			return c
		}
	}
	t.Fatalf("plan has no %s %s: %v", k, name, actions(p))
	return Change{}
}

func doc(s *string) string {
	d, _ := url.QueryUnescape(aws.ToString(s))
	return d
}

// mustJSON decodes a JSON object.
func mustJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, s)
	}
	return m
}

// exampleDatabase starts the example's database: PostgreSQL with the shop
// database, its products table and the sigil login sigil.yaml
// describes, and returns the example file pointed at it.
func exampleDatabase(t *testing.T, e *env) (*File, *testutil.Postgres) {
	t.Helper()
	pg := testutil.StartPostgres(t)
	ctx := context.Background()
	su, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)
	if _, err := su.Exec(ctx, `CREATE DATABASE shop`); err != nil {
		t.Fatal(err)
	}
	if _, err := su.Exec(ctx, `CREATE ROLE sigil WITH LOGIN CREATEROLE PASSWORD '`+exampleAdminPassword+`'; GRANT pg_signal_backend TO sigil`); err != nil {
		t.Fatal(err)
	}
	shop, err := pgx.Connect(ctx, pg.DSNFor(pg.User, pg.Password, "shop"))
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close(ctx)
	if _, err := shop.Exec(ctx, `CREATE TABLE products (id int PRIMARY KEY, name text); INSERT INTO products VALUES (1, 'lamp'), (2, 'chair'); GRANT SELECT ON products TO sigil WITH GRANT OPTION`); err != nil {
		t.Fatal(err)
	}
	e.c.Native = NewNative(e.srv.AWSConfig())
	return exampleFile(t, pg), pg
}

func TestApplyExample(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	f, pg := exampleDatabase(t, e)

	p, r := e.apply(t, f, Options{})
	if create, update, unchanged := p.Counts(); create != 7 || update != 0 || unchanged != 0 {
		t.Fatalf("first plan: %v", actions(p))
	}
	if created, _, _, failed := r.Counts(); created != 7 || failed != 0 {
		t.Fatalf("first apply: %+v", r.Objects)
	}
	acct := p.Account
	if !accountPattern.MatchString(acct) {
		t.Fatalf("account %q", acct)
	}
	issuer := "oidc.eks.example.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"

	t.Run("oidc provider", func(t *testing.T) {
		out, err := e.iam.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{
			OpenIDConnectProviderArn: aws.String("arn:aws:iam::" + acct + ":oidc-provider/" + issuer)})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out.ClientIDList, []string{"sts.amazonaws.com"}) || len(out.ThumbprintList) != 1 {
			t.Errorf("provider: %v %v", out.ClientIDList, out.ThumbprintList)
		}
	})
	policyARN := "arn:aws:iam::" + acct + ":policy/my-app-secrets"
	t.Run("managed policy", func(t *testing.T) {
		pol, err := e.iam.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
		if err != nil {
			t.Fatal(err)
		}
		ver, err := e.iam.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(policyARN), VersionId: pol.Policy.DefaultVersionId})
		if err != nil {
			t.Fatal(err)
		}
		d := doc(ver.PolicyVersion.Document)
		want := `"Resource":"arn:aws:secretsmanager:us-east-1:` + acct + `:secret:my-app/database-credentials-*"`
		if !strings.Contains(d, want) || !strings.Contains(d, `"secretsmanager:GetSecretValue"`) {
			t.Errorf("policy document %s\nwant it to contain %s", d, want)
		}
	})
	t.Run("role", func(t *testing.T) {
		role, err := e.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("application-role")})
		if err != nil {
			t.Fatal(err)
		}
		trust := mustJSON(t, doc(role.Role.AssumeRolePolicyDocument))
		st := trust["Statement"].([]any)[0].(map[string]any)
		if fed := st["Principal"].(map[string]any)["Federated"]; fed != "arn:aws:iam::"+acct+":oidc-provider/"+issuer {
			t.Errorf("Federated %v", fed)
		}
		cond := st["Condition"].(map[string]any)["StringEquals"].(map[string]any)
		if cond[issuer+":sub"] != "system:serviceaccount:default:my-app" || st["Action"] != "sts:AssumeRoleWithWebIdentity" {
			t.Errorf("trust statement %v", st)
		}
		if aws.ToInt32(role.Role.MaxSessionDuration) != 3600 || !strings.Contains(aws.ToString(role.Role.Description), "service-account token") {
			t.Errorf("role settings: %d %q", aws.ToInt32(role.Role.MaxSessionDuration), aws.ToString(role.Role.Description))
		}
		att, err := e.iam.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String("application-role")})
		if err != nil {
			t.Fatal(err)
		}
		if len(att.AttachedPolicies) != 1 || aws.ToString(att.AttachedPolicies[0].PolicyArn) != policyARN {
			t.Errorf("attached %+v", att.AttachedPolicies)
		}
	})
	t.Run("user", func(t *testing.T) {
		pol, err := e.iam.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("ci"), PolicyName: aws.String("describe-my-app-secrets")})
		if err != nil {
			t.Fatal(err)
		}
		d := mustJSON(t, doc(pol.PolicyDocument))
		st := d["Statement"].([]any)[0].(map[string]any)
		if st["Action"] != "secretsmanager:DescribeSecret" || st["Resource"] != "arn:aws:secretsmanager:us-east-1:"+acct+":secret:my-app/*" {
			t.Errorf("ci policy %v", st)
		}
		keys, err := e.iam.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("ci")})
		if err != nil {
			t.Fatal(err)
		}
		if len(keys.AccessKeyMetadata) != 0 {
			t.Errorf("apply created access keys: %+v", keys.AccessKeyMetadata)
		}
	})
	t.Run("secrets", func(t *testing.T) {
		creds, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("my-app/database-credentials")})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(aws.ToString(creds.ARN), "arn:aws:secretsmanager:us-east-1:"+acct+":secret:my-app/database-credentials-") ||
			len(creds.Tags) != 1 || !strings.Contains(aws.ToString(creds.Description), "per pod session") {
			t.Errorf("credentials secret: %+v", creds)
		}
		// The dynamic secret issues a working user of the shop database.
		val, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/database-credentials")})
		if err != nil {
			t.Fatal(err)
		}
		var db struct {
			Host, Username, Password, DBName string
			Port                             int
		}
		if err := json.Unmarshal([]byte(aws.ToString(val.SecretString)), &db); err != nil {
			t.Fatal(err)
		}
		if db.Host != pg.Host || db.Port != pg.Port || db.DBName != "shop" || !strings.HasPrefix(db.Username, "my_app_") {
			t.Fatalf("issued credentials %s@%s:%d/%s", db.Username, db.Host, db.Port, db.DBName)
		}
		conn, err := pgx.Connect(ctx, pg.DSNFor(db.Username, db.Password, db.DBName))
		if err != nil {
			t.Fatalf("logging in as the issued user: %v", err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM products`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("reading products as the issued user: %d, %v", n, err)
		}
		boot, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/bootstrap")})
		if err != nil {
			t.Fatal(err)
		}
		b := mustJSON(t, aws.ToString(boot.SecretString))
		if b["database_credentials_arn"] != aws.ToString(creds.ARN) || b["region"] != "us-east-1" {
			t.Errorf("bootstrap %v does not point at %s", b, aws.ToString(creds.ARN))
		}
	})

	t.Run("second run changes nothing", func(t *testing.T) {
		for _, opts := range []Options{{}, {UpdateValues: true}} {
			p, r := e.apply(t, exampleFile(t, pg), opts)
			if opts.UpdateValues {
				// A database password is write-only: --update-values sends
				// it again, and that is the only change.
				if create, update, _ := p.Counts(); create != 0 || update != 1 || findChange(t, p, KindDatabase, "shop").Action != ActionUpdate {
					t.Fatalf("second plan (%+v): %v", opts, actions(p))
				}
			} else {
				if p.HasChanges() {
					t.Fatalf("second plan (%+v): %v", opts, actions(p))
				}
				if _, _, unchanged, _ := r.Counts(); unchanged != 7 {
					t.Fatalf("second apply: %+v", r.Objects)
				}
				var text bytes.Buffer
				if err := p.WriteText(&text); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(text.String(), "no changes") {
					t.Errorf("plan text does not say no changes:\n%s", text.String())
				}
			}
			note := noteValueLeft
			if opts.UpdateValues {
				note = noteValueSame
			}
			if c := findChange(t, p, KindSecret, "my-app/bootstrap"); !slices.Contains(c.Notes, note) {
				t.Errorf("bootstrap notes %v, want %q", c.Notes, note)
			}
		}
		vers, err := e.iam.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(policyARN)})
		if err != nil {
			t.Fatal(err)
		}
		if len(vers.Versions) != 1 {
			t.Errorf("re-applying made policy versions: %d", len(vers.Versions))
		}
		ids, err := e.sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("my-app/bootstrap")})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids.Versions) != 1 {
			t.Errorf("re-applying wrote secret versions: %d", len(ids.Versions))
		}
	})
}

// serverEmpty fails the test if the server holds any object apply makes.
func (e *env) serverEmpty(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	roles, err := e.iam.ListRoles(ctx, &iam.ListRolesInput{})
	if err != nil {
		t.Fatal(err)
	}
	users, err := e.iam.ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil {
		t.Fatal(err)
	}
	pols, err := e.iam.ListPolicies(ctx, &iam.ListPoliciesInput{})
	if err != nil {
		t.Fatal(err)
	}
	oidc, err := e.iam.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := e.sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(roles.Roles) + len(users.Users) + len(pols.Policies) + len(oidc.OpenIDConnectProviderList) + len(secrets.SecretList); n != 0 {
		t.Fatalf("server holds %d objects", n)
	}
}

func TestPlanChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.c.Native = NewNative(e.srv.AWSConfig())
	p := e.plan(t, exampleFile(t, nil), Options{UpdateValues: true})
	if c, _, _ := p.Counts(); c != 7 {
		t.Fatalf("plan: %v", actions(p))
	}
	e.serverEmpty(t)
}

// base and changed are one file before and after an edit touching every
// field apply can update.
const base = `
version: 1
oidcProviders:
  - url: https://issuer.example.com/c1
    clientIds: [sts.amazonaws.com, old-audience]
    thumbprints: [1111111111111111111111111111111111111111]
managedPolicies:
  - name: p1
    document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*"}]}
  - name: p2
    document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:ListBucket", Resource: "*"}]}
roles:
  - name: r1
    description: first
    trustPolicy: {Version: "2012-10-17", Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: "sts:AssumeRole"}]}
    inlinePolicies:
      - name: keep
        document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*"}]}
      - name: drop
        document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:PutObject", Resource: "*"}]}
    attachedPolicies: [p1]
    tags: {env: dev, old: x}
users:
  - name: u1
    attachedPolicies: [p1]
    tags: {team: a}
secrets:
  - name: s1
    description: one
    tags: {env: dev}
`

const changed = `
version: 1
oidcProviders:
  - url: https://issuer.example.com/c1
    clientIds: [sts.amazonaws.com, new-audience]
    thumbprints: [2222222222222222222222222222222222222222]
    tags: {added: "yes"}
managedPolicies:
  - name: p1
    document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: ["s3:GetObject", "s3:GetObjectVersion"], Resource: "*"}]}
  - name: p2
    document: '{"Statement": [{"Resource": "*", "Action": "s3:ListBucket", "Effect": "Allow"}], "Version": "2012-10-17"}'
roles:
  - name: r1
    description: second
    maxSessionDuration: 7200
    permissionsBoundary: p2
    trustPolicy: {Version: "2012-10-17", Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: "sts:AssumeRole"}]}
    inlinePolicies:
      - name: keep
        document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "arn:aws:s3:::b/*"}]}
      - name: added
        document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:ListBucket", Resource: "*"}]}
    attachedPolicies: [p2]
    tags: {env: prod}
users:
  - name: u1
secrets:
  - name: s1
    description: two
    tags: {env: prod}
    resourcePolicy:
      Version: "2012-10-17"
      Statement:
        - Effect: Deny
          Principal: {AWS: "arn:aws:iam::{{account}}:user/u1"}
          Action: secretsmanager:GetSecretValue
          Resource: "*"
`

func TestApplyUpdates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	e.apply(t, parse(t, base, dir, nil), Options{})

	p := e.plan(t, parse(t, changed, dir, nil), Options{})
	wantSteps := map[string][]string{
		"oidc-provider https://issuer.example.com/c1": {`add client id "new-audience"`, `remove client id "old-audience"`, "set thumbprints", "tags (add added)"},
		"managed-policy p1":                           {"create a new default version of the document"},
		// p2's document is the same policy with other key order: no change.
		"managed-policy p2": nil,
		"role r1": {"update trust policy", "update description, max session duration 3600s -> 7200s",
			"set permissions boundary arn:aws:iam::" + p.Account + ":policy/p2",
			`put inline policy "keep" (changed)`, `put inline policy "added" (new)`,
			"attach arn:aws:iam::" + p.Account + ":policy/p2",
			`delete inline policy "drop" (not in the file)`,
			"detach arn:aws:iam::" + p.Account + ":policy/p1 (not in the file)",
			"tags (change env; remove old)"},
		"user u1":   {"detach arn:aws:iam::" + p.Account + ":policy/p1 (not in the file)", "tags (remove team)"},
		"secret s1": {"update description", "tags (change env)", "put resource policy"},
	}
	if len(p.Changes) != len(wantSteps) {
		t.Fatalf("plan: %v", actions(p))
	}
	for _, c := range p.Changes {
		want, ok := wantSteps[string(c.Kind)+" "+c.Name]
		if !ok || !slices.Equal(c.Steps, want) {
			t.Errorf("%s %s steps:\n got %q\nwant %q", c.Kind, c.Name, c.Steps, want)
		}
	}
	if _, update, unchanged := p.Counts(); update != 5 || unchanged != 1 {
		t.Errorf("counts: %v", actions(p))
	}
	r, err := Apply(ctx, e.c, p)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if _, updated, _, _ := r.Counts(); updated != 5 {
		t.Fatalf("result: %+v", r.Objects)
	}

	role, err := e.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r1")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc(role.Role.AssumeRolePolicyDocument), "lambda.amazonaws.com") || aws.ToString(role.Role.Description) != "second" ||
		aws.ToInt32(role.Role.MaxSessionDuration) != 7200 || role.Role.PermissionsBoundary == nil || len(role.Role.Tags) != 1 {
		t.Errorf("role after update: %+v", role.Role)
	}
	names, err := e.iam.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String("r1")})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names.PolicyNames)
	if !slices.Equal(names.PolicyNames, []string{"added", "keep"}) {
		t.Errorf("inline policies %v", names.PolicyNames)
	}
	vers, err := e.iam.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String("arn:aws:iam::" + p.Account + ":policy/p1")})
	if err != nil {
		t.Fatal(err)
	}
	if len(vers.Versions) != 2 {
		t.Errorf("p1 has %d versions, want 2", len(vers.Versions))
	}
	rp, err := e.sm.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String("s1")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(aws.ToString(rp.ResourcePolicy), "user/u1") {
		t.Errorf("resource policy %q", aws.ToString(rp.ResourcePolicy))
	}

	if p := e.plan(t, parse(t, changed, dir, nil), Options{}); p.HasChanges() {
		t.Errorf("plan after update: %v", actions(p))
	}
	// Going back removes what the edit added, including the boundary and
	// the resource policy.
	p = e.plan(t, parse(t, base, dir, nil), Options{})
	if c := findChange(t, p, KindRole, "r1"); !slices.Contains(c.Steps, "remove permissions boundary") {
		t.Errorf("role steps back: %q", c.Steps)
	}
	if c := findChange(t, p, KindSecret, "s1"); !slices.Contains(c.Steps, "delete resource policy (not in the file)") {
		t.Errorf("secret steps back: %q", c.Steps)
	}
	if _, err := Apply(ctx, e.c, p); err != nil {
		t.Fatal(err)
	}
	if p := e.plan(t, parse(t, base, dir, nil), Options{}); p.HasChanges() {
		t.Errorf("plan after going back: %v", actions(p))
	}
}

func TestPolicyVersionsArePruned(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	var arn string
	for i, action := range []string{"s3:A", "s3:B", "s3:C", "s3:D", "s3:E", "s3:F", "s3:G"} {
		src := "version: 1\nmanagedPolicies:\n  - name: p\n    document: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"" + action + "\", Resource: \"*\"}]}\n"
		p, _ := e.apply(t, parse(t, src, dir, nil), Options{})
		arn = p.Changes[0].ARN
		if i >= 5 && !strings.HasPrefix(p.Changes[0].Steps[0], "delete oldest version v"+string(rune('0'+i-4))) {
			t.Errorf("run %d steps %q", i, p.Changes[0].Steps)
		}
		vers, err := e.iam.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(vers.Versions); n != min(i+1, maxPolicyVersions) {
			t.Fatalf("after run %d: %d versions", i, n)
		}
		pol, err := e.iam.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		v, err := e.iam.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: pol.Policy.DefaultVersionId})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(doc(v.PolicyVersion.Document), action) {
			t.Fatalf("after run %d the default version is %s", i, doc(v.PolicyVersion.Document))
		}
	}
	vers, err := e.iam.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range vers.Versions {
		ids = append(ids, aws.ToString(v.VersionId))
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"v3", "v4", "v5", "v6", "v7"}) {
		t.Errorf("versions %v, want v3-v7", ids)
	}
}

func TestOIDCThumbprintsCanBeCleared(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	with := "version: 1\noidcProviders:\n  - url: https://x.example.com\n    thumbprints: [1111111111111111111111111111111111111111]\n"
	without := "version: 1\noidcProviders:\n  - url: https://x.example.com\n"
	e.apply(t, parse(t, with, dir, nil), Options{})
	p, _ := e.apply(t, parse(t, without, dir, nil), Options{})
	if !slices.Equal(p.Changes[0].Steps, []string{"set thumbprints"}) {
		t.Fatalf("steps %q", p.Changes[0].Steps)
	}
	out, err := e.iam.GetOpenIDConnectProvider(context.Background(), &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(p.Changes[0].ARN)})
	if err != nil || len(out.ThumbprintList) != 0 {
		t.Fatalf("provider after clearing: %v %v", err, out.ThumbprintList)
	}
	if p := e.plan(t, parse(t, without, dir, nil), Options{}); p.HasChanges() {
		t.Errorf("plan after clearing: %v", actions(p))
	}
}
