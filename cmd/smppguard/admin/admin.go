package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// DefaultAddr is the admin listener's address when Config.Addr is empty.
const DefaultAddr = "127.0.0.1:8080"

// Defaults of the request limits.
const (
	DefaultCheckTimeout  = 15 * time.Second
	DefaultReloadTimeout = 30 * time.Second
	DefaultDecisionLimit = 100
)

// Config configures the admin listener.
type Config struct {
	Addr   string // listen address; DefaultAddr when empty
	Token  string // optional bearer token required for everything except /healthz
	Source Source // required
	// Decisions backs /api/v1/decisions; nil answers 404 there.
	Decisions *DecisionLog
	// Registry receives the metrics collector and is served on /metrics; nil: a new one.
	Registry *prometheus.Registry
	Logger   *zap.Logger // nil: no logging
	// CheckTimeout bounds /api/v1/check (DefaultCheckTimeout when 0); ReloadTimeout
	// bounds /api/v1/reload (DefaultReloadTimeout when 0).
	CheckTimeout, ReloadTimeout time.Duration
}

// Server is the admin HTTP listener.
type Server struct {
	cfg     Config
	log     *zap.Logger
	reg     *prometheus.Registry
	handler http.Handler
	token   [sha256.Size]byte

	reloadMu sync.Mutex

	mu      sync.Mutex
	srv     *http.Server
	started bool
	done    chan struct{}
}

// New checks cfg and registers the metrics collector on the registry.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("admin: no Source")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = DefaultCheckTimeout
	}
	if cfg.ReloadTimeout <= 0 {
		cfg.ReloadTimeout = DefaultReloadTimeout
	}
	s := &Server{cfg: cfg, log: cfg.Logger.Named("admin"), reg: cfg.Registry, done: make(chan struct{})}
	if cfg.Token != "" {
		s.token = sha256.Sum256([]byte(cfg.Token))
	}
	if err := s.reg.Register(newCollector(cfg.Source)); err != nil {
		return nil, fmt.Errorf("admin: register metrics: %w", err)
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the admin HTTP handler (auth included), for embedding or tests.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Config.Addr and serves in the background until ctx is done or Shutdown
// is called. It returns the address it listens on (useful with port 0).
func (s *Server) Start(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return "", errors.New("admin: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return "", fmt.Errorf("admin: listen %s: %w", s.cfg.Addr, err)
	}
	s.started = true
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      max(s.cfg.CheckTimeout, s.cfg.ReloadTimeout) + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log),
	}
	srv := s.srv
	addr := ln.Addr().String()
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener failed", zap.Error(err))
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.Shutdown(sctx)
		case <-s.done:
		}
	}()
	s.log.Info("admin listener up", zap.String("addr", addr), zap.Bool("auth", s.cfg.Token != ""))
	return addr, nil
}

// Shutdown stops the listener, letting requests in progress finish until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// routes builds the mux. Paths are matched without a method so that a wrong method gets
// a JSON 405 with an Allow header.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", only(s.healthz, http.MethodGet, http.MethodHead))
	mux.Handle("/readyz", s.auth(only(s.readyz, http.MethodGet, http.MethodHead)))
	mux.Handle("/metrics", s.auth(only(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(s.log), ErrorHandling: promhttp.ContinueOnError,
	}).ServeHTTP, http.MethodGet, http.MethodHead)))
	mux.Handle("/api/v1/sessions", s.auth(only(s.sessions, http.MethodGet)))
	mux.Handle("/api/v1/links", s.auth(only(s.links, http.MethodGet)))
	mux.Handle("/api/v1/decisions", s.auth(only(s.decisions, http.MethodGet)))
	mux.Handle("/api/v1/check", s.auth(only(s.check, http.MethodGet)))
	mux.Handle("/api/v1/reload", s.auth(only(s.reload, http.MethodPost)))
	mux.Handle("/", s.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})))
	return mux
}

// only answers 405 to methods other than those listed.
func only(h http.HandlerFunc, methods ...string) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range methods {
			if r.Method == m {
				h(w, r)
				return
			}
		}
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+allow)
	})
}

// auth requires the bearer token when one is configured; tokens are compared in constant
// time (over their SHA-256, so the length does not leak either).
func (s *Server) auth(h http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="smppguard"`)
			msg := "invalid bearer token"
			if !ok {
				msg = "missing bearer token"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{"encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{msg})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// ReadyResponse is the /readyz body.
type ReadyResponse struct {
	Ready bool   `json:"ready"`
	Why   string `json:"why,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, why := s.cfg.Source.Ready()
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
		if why == "" {
			why = "not ready"
		}
	}
	writeJSON(w, status, ReadyResponse{Ready: ok, Why: why})
}

// SessionsResponse is the /api/v1/sessions body.
type SessionsResponse struct {
	Count    int           `json:"count"`
	Sessions []SessionInfo `json:"sessions"`
}

func (s *Server) sessions(w http.ResponseWriter, _ *http.Request) {
	l := s.cfg.Source.Sessions()
	if l == nil {
		l = []SessionInfo{}
	}
	writeJSON(w, http.StatusOK, SessionsResponse{Count: len(l), Sessions: l})
}

// LinksResponse is the /api/v1/links body.
type LinksResponse struct {
	Count int        `json:"count"`
	Links []LinkInfo `json:"links"`
}

func (s *Server) links(w http.ResponseWriter, _ *http.Request) {
	l := s.cfg.Source.Links()
	if l == nil {
		l = []LinkInfo{}
	}
	writeJSON(w, http.StatusOK, LinksResponse{Count: len(l), Links: l})
}

func (s *Server) decisions(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Decisions == nil {
		writeError(w, http.StatusNotFound, "decision log not configured")
		return
	}
	q := r.URL.Query()
	limit := DefaultDecisionLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit: want a positive integer, got "+strconv.Quote(v))
			return
		}
		limit = n
	}
	limit = min(limit, s.cfg.Decisions.Size())
	recs := s.cfg.Decisions.Recent(q.Get("account"), q.Get("action"), limit)
	writeJSON(w, http.StatusOK, map[string]any{"count": len(recs), "decisions": recs})
}

func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	account, msisdn := strings.TrimSpace(q.Get("account")), strings.TrimSpace(q.Get("msisdn"))
	if msisdn == "" {
		writeError(w, http.StatusBadRequest, "msisdn is required (account is optional: without it, every account with a policy)")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CheckTimeout)
	defer cancel()
	res, err := s.cfg.Source.Check(ctx, account, msisdn)
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrInvalid):
			status = http.StatusBadRequest
		case errors.Is(err, ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(err, context.DeadlineExceeded):
			status = http.StatusGatewayTimeout
		}
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// ReloadResponse is the /api/v1/reload body on success.
type ReloadResponse struct {
	Reloaded bool `json:"reloaded"`
	Summary  any  `json:"summary,omitempty"`
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if !s.reloadMu.TryLock() {
		writeError(w, http.StatusConflict, "a reload is already in progress")
		return
	}
	defer s.reloadMu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReloadTimeout)
	defer cancel()
	summary, err := s.cfg.Source.Reload(ctx)
	if err != nil {
		s.log.Warn("config reload refused", zap.Error(err))
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.log.Info("config reloaded via admin API")
	writeJSON(w, http.StatusOK, ReloadResponse{Reloaded: true, Summary: summary})
}
