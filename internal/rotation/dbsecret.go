package rotation

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
)

// DatabaseSecret is the value of a database secret in AWS's JSON layout,
// {"engine","host","port","username","password","dbname"}, which the
// single-user rotators read and write. Members other than these are kept
// unchanged through a rotation. It prints and logs without its password.
type DatabaseSecret struct {
	Engine   string
	Host     string
	Port     int
	Username string
	Password string
	DBName   string
	// SSLMode, from an optional "sslmode" member, is the PostgreSQL
	// sslmode (disable, prefer, require, verify-ca, verify-full); "" means
	// prefer, as AWS's functions try TLS first. For MySQL, "disable" turns
	// TLS off, "require" demands it without verification and
	// "verify-full" demands a verified certificate; anything else prefers
	// TLS.
	SSLMode string

	// raw holds every member as read, so that unknown ones survive.
	raw map[string]json.RawMessage
}

// ParseDatabaseSecret decodes a database secret. host and username are
// required; port may be a number or a string holding one and defaults to
// defaultPort.
func ParseDatabaseSecret(s string, defaultPort int) (DatabaseSecret, error) {
	raw, err := jsonObject(s)
	if err != nil {
		return DatabaseSecret{}, err
	}
	ds := DatabaseSecret{raw: raw, Port: defaultPort}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"engine", &ds.Engine}, {"host", &ds.Host}, {"username", &ds.Username},
		{"password", &ds.Password}, {"dbname", &ds.DBName}, {"sslmode", &ds.SSLMode},
	} {
		m, ok := raw[f.name]
		if !ok || string(m) == "null" {
			continue
		}
		if err := json.Unmarshal(m, f.dst); err != nil {
			return DatabaseSecret{}, fmt.Errorf("%w: member %q is not a string", ErrInvalidSecretValue, f.name)
		}
	}
	if m, ok := raw["port"]; ok && string(m) != "null" {
		var n json.Number
		if err := json.Unmarshal(m, &n); err != nil {
			var str string
			if json.Unmarshal(m, &str) != nil {
				return DatabaseSecret{}, fmt.Errorf("%w: member \"port\" is not a number", ErrInvalidSecretValue)
			}
			n = json.Number(str)
		}
		p, err := strconv.Atoi(string(n))
		if err != nil || p < 1 || p > 65535 {
			return DatabaseSecret{}, fmt.Errorf("%w: member \"port\" is not a TCP port", ErrInvalidSecretValue)
		}
		ds.Port = p
	}
	if ds.Host == "" || ds.Username == "" {
		return DatabaseSecret{}, fmt.Errorf("%w: a database secret needs \"host\" and \"username\"", ErrInvalidSecretValue)
	}
	return ds, nil
}

// WithPassword returns the secret's JSON with password replaced and every
// other member as it was.
func (d DatabaseSecret) WithPassword(password string) (string, error) {
	out := make(map[string]json.RawMessage, len(d.raw)+1)
	for k, v := range d.raw {
		out[k] = v
	}
	pw, err := json.Marshal(password)
	if err != nil {
		return "", fmt.Errorf("encoding password: %w", err)
	}
	out["password"] = pw
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("encoding database secret: %w", err)
	}
	return string(b), nil
}

// Addr returns host:port.
func (d DatabaseSecret) Addr() string {
	return net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
}

// String describes the secret without its password.
func (d DatabaseSecret) String() string {
	return fmt.Sprintf("%s://%s:REDACTED@%s/%s", d.Engine, d.Username, d.Addr(), d.DBName)
}

// LogValue describes the secret to log/slog without its password.
func (d DatabaseSecret) LogValue() slog.Value { return slog.StringValue(d.String()) }

// GoString keeps the password out of %#v.
func (d DatabaseSecret) GoString() string { return d.String() }
