package camara

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// subscriber is what the fake carrier knows about one number.
type subscriber struct {
	simSwap, deviceSwap *time.Time // latest swap; nil = none known
	monitored           int        // monitoredPeriod days sent with a null date; 0 = omitted
	forwardings         []string   // call-forwardings answer; nil = ["inactive"]
	roaming             bool
	countryCode         int
	countryName         []string
}

// reply is a canned non-standard answer.
type reply struct {
	status      int
	contentType string
	body        string
	delay       bool // wait for the client to give up
}

// fakeCarrier implements the CAMARA endpoints per the r3.x specs, validating requests
// strictly: method, headers, x-correlator pattern, exact body fields, phoneNumber pattern,
// maxAge range.
type fakeCarrier struct {
	t          *testing.T
	now        time.Time
	phoneField string
	paths      map[string]string // endpoint name → path served
	subs       map[string]subscriber
	replies    map[string]reply // by number: overrides any endpoint

	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	path       string
	correlator string
	body       map[string]any
}

var (
	phonePattern      = regexp.MustCompile(`^\+[1-9][0-9]{4,14}$`)
	correlatorPattern = regexp.MustCompile(`^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$`)
)

func newFakeCarrier(t *testing.T, now time.Time) *fakeCarrier {
	return &fakeCarrier{
		t: t, now: now, phoneField: "phoneNumber", subs: map[string]subscriber{}, replies: map[string]reply{},
		paths: map[string]string{
			"sim-check": DefaultSimSwapCheck, "sim-retrieve": DefaultSimSwapRetrieveDate,
			"cf-uncond": DefaultCallForwardingUnconditional, "cf-list": DefaultCallForwardingList,
			"dev-check": DefaultDeviceSwapCheck, "dev-retrieve": DefaultDeviceSwapRetrieveDate,
			"roaming": DefaultRoamingRetrieve,
		},
	}
}

// start serves the endpoints under prefix (e.g. "/camara") on 127.0.0.1.
func (f *fakeCarrier) start(prefix string) *httptest.Server {
	mux := http.NewServeMux()
	for name, path := range f.paths {
		mux.HandleFunc("POST "+prefix+path, func(w http.ResponseWriter, r *http.Request) { f.serve(name, w, r) })
	}
	srv := httptest.NewServer(mux)
	f.t.Cleanup(srv.Close)
	return srv
}

func (f *fakeCarrier) last() recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		f.t.Fatal("no request reached the fake carrier")
	}
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeCarrier) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func camaraError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": status, "code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (f *fakeCarrier) serve(name string, w http.ResponseWriter, r *http.Request) {
	corr := r.Header.Get("x-correlator")
	w.Header().Set("x-correlator", corr)
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
		camaraError(w, 400, "INVALID_ARGUMENT", "content type and accept must be application/json")
		return
	}
	if corr == "" || !correlatorPattern.MatchString(corr) {
		camaraError(w, 400, "INVALID_ARGUMENT", "bad x-correlator")
		return
	}
	var body map[string]any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		camaraError(w, 400, "INVALID_ARGUMENT", "body is not a JSON object")
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{path: r.URL.Path, correlator: corr, body: body})
	f.mu.Unlock()

	// Exact request shape per endpoint.
	holder := body
	allowed := map[string]bool{f.phoneField: true}
	switch name {
	case "sim-check", "dev-check":
		allowed["maxAge"] = true
	case "roaming":
		dev, ok := body["device"].(map[string]any)
		if !ok || len(body) != 1 {
			camaraError(w, 400, "INVALID_ARGUMENT", "want {device: {...}}")
			return
		}
		holder = dev
	}
	for k := range holder {
		if !allowed[k] {
			camaraError(w, 400, "INVALID_ARGUMENT", "unexpected field "+k)
			return
		}
	}
	phone, _ := holder[f.phoneField].(string)
	if phone == "" {
		camaraError(w, 422, "MISSING_IDENTIFIER", "The device cannot be identified.")
		return
	}
	if !phonePattern.MatchString(phone) {
		camaraError(w, 400, "INVALID_ARGUMENT", "phoneNumber does not match the pattern")
		return
	}
	maxAge := 240
	if allowed["maxAge"] {
		n, ok := body["maxAge"].(json.Number)
		v, err := n.Int64()
		if !ok || err != nil || v < 1 || v > 2400 {
			camaraError(w, 400, "OUT_OF_RANGE", "Client specified an invalid range.")
			return
		}
		maxAge = int(v)
	}

	if rp, ok := f.replies[phone]; ok {
		if rp.delay {
			<-r.Context().Done()
			return
		}
		if rp.contentType != "" {
			w.Header().Set("Content-Type", rp.contentType)
		}
		w.WriteHeader(rp.status)
		fmt.Fprint(w, rp.body)
		return
	}
	sub, ok := f.subs[phone]
	if !ok {
		camaraError(w, 404, "IDENTIFIER_NOT_FOUND", "Device identifier not found.")
		return
	}
	within := func(t *time.Time) bool {
		return t != nil && t.After(f.now.Add(-time.Duration(maxAge)*time.Hour))
	}
	date := func(field string, t *time.Time) {
		out := map[string]any{field: nil}
		if t != nil {
			out[field] = t.Format(time.RFC3339Nano)
		} else if sub.monitored > 0 {
			out["monitoredPeriod"] = sub.monitored
		}
		writeJSON(w, out)
	}
	switch name {
	case "sim-check":
		writeJSON(w, map[string]any{"swapped": within(sub.simSwap)})
	case "dev-check":
		writeJSON(w, map[string]any{"swapped": within(sub.deviceSwap)})
	case "sim-retrieve":
		date("latestSimChange", sub.simSwap)
	case "dev-retrieve":
		date("latestDeviceChange", sub.deviceSwap)
	case "cf-uncond":
		active := false
		for _, v := range sub.forwardings {
			active = active || v == "unconditional"
		}
		writeJSON(w, map[string]any{"active": active})
	case "cf-list":
		if sub.forwardings == nil {
			writeJSON(w, []string{"inactive"})
			return
		}
		writeJSON(w, sub.forwardings)
	case "roaming":
		out := map[string]any{"lastStatusTime": "2024-02-20T10:41:38.657Z", "roaming": sub.roaming}
		if sub.roaming {
			out["countryCode"], out["countryName"] = sub.countryCode, sub.countryName
		}
		writeJSON(w, out)
	}
}

// mustJSON is a compact JSON rendering for messages.
func mustJSON(v any) string {
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(v)
	return strings.TrimSpace(b.String())
}
