package smpp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is an in-memory certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key: a server certificate for 127.0.0.1 (IP SAN) or
// a client certificate.
func (ca *testCA) issue(t *testing.T, serial int64, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.Subject.CommonName = "smppguard"
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

var tlsFileTime = time.Now()

// writeTLSFile replaces name atomically and gives it a fresh mtime, so a reloader sees the
// change even on file systems with coarse timestamps.
func writeTLSFile(t *testing.T, name string, data []byte) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsFileTime = tlsFileTime.Add(time.Second)
	if err := os.Chtimes(tmp, tlsFileTime, tlsFileTime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// tlsPair writes a certificate and key into dir and returns their paths.
func tlsPair(t *testing.T, dir, prefix string, certPEM, keyPEM []byte) (string, string) {
	t.Helper()
	c, k := filepath.Join(dir, prefix+".crt"), filepath.Join(dir, prefix+".key")
	writeTLSFile(t, c, certPEM)
	writeTLSFile(t, k, keyPEM)
	return c, k
}

type tlsEnv struct {
	dir                 string
	ca, other           *testCA
	caFile              string
	srvCert, srvKey     string
	cliCert, cliKey     string
	otherCert, otherKey string
	srvReloader         *CertReloader
	addr                string
	srv                 *Server
}

// newTLSEnv generates a CA (and a foreign one), server and client certificates, and serves
// SMPP over TLS on 127.0.0.1 with ServerTLSConfig. The handler accepts every bind and
// answers submit_sm.
func newTLSEnv(t *testing.T, clientAuth bool) *tlsEnv {
	t.Helper()
	e := &tlsEnv{dir: t.TempDir(), ca: newTestCA(t, "test CA"), other: newTestCA(t, "other CA")}
	e.caFile = filepath.Join(e.dir, "ca.pem")
	writeTLSFile(t, e.caFile, e.ca.pem)
	c, k := e.ca.issue(t, 100, true)
	e.srvCert, e.srvKey = tlsPair(t, e.dir, "server", c, k)
	c, k = e.ca.issue(t, 200, false)
	e.cliCert, e.cliKey = tlsPair(t, e.dir, "client", c, k)
	c, k = e.other.issue(t, 300, false)
	e.otherCert, e.otherKey = tlsPair(t, e.dir, "other", c, k)

	cfg, r, err := NewServerTLS(TLSFiles{CertFile: e.srvCert, KeyFile: e.srvKey, CAFile: e.caFile, ClientAuth: clientAuth})
	if err != nil {
		t.Fatal(err)
	}
	e.srvReloader = r
	serve := HandlerFunc(func(s *Session, p *PDU) {
		switch {
		case p.ID().IsBind():
			s.AcceptBind(p, StatusOK, p.CString(FieldSystemID))
		case p.ID() == SubmitSM:
			s.Respond(p, StatusOK, "id-"+p.CString(FieldDestinationAddr))
		default:
			s.Respond(p, StatusOK, "")
		}
	})
	e.srv = &Server{Session: Config{BindTimeout: 5 * time.Second}, NewHandler: func(*Session) Handler { return serve },
		AcceptConn: func(c net.Conn) bool {
			_, ok := c.(*tls.Conn)
			return ok
		}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.srv.Serve(ctx, tls.NewListener(ln, cfg)); close(done) }()
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		e.srv.Shutdown(sctx)
		cancel()
		<-done
	})
	return e
}

func (e *tlsEnv) clientConfig(t *testing.T, f TLSFiles) *tls.Config {
	t.Helper()
	cfg, err := ClientTLSConfig(f, e.addr)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// dialTLS binds a transceiver over TLS with DialWith.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (*Session, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bind := mustPDU(t, mustB(BindParams{SystemID: "bank", Password: "pw"}.Encode(BindTransceiver, 0)))
	s, _, err := DialWith(ctx, &tls.Dialer{Config: cfg}, addr, bind, nil, Config{})
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// handshake opens a raw TLS connection and returns the server's leaf serial, or the error
// of the handshake or of the first read (a TLS 1.3 server rejects a client certificate
// after the client's handshake is done).
func handshake(t *testing.T, addr string, cfg *tls.Config) (*big.Int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	tc := c.(*tls.Conn)
	// An enquire_link before bind is answered (or refused) by the session: a read proves
	// the server accepted the handshake.
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.Write(HeaderOnly(EnquireLink, StatusOK, 1)); err != nil {
		return nil, err
	}
	if _, err := tc.Read(make([]byte, 16)); err != nil {
		return nil, err
	}
	return tc.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func submitOK(t *testing.T, s *Session) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := s.Request(ctx, mustPDU(t, submitSM(t, 0, "x")))
	if err != nil || resp.Status() != StatusOK {
		t.Fatalf("submit over TLS: %v %v", resp, err)
	}
}

// A Link with ClientTLSConfig (client certificate, private CA) binds to a Server on a
// tls.NewListener with ServerTLSConfig (client certificate required) and a submit round-trips.
func TestTLSLinkSubmit(t *testing.T) {
	e := newTLSEnv(t, true)
	cfg := e.clientConfig(t, TLSFiles{CertFile: e.cliCert, KeyFile: e.cliKey, CAFile: e.caFile})
	if cfg.ServerName != "127.0.0.1" || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("client config: ServerName %q MinVersion %x", cfg.ServerName, cfg.MinVersion)
	}
	l := NewLink(LinkConfig{Name: "tls", Addr: e.addr, Bind: BindParams{SystemID: "p"}, TLS: cfg,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l.Start(ctx)
	defer l.Close(ctx)
	ch := make(chanHandler, 1)
	if err := l.Send(ctx, mustPDU(t, submitSM(t, 0, "x")), ch, Ref{}); err != nil {
		t.Fatalf("send: %v (health %+v)", err, l.Health())
	}
	if r := <-ch; r.err != nil || r.p.Status() != StatusOK || r.p.CString(FieldMessageID) != "id-447700900123" {
		t.Fatalf("submit_sm_resp over TLS: %+v", r)
	}
	if n := len(e.srv.Sessions()); n != 1 {
		t.Fatalf("server sessions: %d", n)
	}
}

// With ClientAuth, a client without a certificate, or with one from another CA, is refused.
func TestTLSClientCertRequired(t *testing.T) {
	e := newTLSEnv(t, true)
	good := e.clientConfig(t, TLSFiles{CertFile: e.cliCert, KeyFile: e.cliKey, CAFile: e.caFile})
	if _, err := handshake(t, e.addr, good); err != nil {
		t.Fatalf("client with a good certificate: %v", err)
	}
	none := e.clientConfig(t, TLSFiles{CAFile: e.caFile})
	if _, err := handshake(t, e.addr, none); err == nil {
		t.Fatal("client without a certificate was accepted")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("client without a certificate: unexpected error %v", err)
	} else {
		t.Logf("client without a certificate: %v", err)
	}
	if _, err := dialTLS(t, e.addr, none); err == nil {
		t.Fatal("client without a certificate bound")
	}
	foreign := e.clientConfig(t, TLSFiles{CertFile: e.otherCert, KeyFile: e.otherKey, CAFile: e.caFile})
	if _, err := handshake(t, e.addr, foreign); err == nil {
		t.Fatal("client with a foreign CA's certificate was accepted")
	} else {
		t.Logf("foreign client certificate: %v", err)
	}
	if _, err := dialTLS(t, e.addr, foreign); err == nil {
		t.Fatal("client with a foreign CA's certificate bound")
	}
	// Without ClientAuth but with a CA file, no certificate is fine and a foreign one is not.
	e2 := newTLSEnv(t, false)
	if _, err := handshake(t, e2.addr, e2.clientConfig(t, TLSFiles{CAFile: e2.caFile})); err != nil {
		t.Fatalf("optional client certificate, none given: %v", err)
	}
	if _, err := handshake(t, e2.addr, e2.clientConfig(t, TLSFiles{CertFile: e2.otherCert, KeyFile: e2.otherKey, CAFile: e2.caFile})); err == nil {
		t.Fatal("optional client certificate: a foreign one was accepted")
	}
}

// The upstream side verifies the SMSC: a wrong ServerName, or no CA file (system roots),
// fails; InsecureSkipVerify connects anyway.
func TestTLSServerVerification(t *testing.T) {
	e := newTLSEnv(t, false)
	wrong := e.clientConfig(t, TLSFiles{CAFile: e.caFile, ServerName: "smsc.example.com"})
	_, err := dialTLS(t, e.addr, wrong)
	var he x509.HostnameError
	if !errors.As(err, &he) {
		t.Fatalf("wrong ServerName: want a HostnameError, got %v", err)
	}
	_, err = dialTLS(t, e.addr, e.clientConfig(t, TLSFiles{}))
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &ua) {
		t.Fatalf("system roots: want an UnknownAuthorityError, got %v", err)
	}
	s, err := dialTLS(t, e.addr, e.clientConfig(t, TLSFiles{InsecureSkipVerify: true, ServerName: "smsc.example.com"}))
	if err != nil {
		t.Fatalf("InsecureSkipVerify: %v", err)
	}
	submitOK(t, s)
	// An explicit ServerName matching the certificate works.
	s, err = dialTLS(t, e.addr, e.clientConfig(t, TLSFiles{CAFile: e.caFile, ServerName: "127.0.0.1"}))
	if err != nil {
		t.Fatal(err)
	}
	submitOK(t, s)
}

// Replacing the server's cert/key files serves the new certificate to new connections while
// an existing session keeps working; a broken replacement keeps the last good certificate
// and LastError reports it.
func TestTLSCertReload(t *testing.T) {
	e := newTLSEnv(t, false)
	e.srvReloader.mu.Lock()
	e.srvReloader.interval = 0 // check on every handshake; the throttle has its own test
	e.srvReloader.mu.Unlock()
	cfg := e.clientConfig(t, TLSFiles{CAFile: e.caFile})
	old, err := dialTLS(t, e.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sn, err := handshake(t, e.addr, cfg); err != nil || sn.Int64() != 100 {
		t.Fatalf("first serial %v, %v", sn, err)
	}

	c, k := e.ca.issue(t, 101, true)
	tlsPair(t, e.dir, "server", c, k)
	if sn, err := handshake(t, e.addr, cfg); err != nil || sn.Int64() != 101 {
		t.Fatalf("after reload: serial %v, %v", sn, err)
	}
	if err := e.srvReloader.LastError(); err != nil {
		t.Fatalf("LastError after a good reload: %v", err)
	}
	submitOK(t, old) // the session opened under the old certificate goes on

	writeTLSFile(t, e.srvCert, []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"))
	if sn, err := handshake(t, e.addr, cfg); err != nil || sn.Int64() != 101 {
		t.Fatalf("after a broken replacement: serial %v, %v", sn, err)
	}
	if err := e.srvReloader.LastError(); err == nil || !strings.Contains(err.Error(), e.srvCert) {
		t.Fatalf("LastError after a broken replacement: %v", err)
	}
	// A key that does not match the certificate is also refused, naming the key file.
	c2, _ := e.ca.issue(t, 102, true)
	_, k2 := e.ca.issue(t, 103, true)
	tlsPair(t, e.dir, "server", c2, k2)
	if sn, err := handshake(t, e.addr, cfg); err != nil || sn.Int64() != 101 {
		t.Fatalf("after a mismatched key: serial %v, %v", sn, err)
	}
	if err := e.srvReloader.LastError(); err == nil || !strings.Contains(err.Error(), e.srvKey) {
		t.Fatalf("LastError after a mismatched key: %v", err)
	}
	c, k = e.ca.issue(t, 104, true)
	tlsPair(t, e.dir, "server", c, k)
	if sn, err := handshake(t, e.addr, cfg); err != nil || sn.Int64() != 104 {
		t.Fatalf("after fixing the files: serial %v, %v", sn, err)
	}
	if err := e.srvReloader.LastError(); err != nil {
		t.Fatalf("LastError after fixing the files: %v", err)
	}
	submitOK(t, old)
}

// The reloader looks at the files at most once per interval; Reload forces a look, and the
// client side (GetClientCertificate) reloads too.
func TestCertReloaderThrottleAndReload(t *testing.T) {
	ca := newTestCA(t, "ca")
	dir := t.TempDir()
	c, k := ca.issue(t, 1, false)
	cf, kf := tlsPair(t, dir, "c", c, k)
	r, err := NewCertReloader(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		cert, err := r.GetClientCertificate(&tls.CertificateRequestInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return cert.Leaf.SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d", s)
	}
	c, k = ca.issue(t, 2, false)
	tlsPair(t, dir, "c", c, k)
	if s := serial(); s != 1 {
		t.Fatalf("reloaded within the check interval: serial %d", s)
	}
	r.mu.Lock()
	r.checked = r.checked.Add(-certCheckInterval) // as if a second passed
	r.mu.Unlock()
	if s := serial(); s != 2 {
		t.Fatalf("not reloaded after the check interval: serial %d", s)
	}
	c, k = ca.issue(t, 3, false)
	tlsPair(t, dir, "c", c, k)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if cert, _ := r.GetCertificate(&tls.ClientHelloInfo{}); cert.Leaf.SerialNumber.Int64() != 3 {
		t.Fatalf("Reload: serial %d", cert.Leaf.SerialNumber.Int64())
	}
	if err := os.Remove(kf); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil || !strings.Contains(err.Error(), kf) {
		t.Fatalf("Reload with the key gone: %v", err)
	}
	if r.Certificate().Leaf.SerialNumber.Int64() != 3 || r.LastError() == nil {
		t.Fatal("a failed Reload dropped the certificate or forgot the error")
	}
}

// Construction errors name the file at fault.
func TestCertReloaderErrors(t *testing.T) {
	ca := newTestCA(t, "ca")
	dir := t.TempDir()
	c, k := ca.issue(t, 1, true)
	cf, kf := tlsPair(t, dir, "s", c, k)
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	writeTLSFile(t, garbage, []byte("hello"))
	_, k2 := ca.issue(t, 2, true)
	_, otherKey := tlsPair(t, dir, "o", c, k2)
	for _, tc := range []struct{ cert, key, want string }{
		{missing, kf, missing},
		{cf, missing, missing},
		{garbage, kf, garbage},
		{cf, garbage, garbage},
		{cf, otherKey, otherKey},
		{kf, kf, kf},
	} {
		if _, err := NewCertReloader(tc.cert, tc.key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewCertReloader(%s, %s): %v, want an error naming %s", tc.cert, tc.key, err, tc.want)
		}
	}
	if _, err := ServerTLSConfig(TLSFiles{CertFile: cf, KeyFile: kf, ClientAuth: true}); err == nil {
		t.Error("ClientAuth without a CA file accepted")
	}
	if _, err := ServerTLSConfig(TLSFiles{}); err == nil {
		t.Error("listener without a certificate accepted")
	}
	if _, err := ServerTLSConfig(TLSFiles{CertFile: cf, KeyFile: kf, CAFile: garbage}); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Errorf("bad CA file: %v", err)
	}
	if _, err := ClientTLSConfig(TLSFiles{CertFile: cf}, "h:1"); err == nil {
		t.Error("client certificate without a key accepted")
	}
	cfg, err := ServerTLSConfig(TLSFiles{CertFile: cf, KeyFile: kf})
	if err != nil || cfg.MinVersion != tls.VersionTLS12 || cfg.ClientAuth != tls.NoClientCert || cfg.CipherSuites != nil {
		t.Errorf("server defaults: %v %+v", err, cfg)
	}
	if cfg, _ := ClientTLSConfig(TLSFiles{}, "smsc.example.com:3550"); cfg.ServerName != "smsc.example.com" || cfg.RootCAs != nil {
		t.Errorf("client defaults: ServerName %q", cfg.ServerName)
	}
}

// TLS 1.1 is refused in both directions.
func TestTLSVersion11Refused(t *testing.T) {
	e := newTLSEnv(t, false)
	old := e.clientConfig(t, TLSFiles{CAFile: e.caFile})
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, err := handshake(t, e.addr, old); err == nil {
		t.Fatal("TLS 1.1 client accepted")
	} else {
		t.Logf("TLS 1.1 client: %v", err)
	}
	tls12 := e.clientConfig(t, TLSFiles{CAFile: e.caFile})
	tls12.MaxVersion = tls.VersionTLS12
	if _, err := handshake(t, e.addr, tls12); err != nil {
		t.Fatalf("TLS 1.2 client: %v", err)
	}

	// An upstream that only speaks TLS 1.1 is refused by ClientTLSConfig.
	c, k := e.ca.issue(t, 500, true)
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair},
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.(*tls.Conn).Handshake()
		c.Close()
	}()
	cfg, err := ClientTLSConfig(TLSFiles{CAFile: e.caFile}, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialTLS(t, ln.Addr().String(), cfg); err == nil {
		t.Fatal("TLS 1.1 upstream accepted")
	} else {
		t.Logf("TLS 1.1 upstream: %v", err)
	}
}

// The TLS handshake is bounded by the dial (bind) context: a peer that accepts TCP and never
// answers the ClientHello does not hang DialWith or a Link's bind.
func TestTLSHandshakeBoundedByContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c // hold it open, silent
		}
	}()
	defer func() {
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	}()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: "127.0.0.1"}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	bind := mustPDU(t, mustB(BindParams{SystemID: "bank"}.Encode(BindTransceiver, 0)))
	if _, _, err := DialWith(ctx, &tls.Dialer{Config: cfg}, ln.Addr().String(), bind, nil, Config{}); err == nil {
		t.Fatal("bound to a silent peer")
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("handshake to a silent peer took %s", el)
	}

	// The Link's bind uses its BindTimeout for the handshake too.
	errs := make(chan error, 4)
	l := NewLink(LinkConfig{Name: "silent", Addr: ln.Addr().String(), Bind: BindParams{SystemID: "p"}, TLS: cfg,
		Session: Config{BindTimeout: 200 * time.Millisecond}, ReconnectMin: time.Second, ReconnectMax: time.Second,
		OnBind: func(_ *Link, _ *Session, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		}})
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer lcancel()
	start = time.Now()
	l.Start(lctx)
	defer l.Close(lctx)
	select {
	case err := <-errs:
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("link bind to a silent peer failed only after %s: %v", el, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("link bind to a silent TLS peer did not time out")
	}
}
