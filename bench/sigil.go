package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"sigil.dev/sigil/internal/server"
)

// benchSecretName is the secret every sigil scenario reads.
const benchSecretName = "bench/database-credentials"

// sigilOptions vary the sigil scenarios.
type sigilOptions struct {
	// extra secrets are stored beside the one read (for the
	// RSS-with-many-secrets figure).
	extra int
	// auditMode is the server's --audit-mode; "" is the default (sync).
	auditMode string
	// asUser reads with an IAM user's key whose policy allows the read,
	// instead of root's, so every request runs the policy evaluator.
	asUser bool
	// asSession reads with STS session credentials of a role carrying the
	// same policy (assumed by the user), so every request also verifies
	// the session token.
	asSession bool
}

// sigilGetScenario is sigil serving GetSecretValue of a 200-byte secret
// with full SigV4 verification of every request.
func sigilGetScenario(name string, o sigilOptions) scenario {
	about := "sigil GetSecretValue of a 200-byte secret, full SigV4 check"
	if o.asSession {
		about += ", STS session credentials of a role"
	} else if o.asUser {
		about += ", IAM user with an identity policy"
	} else {
		about += ", root key"
	}
	switch o.auditMode {
	case "":
		about += ", sync audit"
	default:
		about += ", audit " + o.auditMode
	}
	if o.extra > 0 {
		about += fmt.Sprintf(", with %d other secrets stored", o.extra)
	}
	return scenario{
		name:  name,
		about: about,
		serve: func(ctx context.Context, ln net.Listener, ready func(map[string]string)) error {
			return serveSigil(ctx, ln, o, ready)
		},
		prepare: prepareGetSecretValue,
	}
}

func serveSigil(ctx context.Context, ln net.Listener, o sigilOptions, ready func(map[string]string)) error {
	dir, err := os.MkdirTemp("", "sigil-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := server.Config{Listen: ln.Addr().String(), DataDir: filepath.Join(dir, "data"), AuditMode: o.auditMode}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Access logs are info; the benchmark measures the server, not its
	// log volume.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(ctx, cfg, server.Options{Logger: log})
	if err != nil {
		return err
	}
	if err := srv.StartOn(ln); err != nil {
		return err
	}
	id, secret := readRootCredentials(filepath.Join(cfg.DataDir, server.RootCredentialsFile))
	sm := secretsmanager.NewFromConfig(aws.Config{
		Region:      cfg.Region,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
	}, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(srv.URL()) })
	if err := preload(ctx, sm, o.extra); err != nil {
		return err
	}
	value := strings.Repeat("s", 200)
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(benchSecretName), SecretString: aws.String(value)})
	if err != nil {
		return fmt.Errorf("creating the bench secret: %w", err)
	}
	token := ""
	if o.asUser || o.asSession {
		rootCfg := aws.Config{Region: cfg.Region, Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")}
		if id, secret, err = benchUser(ctx, rootCfg, srv.URL(), aws.ToString(created.ARN)); err != nil {
			return err
		}
		if o.asSession {
			if id, secret, token, err = benchSession(ctx, rootCfg, srv.URL(), id, secret); err != nil {
				return err
			}
		}
	}
	if o.extra > 0 {
		// Measure a server that has the secrets stored, not one that has
		// just written them: restart it on the same data directory and
		// address, and reset the peak-RSS mark the harness reads.
		if srv, err = restartSigil(ctx, srv, cfg, log); err != nil {
			return err
		}
	}
	ready(map[string]string{"id": id, "secret": secret, "token": token, "region": cfg.Region})
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// restartSigil stops srv and starts a new server on the same data
// directory and address, then resets this process's peak RSS (VmHWM) by
// writing 5 to /proc/self/clear_refs, so the figure reported is the
// serving one.
func restartSigil(ctx context.Context, srv *server.Server, cfg server.Config, log *slog.Logger) (*server.Server, error) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return nil, fmt.Errorf("stopping before the restart: %w", err)
	}
	next, err := server.New(ctx, cfg, server.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("restarting: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening again on %s: %w", cfg.Listen, err)
	}
	if err := next.StartOn(ln); err != nil {
		return nil, err
	}
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return nil, fmt.Errorf("resetting the peak RSS mark: %w", err)
	}
	return next, nil
}

// benchUser creates an IAM user whose policy (the scenario shape:
// five statements, two with conditions) allows reading the bench secret,
// and returns its access key.
func benchUser(ctx context.Context, cfg aws.Config, endpoint, secretARN string) (id, secret string, err error) {
	ic := iam.NewFromConfig(cfg, func(o *iam.Options) { o.BaseEndpoint = aws.String(endpoint) })
	acct := strings.Split(secretARN, ":")[4]
	policy := `{"Version":"2012-10-17","Statement":[
	 {"Sid":"Read","Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],
	  "Resource":"arn:aws:secretsmanager:us-east-1:` + acct + `:secret:bench/*"},
	 {"Sid":"List","Effect":"Allow","Action":"secretsmanager:ListSecrets","Resource":"*"},
	 {"Sid":"FromLoopback","Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*",
	  "Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}},
	 {"Sid":"NoWrites","Effect":"Deny","Action":["secretsmanager:PutSecretValue","secretsmanager:DeleteSecret"],"Resource":"*"},
	 {"Sid":"TaggedOnly","Effect":"Deny","Action":"secretsmanager:GetSecretValue","Resource":"*",
	  "Condition":{"StringEquals":{"aws:ResourceTag/classification":"restricted"}}}]}`
	if _, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bench")}); err != nil {
		return "", "", fmt.Errorf("creating the bench user: %w", err)
	}
	if _, err := ic.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("bench"), PolicyName: aws.String("read"), PolicyDocument: aws.String(policy)}); err != nil {
		return "", "", fmt.Errorf("attaching the bench policy: %w", err)
	}
	key, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("bench")})
	if err != nil {
		return "", "", fmt.Errorf("creating the bench key: %w", err)
	}
	return aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), nil
}

// benchSession creates a role with the bench user's policy that the user
// may assume, assumes it, and returns the session credentials.
func benchSession(ctx context.Context, rootCfg aws.Config, endpoint, userID, userSecret string) (id, secret, token string, err error) {
	ic := iam.NewFromConfig(rootCfg, func(o *iam.Options) { o.BaseEndpoint = aws.String(endpoint) })
	user, err := ic.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("bench")})
	if err != nil {
		return "", "", "", err
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"AWS":"` + aws.ToString(user.User.Arn) + `"}}]}`
	role, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("bench-role"), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		return "", "", "", fmt.Errorf("creating the bench role: %w", err)
	}
	pol, err := ic.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("bench"), PolicyName: aws.String("read")})
	if err != nil {
		return "", "", "", err
	}
	doc, err := url.QueryUnescape(aws.ToString(pol.PolicyDocument))
	if err != nil {
		return "", "", "", err
	}
	if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("bench-role"), PolicyName: aws.String("read"), PolicyDocument: aws.String(doc)}); err != nil {
		return "", "", "", err
	}
	stsc := sts.NewFromConfig(aws.Config{Region: rootCfg.Region, Credentials: credentials.NewStaticCredentialsProvider(userID, userSecret, "")},
		func(o *sts.Options) { o.BaseEndpoint = aws.String(endpoint) })
	out, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("bench"), DurationSeconds: aws.Int32(3600)})
	if err != nil {
		return "", "", "", fmt.Errorf("assuming the bench role: %w", err)
	}
	c := out.Credentials
	return aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken), nil
}

// preload creates n secrets with 16 concurrent writers.
func preload(ctx context.Context, sm *secretsmanager.Client, n int) error {
	if n == 0 {
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	next := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name := "preload/app-" + strconv.Itoa(i)
				if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &name, SecretString: aws.String(strings.Repeat("p", 200))}); err != nil {
					errs <- fmt.Errorf("preloading %s: %w", name, err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

func readRootCredentials(path string) (id, secret string) {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			id = strings.TrimSpace(v)
		case "aws_secret_access_key":
			secret = strings.TrimSpace(v)
		}
	}
	return id, secret
}

// prepareGetSecretValue signs one GetSecretValue request with the
// aws-sdk-go-v2 signer. The server verifies the signature in full on every
// replay; the signing time bounds the run to the 5-minute skew window.
func prepareGetSecretValue(addr string, info map[string]string) (*request, error) {
	return prepareGet(addr, info, benchSecretName, func(secret string, got []byte) error {
		var out struct{ Name, SecretString string }
		if err := json.Unmarshal(got, &out); err != nil {
			return fmt.Errorf("response is not JSON: %w", err)
		}
		if out.Name != secret || len(out.SecretString) != 200 {
			return fmt.Errorf("unexpected GetSecretValue response for %q (%d-byte value)", out.Name, len(out.SecretString))
		}
		return nil
	})
}
