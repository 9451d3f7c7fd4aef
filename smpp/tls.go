package smpp

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// TLSFiles describes certificate files for the ESME listener or an upstream link. The
// certificate and key are reloaded when the files change (see CertReloader); the CA bundle
// is read once, when the tls.Config is built.
type TLSFiles struct {
	// CertFile and KeyFile are PEM files: the server's certificate chain and key (listener,
	// required) or the client's (upstream, optional; both or neither).
	CertFile, KeyFile string
	// CAFile is a PEM bundle. Listener: client certificates are verified against it
	// (required when ClientAuth; without ClientAuth a client certificate is optional but
	// verified when presented). Upstream: the SMSC is verified against it; empty = system roots.
	CAFile string
	// ClientAuth (listener) requires and verifies a client certificate.
	ClientAuth bool
	// ServerName (upstream) is the SNI and verification name; default the host of the address.
	ServerName string
	// InsecureSkipVerify (upstream) skips the SMSC's certificate verification: for lab
	// SMSCs only; a warning is logged when the config is built.
	InsecureSkipVerify bool
	// Logger receives the InsecureSkipVerify warning and certificate reload events. Optional.
	Logger *zap.Logger
}

// certCheckInterval bounds how often a CertReloader looks at its files.
const certCheckInterval = time.Second

type fileStamp struct {
	mod  time.Time
	size int64
}

// CertReloader serves a certificate that is re-read from disk when the files' mtime or size
// changes (checked at most once per second, on handshake); a bad new file keeps the last
// good certificate and records the error (LastError). It is safe for concurrent use.
type CertReloader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *zap.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp fileStamp
	keyStamp  fileStamp
	checked   time.Time
	lastErr   error
}

// NewCertReloader loads the certificate chain and key once; the error names the file at fault.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	return newCertReloader(certFile, keyFile, nil)
}

func newCertReloader(certFile, keyFile string, log *zap.Logger) (*CertReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("smpp: tls: certificate and key files are both required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, interval: certCheckInterval, log: log}
	cs, ks, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.certStamp, r.keyStamp, r.checked = cert, cs, ks, time.Now()
	return r, nil
}

func statFile(name string) (fileStamp, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return fileStamp{}, fmt.Errorf("smpp: tls: %w", err) // *PathError names the file
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

func (r *CertReloader) stat() (cs, ks fileStamp, err error) {
	if cs, err = statFile(r.certFile); err != nil {
		return
	}
	ks, err = statFile(r.keyFile)
	return
}

// loadKeyPair reads and checks a PEM certificate chain and its key; errors name the file.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("smpp: tls: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("smpp: tls: %w", err)
	}
	// Check the chain on its own first, so a bad certificate file is named as such.
	n := 0
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return nil, fmt.Errorf("smpp: tls: certificate file %s: %w", certFile, err)
		}
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("smpp: tls: certificate file %s: no PEM CERTIFICATE block", certFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("smpp: tls: key file %s (for %s): %w", keyFile, certFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("smpp: tls: certificate file %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

// current returns the certificate, first reloading it when the check interval passed and
// the files changed.
func (r *CertReloader) current() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= r.interval {
		r.checked = now
		r.reloadLocked(false)
	}
	return r.cert
}

// reloadLocked re-reads the files when they changed (or always when force). The stamps of
// an attempt are kept even when it fails, so a bad file is retried only once it changes again.
func (r *CertReloader) reloadLocked(force bool) error {
	cs, ks, err := r.stat()
	if err != nil {
		if r.lastErr == nil || r.lastErr.Error() != err.Error() {
			r.log.Error("smpp: tls: certificate reload failed; keeping the current one", zap.Error(err))
		}
		r.lastErr = err
		return err
	}
	if !force && cs == r.certStamp && ks == r.keyStamp {
		return nil
	}
	r.certStamp, r.keyStamp = cs, ks
	cert, err := loadKeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.lastErr = err
		r.log.Error("smpp: tls: certificate reload failed; keeping the current one", zap.Error(err))
		return err
	}
	r.cert, r.lastErr = cert, nil
	r.log.Info("smpp: tls: certificate reloaded", zap.String("cert_file", r.certFile),
		zap.String("subject", cert.Leaf.Subject.String()), zap.String("serial", cert.Leaf.SerialNumber.String()),
		zap.Time("not_after", cert.Leaf.NotAfter))
	return nil
}

// Reload re-reads the files now, whether or not they changed (for SIGHUP or an admin
// action). On error the current certificate is kept and the error is also LastError.
func (r *CertReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = time.Now()
	return r.reloadLocked(true)
}

// Certificate returns the certificate currently served (Leaf is set), without checking the files.
func (r *CertReloader) Certificate() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.current(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate.
func (r *CertReloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.current(), nil
}

// LastError returns the error of the last reload attempt, nil when it succeeded (or none
// was needed yet).
func (r *CertReloader) LastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

func loadCAPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("smpp: tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("smpp: tls: CA file %s: no PEM certificate", file)
	}
	return pool, nil
}

// ServerTLSConfig returns the ESME listener's config: TLS 1.2 minimum, Go's default
// (secure) cipher suites, the certificate from a CertReloader, and client-certificate
// verification against CAFile (required when ClientAuth). Wrap the listener with
// tls.NewListener; the handshake then runs on the session's first read, bounded by the
// session's BindTimeout.
func ServerTLSConfig(f TLSFiles) (*tls.Config, error) {
	cfg, _, err := NewServerTLS(f)
	return cfg, err
}

// NewServerTLS is ServerTLSConfig that also returns the reloader (for LastError, Reload).
func NewServerTLS(f TLSFiles) (*tls.Config, *CertReloader, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, nil, errors.New("smpp: tls: listener needs cert_file and key_file")
	}
	if f.ClientAuth && f.CAFile == "" {
		return nil, nil, errors.New("smpp: tls: client_auth needs ca_file")
	}
	r, err := newCertReloader(f.CertFile, f.KeyFile, f.Logger)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
	}
	if f.CAFile != "" {
		if cfg.ClientCAs, err = loadCAPool(f.CAFile); err != nil {
			return nil, nil, err
		}
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if f.ClientAuth {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, r, nil
}

// ClientTLSConfig returns an upstream link's config for the SMSC at addr: TLS 1.2 minimum,
// RootCAs from CAFile (system roots when empty), ServerName (default the host of addr; an
// IP is verified against the certificate's IP SANs) and, when CertFile is set, a client
// certificate from a CertReloader. Use it as LinkConfig.TLS, or with DialWith and a tls.Dialer.
func ClientTLSConfig(f TLSFiles, addr string) (*tls.Config, error) {
	cfg, _, err := NewClientTLS(f, addr)
	return cfg, err
}

// NewClientTLS is ClientTLSConfig that also returns the reloader (nil without CertFile).
func NewClientTLS(f TLSFiles, addr string) (*tls.Config, *CertReloader, error) {
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, nil, errors.New("smpp: tls: cert_file and key_file go together")
	}
	name := f.ServerName
	if name == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			name = host
		} else {
			name = addr
		}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name}
	if f.CAFile != "" {
		pool, err := loadCAPool(f.CAFile)
		if err != nil {
			return nil, nil, err
		}
		cfg.RootCAs = pool
	}
	var r *CertReloader
	if f.CertFile != "" {
		var err error
		if r, err = newCertReloader(f.CertFile, f.KeyFile, f.Logger); err != nil {
			return nil, nil, err
		}
		cfg.GetClientCertificate = r.GetClientCertificate
	}
	if f.InsecureSkipVerify {
		cfg.InsecureSkipVerify = true
		log := f.Logger
		if log == nil {
			log = zap.NewNop()
		}
		log.Warn("smpp: tls: upstream certificate verification is DISABLED (insecure_skip_verify); lab use only",
			zap.String("addr", addr))
	}
	return cfg, r, nil
}
