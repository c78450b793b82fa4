// Command app is my-app of the e-commerce example: it reads its database
// credentials from sigil with unchanged aws-sdk-go-v2 code. Credentials and
// the endpoint come from the shared AWS config (in a sealed image:
// credential_process = sigil credentials --bootstrap ...), so the program
// holds no secret and no sigil-specific code.
//
// It connects to the database with the credentials it read (a user sigil
// issued for it alone), counts the products, and never prints the password.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "my-app:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("loading the AWS config: %w", err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	var boot struct {
		DatabaseCredentialsARN string `json:"database_credentials_arn"`
	}
	if err := readJSON(ctx, sm, "my-app/bootstrap", &boot); err != nil {
		return err
	}
	var db struct {
		Host     string `json:"host"`
		Port     int    `json:"port"`
		Username string `json:"username"`
		Password string `json:"password"`
		DBName   string `json:"dbname"`
	}
	if err := readJSON(ctx, sm, boot.DatabaseCredentialsARN, &db); err != nil {
		return err
	}
	fmt.Printf("my-app: database credentials read: %s@%s:%d/%s (password: %d characters, not shown)\n",
		db.Username, db.Host, db.Port, db.DBName, len(db.Password))
	// Connect as the user sigil issued. TLS follows libpq's PGSSLMODE
	// (pgx's default is "prefer").
	u := url.URL{Scheme: "postgres", User: url.UserPassword(db.Username, db.Password),
		Host: net.JoinHostPort(db.Host, strconv.Itoa(db.Port)), Path: "/" + db.DBName}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return fmt.Errorf("connecting to the database as %s: %w", db.Username, err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n); err != nil {
		return fmt.Errorf("querying products as %s: %w", db.Username, err)
	}
	fmt.Printf("my-app: connected to %s as %s: %d products\n", db.DBName, db.Username, n)
	return nil
}

func readJSON(ctx context.Context, sm *secretsmanager.Client, id string, v any) error {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return fmt.Errorf("reading %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), v); err != nil {
		return fmt.Errorf("decoding %s: not the expected JSON", id)
	}
	return nil
}
