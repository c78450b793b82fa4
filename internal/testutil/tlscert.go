package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Where the test database servers find their certificate and key, in
// their private directory.
const (
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
)

// writeServerCertificate makes a self-signed ECDSA P-256 certificate for
// host (an IP address) and localhost, valid from an hour ago for a day,
// and writes it and its key to dir/server.crt and dir/server.key, readable
// by their owner only and handed to cred's user when cred is set (both
// servers refuse a key others can read). It returns the certificate, which
// clients use as their only root.
func writeServerCertificate(dir, host, commonName string, cred *syscall.Credential) (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP(host)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating tls certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing tls certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding tls key: %w", err)
	}
	files := []struct {
		name  string
		block *pem.Block
	}{
		{serverCertFile, &pem.Block{Type: "CERTIFICATE", Bytes: der}},
		{serverKeyFile, &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}},
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, pem.EncodeToMemory(f.block), 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.name, err)
		}
		if cred != nil {
			if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("handing %s to uid %d: %w", f.name, cred.Uid, err)
			}
		}
	}
	return cert, nil
}
