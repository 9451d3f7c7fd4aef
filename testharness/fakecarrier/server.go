// Package fakecarrier is a fake mobile carrier API for tests, demos and the sandbox: a real
// HTTP server speaking the CAMARA SIM Swap v2.1, Call Forwarding Signal v0.4, Device Swap v1
// and Device Roaming Status v1.1 APIs, behind an OAuth2 client-credentials token endpoint
// (client_secret_basic, client_secret_post and private_key_jwt) with CAMARA purpose scopes,
// driven by a Scenario that can be changed while it runs.
//
// Request and response bodies, error bodies ({status, code, message}) and the x-correlator
// header follow the OpenAPI files of those releases. Every call is recorded (Calls).
package fakecarrier

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Config configures a fake carrier. Scenario needs at least one client unless NoAuth.
type Config struct {
	Addr           string // listen address; default "127.0.0.1:0"
	Scenario       Scenario
	PathPrefix     string // every endpoint lives under it, e.g. "/camara"; default ""
	RequirePurpose string // e.g. "dpv:FraudPreventionAndDetection"; "" = no purpose check
	NoAuth         bool   // accept API calls without a token (quick demos)
	Now            func() time.Time
	Logger         *zap.Logger
}

// Endpoint names, as recorded in Call.Endpoint and accepted by CallCount and
// InjectedError.Endpoints. CallCount and Endpoints also accept an API name ("sim-swap",
// "call-forwarding-signal", "device-swap", "device-roaming-status"), which stands for all of
// that API's endpoints.
const (
	EndpointSimSwapCheck            = "sim-swap/check"
	EndpointSimSwapRetrieveDate     = "sim-swap/retrieve-date"
	EndpointUnconditionalForwarding = "call-forwarding-signal/unconditional-call-forwardings"
	EndpointCallForwardings         = "call-forwarding-signal/call-forwardings"
	EndpointDeviceSwapCheck         = "device-swap/check"
	EndpointDeviceSwapRetrieveDate  = "device-swap/retrieve-date"
	EndpointRoamingStatus           = "device-roaming-status/retrieve"
	EndpointToken                   = "token"
	EndpointDiscovery               = "discovery"
)

// Token endpoint authentication methods, as recorded in Call.AuthMethod.
const (
	AuthBasic         = "client_secret_basic"
	AuthPost          = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
)

// APIScopes are the scopes of the specs' security sections. SIM Swap and Device Swap accept
// either the operation's scope or the API-wide one ("sim-swap", "device-swap").
var APIScopes = []string{
	"sim-swap", "sim-swap:check", "sim-swap:retrieve-date",
	"call-forwarding-signal:unconditional-call-forwardings:read",
	"call-forwarding-signal:call-forwardings:read",
	"device-swap", "device-swap:check", "device-swap:retrieve-date",
	"device-roaming-status:read",
}

var apiNames = []string{"sim-swap", "call-forwarding-signal", "device-swap", "device-roaming-status"}

var apiEndpoints = []string{
	EndpointSimSwapCheck, EndpointSimSwapRetrieveDate,
	EndpointUnconditionalForwarding, EndpointCallForwardings,
	EndpointDeviceSwapCheck, EndpointDeviceSwapRetrieveDate,
	EndpointRoamingStatus,
}

func validEndpointName(s string) bool {
	for _, e := range apiEndpoints {
		if s == e || s == apiOf(e) {
			return true
		}
	}
	return false
}

// apiOf returns the API name of an endpoint name ("sim-swap" for "sim-swap/check").
func apiOf(endpoint string) string {
	a, _, _ := strings.Cut(endpoint, "/")
	return a
}

// matchEndpoint reports whether the name (endpoint or API) covers endpoint.
func matchEndpoint(name, endpoint string) bool {
	return name == endpoint || (!strings.Contains(name, "/") && name == apiOf(endpoint) && strings.Contains(endpoint, "/"))
}

// Call is one request the server received.
type Call struct {
	Time          time.Time
	Endpoint      string // an Endpoint* constant
	Path          string // the request path, prefix included
	PhoneNumber   string // as given in the request body ("" if none)
	CorrelationID string // x-correlator received
	Status        int    // HTTP status answered; 0 = no answer (client gave up, or server closed)
	Code          string // CAMARA error code or OAuth2 error answered; "" on success
	ClientID      string // the token's client (API calls) or the authenticated client (token calls)
	AuthMethod    string // token calls: client authentication method used
	Duration      time.Duration
}

// maxCalls bounds the calls kept in memory; older ones are dropped (CallCount still counts them).
const maxCalls = 100000

// Server is a running fake carrier.
type Server struct {
	cfg     Config
	log     *zap.Logger
	now     func() time.Time
	ln      net.Listener
	hs      *http.Server
	base    string // scheme://host:port
	prefix  string
	clients map[string]*clientState

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
	served    chan struct{}

	mu      sync.Mutex
	numbers map[string]Number
	def     Number
	errUsed map[string]int // injected errors served per number
	tokens  map[string]token
	jtis    map[string]time.Time // client + "\x00" + jti -> assertion expiry
	calls   []*Call
	counts  map[string]int // per endpoint
}

type token struct {
	clientID string
	scopes   map[string]bool
	expires  time.Time
}

// Start listens on cfg.Addr and serves until Close or until ctx is cancelled. It returns once
// the listener is ready.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	prefix := strings.TrimRight(cfg.PathPrefix, "/")
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	if strings.ContainsAny(prefix, "?#% ") {
		return nil, fmt.Errorf("fakecarrier: PathPrefix %q: want a plain path such as /camara", cfg.PathPrefix)
	}
	if p := cfg.RequirePurpose; p != "" && (!strings.HasPrefix(p, "dpv:") || len(p) == 4 || strings.ContainsAny(p, " \t")) {
		return nil, fmt.Errorf("fakecarrier: RequirePurpose %q: want a dpv: purpose scope such as dpv:FraudPreventionAndDetection", p)
	}
	sc := cfg.Scenario
	clients, err := sc.compile()
	if err != nil {
		return nil, fmt.Errorf("fakecarrier: scenario: %w", err)
	}
	if len(clients) == 0 && !cfg.NoAuth {
		return nil, errors.New("fakecarrier: the scenario has no clients: add one, or set NoAuth")
	}
	numbers := make(map[string]Number, len(sc.Numbers))
	for k, v := range sc.Numbers {
		numbers[k] = v
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("fakecarrier: listen: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		now:     cfg.Now,
		ln:      ln,
		prefix:  prefix,
		clients: clients,
		done:    make(chan struct{}),
		served:  make(chan struct{}),
		numbers: numbers,
		def:     sc.Default,
		errUsed: map[string]int{},
		tokens:  map[string]token{},
		jtis:    map[string]time.Time{},
		counts:  map[string]int{},
	}
	s.base = "http://" + urlHost(ln.Addr())
	s.hs = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          mustStdLog(s.log),
	}
	go func() {
		defer close(s.served)
		if err := s.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("fakecarrier: serve", zap.Error(err))
		}
	}()
	if ctx != nil && ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				s.Close()
			case <-s.done:
			}
		}()
	}
	s.log.Info("fakecarrier: listening", zap.String("url", s.URL()), zap.String("token_url", s.TokenURL()))
	return s, nil
}

// mustStdLog adapts the logger for net/http's own messages.
func mustStdLog(l *zap.Logger) *log.Logger {
	sl, err := zap.NewStdLogAt(l, zap.WarnLevel)
	if err != nil {
		return zap.NewStdLog(l)
	}
	return sl
}

// urlHost is addr as a URL host; an unspecified address becomes the loopback one.
func urlHost(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := ta.IP
	if ip == nil || ip.IsUnspecified() {
		if ip.To4() == nil && ip != nil {
			ip = net.IPv6loopback
		} else {
			ip = net.IPv4(127, 0, 0, 1)
		}
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(ta.Port))
}

// URL is the API root: scheme, host, port and PathPrefix, no trailing slash. The APIs live
// at URL()+"/sim-swap/v2" etc.; it is also the issuer of the discovery document.
func (s *Server) URL() string { return s.base + s.prefix }

// TokenURL is the OAuth2 token endpoint.
func (s *Server) TokenURL() string { return s.URL() + "/oauth2/token" }

// DiscoveryURL is the OpenID configuration document.
func (s *Server) DiscoveryURL() string { return s.URL() + "/.well-known/openid-configuration" }

// Addr is the listen address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server: calls waiting on Timeout or Latency are aborted, and Close
// returns once every handler has returned (at most a few seconds).
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := s.hs.Shutdown(ctx); err != nil {
			s.closeErr = s.hs.Close()
		}
		<-s.served
		s.log.Info("fakecarrier: closed")
	})
	return s.closeErr
}

// SetNumber sets (or replaces) a number's state while running and resets its injected
// error count. A state LoadScenario would refuse is used as given, with a warning.
func (s *Server) SetNumber(msisdn string, n Number) {
	if p := n.problems(); len(p) > 0 || !phoneRE.MatchString(msisdn) {
		s.log.Warn("fakecarrier: SetNumber: questionable number state", zap.String("msisdn", msisdn), zap.Strings("problems", p))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.numbers[msisdn] = n
	delete(s.errUsed, msisdn)
}

// DeleteNumber forgets a number: it gets the default state again.
func (s *Server) DeleteNumber(msisdn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.numbers, msisdn)
	delete(s.errUsed, msisdn)
}

// SetDefault sets the state of numbers not listed and resets their injected error counts.
func (s *Server) SetDefault(n Number) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = n
	for k := range s.errUsed {
		if _, listed := s.numbers[k]; !listed {
			delete(s.errUsed, k)
		}
	}
}

// ExpireTokens invalidates every token issued so far; API calls with them get 401.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Calls returns a copy of the calls received so far (at most the latest 100000), oldest
// first. A call is listed from its arrival; Status is filled in when it is answered.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = *c
	}
	return out
}

// CallCount returns how many calls an endpoint (an Endpoint* constant) or an API (e.g.
// "sim-swap": all its endpoints) has received.
func (s *Server) CallCount(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for e, c := range s.counts {
		if matchEndpoint(endpoint, e) {
			n += c
		}
	}
	return n
}

// ResetCalls forgets the recorded calls and counts.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
	clear(s.counts)
}

// record adds a call at its arrival.
func (s *Server) record(c *Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) >= maxCalls {
		n := copy(s.calls, s.calls[maxCalls/10:])
		clear(s.calls[n:])
		s.calls = s.calls[:n]
	}
	s.calls = append(s.calls, c)
	s.counts[c.Endpoint]++
}

// lookup returns a number's state: listed, or the default.
func (s *Server) lookup(msisdn string) Number {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.numbers[msisdn]; ok {
		return n
	}
	return s.def
}

// takeError reports whether the number's injected error answers this call, counting it.
func (s *Server) takeError(msisdn, endpoint string, e *InjectedError) bool {
	if e == nil {
		return false
	}
	if len(e.Endpoints) > 0 {
		ok := false
		for _, name := range e.Endpoints {
			ok = ok || matchEndpoint(name, endpoint)
		}
		if !ok {
			return false
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Times > 0 && s.errUsed[msisdn] >= e.Times {
		return false
	}
	s.errUsed[msisdn]++
	return true
}

// route is one endpoint.
type route struct {
	endpoint string
	method   string
	scopes   []string // any of them authorizes the call (API endpoints)
	api      string
	handle   func(s *Server, x *exchange)
}

var routes = map[string]route{
	"/sim-swap/v2/check":         {EndpointSimSwapCheck, http.MethodPost, []string{"sim-swap:check", "sim-swap"}, "sim-swap", (*Server).simSwapCheck},
	"/sim-swap/v2/retrieve-date": {EndpointSimSwapRetrieveDate, http.MethodPost, []string{"sim-swap:retrieve-date", "sim-swap"}, "sim-swap", (*Server).simSwapDate},
	"/call-forwarding-signal/v0.4/unconditional-call-forwardings": {EndpointUnconditionalForwarding, http.MethodPost,
		[]string{"call-forwarding-signal:unconditional-call-forwardings:read"}, "call-forwarding-signal", (*Server).unconditionalForwarding},
	"/call-forwarding-signal/v0.4/call-forwardings": {EndpointCallForwardings, http.MethodPost,
		[]string{"call-forwarding-signal:call-forwardings:read"}, "call-forwarding-signal", (*Server).callForwardings},
	"/device-swap/v1/check":              {EndpointDeviceSwapCheck, http.MethodPost, []string{"device-swap:check", "device-swap"}, "device-swap", (*Server).deviceSwapCheck},
	"/device-swap/v1/retrieve-date":      {EndpointDeviceSwapRetrieveDate, http.MethodPost, []string{"device-swap:retrieve-date", "device-swap"}, "device-swap", (*Server).deviceSwapDate},
	"/device-roaming-status/v1/retrieve": {EndpointRoamingStatus, http.MethodPost, []string{"device-roaming-status:read"}, "device-roaming-status", (*Server).roamingStatus},
	"/oauth2/token":                      {EndpointToken, http.MethodPost, nil, "", (*Server).token},
	"/.well-known/openid-configuration":  {EndpointDiscovery, http.MethodGet, nil, "", (*Server).discovery},
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	rt, ok := route{}, false
	if rest, found := strings.CutPrefix(p, s.prefix); found && (s.prefix == "" || strings.HasPrefix(rest, "/")) {
		rt, ok = routes[rest]
	}
	x := &exchange{s: s, w: w, r: r, start: time.Now()}
	corr := r.Header.Get("x-correlator")
	if corr != "" && correlatorRE.MatchString(corr) {
		x.corr = corr
		w.Header()["x-correlator"] = []string{corr}
	}
	if !ok {
		x.fail(http.StatusNotFound, "NOT_FOUND", "The specified resource is not found.")
		return
	}
	x.rt = rt
	x.call = &Call{Time: s.now(), Endpoint: rt.endpoint, Path: p, CorrelationID: corr}
	s.record(x.call)
	defer x.finish()
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		x.fail(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "The requested method is not allowed/supported on the target resource.")
		return
	}
	rt.handle(s, x)
}

// wait sleeps d, or until the client gives up (false) or the server closes (the connection
// is aborted). d < 0 waits for one of those only.
func (x *exchange) wait(d time.Duration) bool {
	var tc <-chan time.Time
	if d >= 0 {
		if d == 0 {
			return true
		}
		t := time.NewTimer(d)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-tc:
		return true
	case <-x.r.Context().Done():
		return false
	case <-x.s.done:
		x.aborted = true
		panic(http.ErrAbortHandler)
	}
}
