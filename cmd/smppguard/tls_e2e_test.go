package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// writeServerCert makes a CA and a server certificate for 127.0.0.1 and returns the CA pool
// and the cert and key paths.
func writeServerCert(t *testing.T, dir string) (*x509.CertPool, string, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "smppguard"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPath, keyPath := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, certPath, keyPath
}

// The ESME listener over TLS, through the real binary: a TLS client binds and submits, a
// plain TCP client gets no bind.
func TestE2EListenerTLS(t *testing.T) {
	dir := t.TempDir()
	pool, certPath, keyPath := writeServerCert(t, dir)
	smsc := startSMSC(t, fakesmsc.Config{})
	cfg := strings.Replace(readFile(t, writeConfig(t, smsc.Addr())), "listen:\n  smpp: 127.0.0.1:0\n",
		"listen:\n  smpp: 127.0.0.1:0\n  tls: {cert_file: "+certPath+", key_file: "+keyPath+"}\n", 1)
	path := filepath.Join(dir, "tls.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	p := startBinary(t, "serve", "-c", path)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bind, _ := smpp.BindParams{SystemID: "bank", Password: "bankpw"}.Encode(smpp.BindTransceiver, 0)
	bp, _ := smpp.Parse(bind)
	s, _, err := smpp.DialWith(ctx, &tls.Dialer{Config: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, p.addr, bp, nil, smpp.Config{EnquireLinkInterval: -1})
	if err != nil {
		t.Fatalf("TLS bind: %v", err)
	}
	defer s.Close()
	sm, _ := smpp.NewBuilder(smpp.SubmitSM, 0, 0).CString("").Int(5).Int(0).CString("BANK").Int(1).Int(1).CString("447700900003").
		Int(0).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).ShortMessage([]byte("hello")).PDU()
	if r, err := s.Request(ctx, sm); err != nil || r.Status() != smpp.StatusOK {
		t.Fatalf("submit over TLS: %v %v", r, err)
	}
	bp2, _ := smpp.Parse(bind)
	if _, _, err := smpp.Dial(ctx, p.addr, bp2, nil, smpp.Config{BindTimeout: time.Second, ResponseTimeout: time.Second}); err == nil {
		t.Fatal("a plain TCP bind succeeded on the TLS listener")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
