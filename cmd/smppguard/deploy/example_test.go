// Tests that keep the deployment files in this folder consistent with the code: the example
// config loads and validates, the systemd unit outlasts the drain, and the Grafana dashboard
// is valid JSON using only smppguard's metric names.
package deploy_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/smppguard/smppguard/config"
)

const (
	examplePath = "smppguard.example.yaml"
	keyPath     = "/etc/smppguard/camara-key.pem"
)

// writeKey writes a fresh P-256 private key, PEM-encoded, readable only by the owner.
func writeKey(t *testing.T, path string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is subject to the umask; make sure it is exactly 0600.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

// exampleCopy writes the example config to a temporary directory with the CAMARA key path
// pointing at a generated key there, and returns the copy's path.
func exampleCopy(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "private_key_file: "+keyPath) {
		t.Fatalf("%s no longer names %s as the private key file", examplePath, keyPath)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "camara-key.pem")
	writeKey(t, key)
	path := filepath.Join(dir, "smppguard.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(data), keyPath, key)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExampleConfigLoads(t *testing.T) {
	t.Setenv("SMSC_PASSWORD", "x")
	t.Setenv("VOICE_PASSWORD", "y")
	t.Setenv("CAMARA_SECRET", "z")
	t.Setenv("SMPPGUARD_ADMIN_TOKEN", "tok")

	cfg, err := config.Load(exampleCopy(t))
	if err != nil {
		t.Fatalf("example config does not validate:\n%v", err)
	}

	if cfg.Sandbox.FakeSMSC != nil || cfg.Sandbox.FakeCarrier != nil {
		t.Error("the production example must not start sandbox helpers")
	}
	if u := cfg.Upstream("carrier"); u == nil || u.Password != "x" || u.BindType != config.BindTxRx || u.TPS <= 0 {
		t.Errorf("upstream carrier = %+v; want tx_rx with a TPS and password from ${SMSC_PASSWORD}", u)
	}
	if u := cfg.Upstream("voicegw"); u == nil || u.Password != "y" {
		t.Errorf("upstream voicegw = %+v; want password from ${VOICE_PASSWORD}", u)
	}
	if a := cfg.Account("bank"); a == nil || a.Mode != config.ModePooled || !config.IsBcrypt(a.Password) || len(a.AllowedCIDRs) == 0 || a.Policy == "" {
		t.Errorf("account bank = %+v; want pooled, a bcrypt password, allowed_cidrs and a policy", a)
	}
	var passthrough bool
	for _, a := range cfg.Accounts {
		passthrough = passthrough || a.Mode == config.ModePassthrough
	}
	if !passthrough {
		t.Error("the example should show a passthrough account")
	}
	if len(cfg.MORules) == 0 {
		t.Error("the example should show mo_rules")
	}

	if len(cfg.Providers) != 1 {
		t.Fatalf("providers = %d; want 1", len(cfg.Providers))
	}
	pv := cfg.Providers[0]
	if pv.Type != config.ProviderCAMARA || pv.Auth.Method != "private_key_jwt" || pv.Auth.Purpose != "dpv:FraudPreventionAndDetection" || len(pv.Auth.Scopes) == 0 {
		t.Errorf("provider = %+v; want camara with private_key_jwt, scopes and the fraud-prevention purpose", pv)
	}

	pl := cfg.Policy(cfg.Account("bank").Policy)
	if pl == nil {
		t.Fatal("bank's policy is not defined")
	}
	got := map[string]config.Outcome{}
	for _, ch := range pl.Checks {
		got[ch.Signal] = ch.OnRisk
	}
	if o := got[config.SignalSimSwap]; o.Action != config.ActionReject {
		t.Errorf("sim_swap on_risk = %+v; want reject", o)
	}
	if o := got[config.SignalCallForwarding]; o.Action != config.ActionReroute || o.Route != "voice" {
		t.Errorf("call_forwarding on_risk = %+v; want reroute to voice", o)
	}

	if cfg.OTP.AuditFile == "" {
		t.Error("otp.audit_file should be set")
	}
	if cfg.Log.Format != "json" {
		t.Errorf("log.format = %q; want json", cfg.Log.Format)
	}
	if cfg.Listen.Lockout.Failures == 0 {
		t.Error("listen.lockout should be enabled")
	}

	// The service manager must wait longer than the drain before it kills smppguard.
	if stop := unitTimeoutStop(t); stop <= cfg.Relay.DrainTimeout.D() {
		t.Errorf("smppguard.service TimeoutStopSec=%s does not exceed relay.drain_timeout %s", stop, cfg.Relay.DrainTimeout)
	}
}

// TestExampleConfigNeedsEnv proves the secrets are ${ENV} references, not literals.
func TestExampleConfigNeedsEnv(t *testing.T) {
	if _, set := os.LookupEnv("SMSC_PASSWORD"); set {
		t.Skip("SMSC_PASSWORD is set in the environment")
	}
	t.Setenv("SMPPGUARD_ADMIN_TOKEN", "tok")
	t.Setenv("VOICE_PASSWORD", "y")
	_, err := config.Load(exampleCopy(t))
	if err == nil || !strings.Contains(err.Error(), "SMSC_PASSWORD") {
		t.Fatalf("loading without SMSC_PASSWORD: err = %v; want an error naming it", err)
	}
}

// unitTimeoutStop returns TimeoutStopSec from smppguard.service.
func unitTimeoutStop(t *testing.T) time.Duration {
	t.Helper()
	f, err := os.Open("smppguard.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "TimeoutStopSec="); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				d, err = time.ParseDuration(v + "s")
			}
			if err != nil {
				t.Fatalf("TimeoutStopSec=%s: %v", v, err)
			}
			return d
		}
	}
	t.Fatal("smppguard.service has no TimeoutStopSec")
	return 0
}

// Metric names the admin listener exports (cmd/smppguard/admin/metrics.go).
var knownMetrics = map[string]bool{
	"smppguard_relay_events_total":             true,
	"smppguard_receiver_queue_depth":           true,
	"smppguard_esme_sessions":                  true,
	"smppguard_esme_pdus_total":                true,
	"smppguard_upstream_binds":                 true,
	"smppguard_upstream_reconnects_total":      true,
	"smppguard_otp_messages_total":             true,
	"smppguard_otp_decisions_total":            true,
	"smppguard_lookups_total":                  true,
	"smppguard_lookup_errors_total":            true,
	"smppguard_lookup_breaker_open":            true,
	"smppguard_lookup_breaker_opens_total":     true,
	"smppguard_ready":                          true,
	"smppguard_bind_refusals_total":            true,
	"smppguard_esme_connections":               true,
	"smppguard_esme_connections_limit":         true,
	"smppguard_esme_connections_refused_total": true,
	"smppguard_account_max_binds":              true,
	"smppguard_queue_overflows_total":          true,
}

func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title         string `json:"title"`
		UID           string `json:"uid"`
		SchemaVersion int    `json:"schemaVersion"`
		Panels        []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if dash.SchemaVersion != 39 || dash.UID == "" || dash.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q; want 39 and both set", dash.SchemaVersion, dash.UID, dash.Title)
	}
	name := regexp.MustCompile(`smppguard_[a-z_]+`)
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				if !knownMetrics[m] {
					t.Errorf("panel %q uses unknown metric %s", p.Title, m)
				}
				used[m] = true
			}
		}
	}
	for m := range knownMetrics {
		if !used[m] && m != "smppguard_lookup_breaker_opens_total" {
			t.Errorf("no panel shows %s", m)
		}
	}
}
