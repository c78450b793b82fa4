// Command oidcissuer is the end-to-end tests' stand-in for a Kubernetes
// cluster's OIDC issuer: it serves discovery and a JWKS over https with a
// fresh self-signed certificate on 127.0.0.1, writes the issuer's URL and
// certificate thumbprint to DIR/issuer.env, and writes service-account
// tokens (RS256) for default/my-app and default/intruder to DIR. It serves
// until killed or for at most -lifetime.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

func main() {
	dir := flag.String("out", "", "directory to write issuer.env and the tokens to")
	lifetime := flag.Duration("lifetime", 10*time.Minute, "exit after this long")
	flag.Parse()
	if *dir == "" {
		log.Fatal("oidcissuer: -out DIR is required")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	issuer := "https://" + ln.Addr().String() + "/cluster"
	cert, der := selfSigned()
	sum := sha1.Sum(der)
	kid := keyID(&key.PublicKey)

	mux := http.NewServeMux()
	mux.HandleFunc("/cluster/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"issuer": issuer, "jwks_uri": issuer + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"}, "response_types_supported": []string{"id_token"},
			"subject_types_supported": []string{"public"}})
	})
	mux.HandleFunc("/cluster/keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"keys": []map[string]string{{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
			"n": b64(key.PublicKey.N.Bytes()), "e": b64(big.NewInt(int64(key.PublicKey.E)).Bytes())}}})
	})
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 5 * time.Second}

	env := fmt.Sprintf("ISSUER_URL=%s\nISSUER_HOST=%s\nISSUER_THUMBPRINT=%s\n", issuer, issuer[len("https://"):], hex.EncodeToString(sum[:]))
	must(os.WriteFile(filepath.Join(*dir, "issuer.env"), []byte(env), 0o600))
	for _, sa := range []string{"my-app", "intruder"} {
		must(os.WriteFile(filepath.Join(*dir, "token-"+sa+".jwt"), []byte(token(key, kid, issuer, sa)), 0o600))
	}
	go func() { time.Sleep(*lifetime); os.Exit(0) }()
	log.Fatal(srv.ServeTLS(ln, "", ""))
}

// token mints a Kubernetes-shaped projected service-account token.
func token(key *rsa.PrivateKey, kid, issuer, sa string) string {
	now := time.Now()
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	claims, _ := json.Marshal(map[string]any{
		"iss": issuer, "sub": "system:serviceaccount:default:" + sa, "aud": []string{"sts.amazonaws.com"},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": "default",
			"serviceaccount": map[string]string{"name": sa, "uid": "00000000-0000-4000-8000-000000000001"},
			"pod":            map[string]string{"name": sa + "-7d9f8", "uid": "00000000-0000-4000-8000-000000000002"}},
	})
	input := b64(header) + "." + b64(claims)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	must(err)
	return input + "." + b64(sig)
}

func selfSigned() (tls.Certificate, []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sigil e2e issuer"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	must(err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, der
}

func keyID(pub *rsa.PublicKey) string {
	sum := sha256.Sum256(x509.MarshalPKCS1PublicKey(pub))
	return hex.EncodeToString(sum[:8])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
