package fakecarrier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	pSimCheck = "/sim-swap/v2/check"
	pSimDate  = "/sim-swap/v2/retrieve-date"
	pCFU      = "/call-forwarding-signal/v0.4/unconditional-call-forwardings"
	pCFList   = "/call-forwarding-signal/v0.4/call-forwardings"
	pDevCheck = "/device-swap/v1/check"
	pDevDate  = "/device-swap/v1/retrieve-date"
	pRoaming  = "/device-roaming-status/v1/retrieve"
)

func phone(n string) string  { return fmt.Sprintf(`{"phoneNumber":%q}`, n) }
func device(n string) string { return fmt.Sprintf(`{"device":{"phoneNumber":%q}}`, n) }
func checkBody(n string, maxAge int) string {
	return fmt.Sprintf(`{"phoneNumber":%q,"maxAge":%d}`, n, maxAge)
}

// Every endpoint against swapped, clean, unknown, diverted, device-swapped and roaming numbers.
func TestEndpoints(t *testing.T) {
	s := start(t, Config{Scenario: testScenario()})
	tok := getToken(t, s, "")
	ago := func(d time.Duration) string { return t0.Add(-d).Format("2006-01-02T15:04:05.000Z") }
	month := ago(30 * 24 * time.Hour)
	const lst = `"lastStatusTime":"2025-06-01T12:00:00.000Z"`
	for _, tc := range []struct {
		name, path, body string
		status           int
		want             string // JSON body, or the error code
	}{
		{"sim check swapped default maxAge", pSimCheck, phone("+447700900001"), 200, `{"swapped":true}`},
		{"sim check swapped within 3h", pSimCheck, checkBody("+447700900001", 3), 200, `{"swapped":true}`},
		{"sim check swapped but older than 1h", pSimCheck, checkBody("+447700900001", 1), 200, `{"swapped":false}`},
		{"sim check clean", pSimCheck, checkBody("+447700900003", 2400), 200, `{"swapped":false}`},
		{"sim check not listed", pSimCheck, phone("+447700912345"), 200, `{"swapped":false}`},
		{"sim check a month ago, 240h", pSimCheck, phone("+447700900006"), 200, `{"swapped":false}`},
		{"sim check a month ago, 800h", pSimCheck, checkBody("+447700900006", 800), 200, `{"swapped":true}`},
		{"sim check unknown", pSimCheck, phone("+447700900004"), 404, "IDENTIFIER_NOT_FOUND"},
		{"sim date swapped", pSimDate, phone("+447700900001"), 200, `{"latestSimChange":"` + ago(2*time.Hour) + `"}`},
		{"sim date at", pSimDate, phone("+447700900006"), 200, `{"latestSimChange":"` + month + `"}`},
		{"sim date clean", pSimDate, phone("+447700900003"), 200, `{"latestSimChange":null}`},
		{"sim date unknown", pSimDate, phone("+447700900004"), 404, "IDENTIFIER_NOT_FOUND"},
		{"cfu diverted", pCFU, phone("+447700900002"), 200, `{"active":true}`},
		{"cfu conditional only", pCFU, phone("+447700900006"), 200, `{"active":false}`},
		{"cfu clean", pCFU, phone("+447700900003"), 200, `{"active":false}`},
		{"cfu unknown", pCFU, phone("+447700900004"), 404, "IDENTIFIER_NOT_FOUND"},
		{"cf list diverted", pCFList, phone("+447700900002"), 200, `["unconditional","conditional_busy"]`},
		{"cf list conditional", pCFList, phone("+447700900006"), 200, `["conditional_no_answer"]`},
		{"cf list clean", pCFList, phone("+447700900003"), 200, `["inactive"]`},
		{"cf list unknown", pCFList, phone("+447700900004"), 404, "IDENTIFIER_NOT_FOUND"},
		{"device check swapped", pDevCheck, checkBody("+447700900005", 4), 200, `{"swapped":true}`},
		{"device check older", pDevCheck, checkBody("+447700900005", 2), 200, `{"swapped":false}`},
		{"device check clean", pDevCheck, phone("+447700900003"), 200, `{"swapped":false}`},
		{"device check sim-swapped only", pDevCheck, phone("+447700900001"), 200, `{"swapped":false}`},
		{"device check unknown", pDevCheck, phone("+447700900004"), 404, "IDENTIFIER_NOT_FOUND"},
		{"device date swapped", pDevDate, phone("+447700900005"), 200, `{"latestDeviceChange":"` + ago(3*time.Hour) + `"}`},
		{"device date clean", pDevDate, phone("+447700900003"), 200, `{"latestDeviceChange":null}`},
		{"device date unknown", pDevDate, phone("+447700900004"), 404, "IDENTIFIER_NOT_FOUND"},
		{"roaming", pRoaming, device("+447700900005"), 200, `{` + lst + `,"roaming":true,"countryCode":262,"countryName":["DE"]}`},
		{"roaming no country", pRoaming, device("+447700900007"), 200, `{` + lst + `,"roaming":true,"countryName":[]}`},
		{"not roaming", pRoaming, device("+447700900003"), 200, `{` + lst + `,"roaming":false}`},
		{"roaming two identifiers", pRoaming, `{"device":{"phoneNumber":"+447700900005","ipv4Address":{"publicAddress":"84.125.93.10","publicPort":59765}}}`,
			200, `{"device":{"phoneNumber":"+447700900005"},` + lst + `,"roaming":true,"countryCode":262,"countryName":["DE"]}`},
		{"roaming unknown", pRoaming, device("+447700900004"), 404, "IDENTIFIER_NOT_FOUND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, s, tok, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if tc.status != 200 {
				if c := r.errCode(t); c != tc.want {
					t.Fatalf("code %s, want %s", c, tc.want)
				}
				return
			}
			jsonEq(t, r.body, tc.want)
		})
	}
}

// retrieve-date answers null, null + monitoredPeriod, or the date; check beyond the monitored
// period is OUT_OF_RANGE.
func TestMonitoredPeriod(t *testing.T) {
	old := t0.Add(-200 * 24 * time.Hour)
	sc := testScenario()
	sc.Numbers["+447700900010"] = Number{MonitoredDays: 120}
	sc.Numbers["+447700900011"] = Number{MonitoredDays: 120, SimChangedAt: &old, DeviceChangedAt: &old}
	sc.Numbers["+447700900012"] = Number{MonitoredDays: 120, SimChangedAgo: Ago(24 * time.Hour)}
	sc.Numbers["+447700900013"] = Number{MonitoredDays: 30, SimChangedAgo: Ago(24 * time.Hour)}
	s := start(t, Config{Scenario: sc})
	tok := getToken(t, s, "")
	for _, tc := range []struct {
		path, body, want string
		status           int
	}{
		{pSimDate, phone("+447700900003"), `{"latestSimChange":null}`, 200},
		{pSimDate, phone("+447700900010"), `{"latestSimChange":null,"monitoredPeriod":120}`, 200},
		{pDevDate, phone("+447700900010"), `{"latestDeviceChange":null,"monitoredPeriod":120}`, 200},
		{pSimDate, phone("+447700900011"), `{"latestSimChange":null,"monitoredPeriod":120}`, 200},
		{pDevDate, phone("+447700900011"), `{"latestDeviceChange":null,"monitoredPeriod":120}`, 200},
		{pSimDate, phone("+447700900012"), `{"latestSimChange":"2025-05-31T12:00:00.000Z"}`, 200},
		{pSimCheck, checkBody("+447700900013", 720), `{"swapped":true}`, 200},
		{pSimCheck, checkBody("+447700900013", 721), "OUT_OF_RANGE", 400},
		{pSimCheck, phone("+447700900013"), `{"swapped":true}`, 200},
		{pDevCheck, checkBody("+447700900013", 2400), "OUT_OF_RANGE", 400},
	} {
		r := call(t, s, tok, tc.path, tc.body)
		if r.status != tc.status {
			t.Fatalf("%s %s: status %d: %s", tc.path, tc.body, r.status, r.body)
		}
		if tc.status == 200 {
			jsonEq(t, r.body, tc.want)
		} else if c := r.errCode(t); c != tc.want {
			t.Fatalf("%s %s: code %s", tc.path, tc.body, c)
		} else if !strings.Contains(string(r.body), "(30 days)") {
			t.Fatalf("OUT_OF_RANGE message %s", r.body)
		}
	}
}

// Request validation per spec: 400 INVALID_ARGUMENT / OUT_OF_RANGE, 422 for identifiers.
func TestValidation(t *testing.T) {
	s := start(t, Config{Scenario: testScenario()})
	tok := getToken(t, s, "")
	for _, tc := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"no phoneNumber", pSimCheck, `{"maxAge":24}`, 422, "MISSING_IDENTIFIER"},
		{"no phoneNumber date", pSimDate, `{}`, 422, "MISSING_IDENTIFIER"},
		{"no phoneNumber cfs", pCFU, `{}`, 422, "MISSING_IDENTIFIER"},
		{"no phoneNumber cf list", pCFList, `{}`, 422, "MISSING_IDENTIFIER"},
		{"no phoneNumber device swap", pDevCheck, `{}`, 422, "MISSING_IDENTIFIER"},
		{"no phoneNumber device date", pDevDate, `{}`, 422, "MISSING_IDENTIFIER"},
		{"no device", pRoaming, `{}`, 422, "MISSING_IDENTIFIER"},
		{"phone without plus", pSimCheck, phone("447700900001"), 400, "INVALID_ARGUMENT"},
		{"phone too short", pSimDate, phone("+4477"), 400, "INVALID_ARGUMENT"},
		{"phone too long", pCFU, phone("+4477009000011234"), 400, "INVALID_ARGUMENT"},
		{"phone leading zero", pCFList, phone("+0447700900001"), 400, "INVALID_ARGUMENT"},
		{"phone letters", pDevCheck, phone("+44770090000a"), 400, "INVALID_ARGUMENT"},
		{"phone number type", pDevDate, `{"phoneNumber":447700900001}`, 400, "INVALID_ARGUMENT"},
		{"phone null", pSimCheck, `{"phoneNumber":null}`, 400, "INVALID_ARGUMENT"},
		{"invalid phone before maxAge", pSimCheck, `{"phoneNumber":"x","maxAge":0}`, 400, "INVALID_ARGUMENT"},
		{"not json", pSimCheck, `phoneNumber=+447700900001`, 400, "INVALID_ARGUMENT"},
		{"empty body", pCFU, ``, 400, "INVALID_ARGUMENT"},
		{"array body", pCFList, `[]`, 400, "INVALID_ARGUMENT"},
		{"null body", pSimDate, `null`, 400, "INVALID_ARGUMENT"},
		{"maxAge 0", pSimCheck, checkBody("+447700900001", 0), 400, "OUT_OF_RANGE"},
		{"maxAge 2401", pSimCheck, checkBody("+447700900001", 2401), 400, "OUT_OF_RANGE"},
		{"maxAge negative", pDevCheck, checkBody("+447700900001", -5), 400, "OUT_OF_RANGE"},
		{"maxAge huge", pDevCheck, `{"phoneNumber":"+447700900001","maxAge":1e12}`, 400, "OUT_OF_RANGE"},
		{"maxAge fraction", pSimCheck, `{"phoneNumber":"+447700900001","maxAge":1.5}`, 400, "INVALID_ARGUMENT"},
		{"maxAge string", pSimCheck, `{"phoneNumber":"+447700900001","maxAge":"24"}`, 400, "INVALID_ARGUMENT"},
		{"maxAge null", pSimCheck, `{"phoneNumber":"+447700900001","maxAge":null}`, 400, "INVALID_ARGUMENT"},
		{"maxAge bad without phone", pSimCheck, `{"maxAge":0}`, 400, "OUT_OF_RANGE"},
		{"maxAge 2400 ok", pSimCheck, checkBody("+447700900001", 2400), 200, ""},
		{"maxAge 1 ok", pDevCheck, checkBody("+447700900001", 1), 200, ""},
		{"unknown fields ignored", pSimDate, `{"phoneNumber":"+447700900001","extra":1}`, 200, ""},
		{"device null", pRoaming, `{"device":null}`, 400, "INVALID_ARGUMENT"},
		{"device empty", pRoaming, `{"device":{}}`, 400, "INVALID_ARGUMENT"},
		{"device bad phone", pRoaming, device("+1"), 400, "INVALID_ARGUMENT"},
		{"device bad ipv4", pRoaming, `{"device":{"ipv4Address":{"publicAddress":"nope","publicPort":1}}}`, 400, "INVALID_ARGUMENT"},
		{"device ipv4 alone", pRoaming, `{"device":{"ipv4Address":{"publicAddress":"84.125.93.10"}}}`, 400, "INVALID_ARGUMENT"},
		{"device bad ipv6", pRoaming, `{"device":{"ipv6Address":"84.125.93.10"}}`, 400, "INVALID_ARGUMENT"},
		{"device ipv4 only", pRoaming, `{"device":{"ipv4Address":{"publicAddress":"84.125.93.10","publicPort":59765}}}`, 422, "UNSUPPORTED_IDENTIFIER"},
		{"device ipv6 only", pRoaming, `{"device":{"ipv6Address":"2001:db8::1"}}`, 422, "UNSUPPORTED_IDENTIFIER"},
		{"device nai only", pRoaming, `{"device":{"networkAccessIdentifier":"123@domain.com"}}`, 422, "UNSUPPORTED_IDENTIFIER"},
		{"bad x-correlator", pSimCheck, phone("+447700900001"), 400, "INVALID_ARGUMENT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.name == "bad x-correlator" {
				hdr = []string{"x-correlator", "has spaces"}
			}
			r := call(t, s, tok, tc.path, tc.body, hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status != 200 {
				if c := r.errCode(t); c != tc.code {
					t.Fatalf("code %s, want %s: %s", c, tc.code, r.body)
				}
			}
		})
	}
	t.Run("wrong method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+pSimCheck, nil)
		r := do(t, req)
		if r.status != 405 || r.header.Get("Allow") != "POST" || r.errCode(t) != "METHOD_NOT_ALLOWED" {
			t.Fatalf("%d %v %s", r.status, r.header, r.body)
		}
	})
	t.Run("unknown path", func(t *testing.T) {
		r := call(t, s, tok, "/sim-swap/v1/check", phone("+447700900001"))
		if r.status != 404 || r.errCode(t) != "NOT_FOUND" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

// x-correlator is echoed on answers and errors, and recorded.
func TestCorrelator(t *testing.T) {
	s := start(t, Config{Scenario: testScenario()})
	tok := getToken(t, s, "")
	for _, tc := range []struct {
		tok, body, corr string
		status          int
	}{
		{tok, phone("+447700900001"), "b4333c46-49c0-4f62-80d7-f0ef930f1c46", 200},
		{tok, phone("+447700900004"), "a:b;c.d/e<f>{g}_h", 404},
		{tok, `{}`, "x1", 422},
		{"", phone("+447700900001"), "x2", 401},
		{tok, phone("+447700900001"), "", 200},
	} {
		var hdr []string
		if tc.corr != "" {
			hdr = []string{"x-correlator", tc.corr}
		}
		r := call(t, s, tc.tok, pSimCheck, tc.body, hdr...)
		if r.status != tc.status {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		got, ok := r.header["X-Correlator"]
		if tc.corr == "" && ok || tc.corr != "" && (len(got) != 1 || got[0] != tc.corr) {
			t.Fatalf("x-correlator %q, sent %q", got, tc.corr)
		}
		calls := s.Calls()
		if c := calls[len(calls)-1]; c.CorrelationID != tc.corr || c.Status != tc.status || c.Endpoint != EndpointSimSwapCheck {
			t.Fatalf("recorded %+v", c)
		}
	}
	long := strings.Repeat("a", 257)
	if r := call(t, s, tok, pSimCheck, phone("+447700900001"), "x-correlator", long); r.status != 400 || r.header.Get("x-correlator") != "" {
		t.Fatalf("257-character x-correlator: %d, echoed %q", r.status, r.header.Get("x-correlator"))
	}
}

// Injected errors: each status with times, endpoint filters, default codes and messages.
func TestInjectedErrors(t *testing.T) {
	s := start(t, Config{Scenario: testScenario()})
	tok := getToken(t, s, "")
	const num = "+447700900050"
	for _, tc := range []struct {
		status int
		code   string
	}{
		{401, "UNAUTHENTICATED"}, {404, "IDENTIFIER_NOT_FOUND"}, {422, "SERVICE_NOT_APPLICABLE"},
		{429, "QUOTA_EXCEEDED"}, {429, ""}, {500, "INTERNAL"}, {503, ""},
	} {
		t.Run(fmt.Sprint(tc.status, tc.code), func(t *testing.T) {
			s.SetNumber(num, Number{SimChangedAgo: Ago(time.Hour), Error: &InjectedError{Status: tc.status, Code: tc.code, Times: 2}})
			want := tc.code
			if want == "" {
				want = defaultCode(tc.status)
			}
			for i := range 2 {
				r := call(t, s, tok, pSimCheck, phone(num))
				if r.status != tc.status || r.errCode(t) != want {
					t.Fatalf("call %d: %d %s", i, r.status, r.body)
				}
			}
			if r := call(t, s, tok, pSimCheck, phone(num)); r.status != 200 {
				t.Fatalf("after times: %d %s", r.status, r.body)
			}
			calls := s.Calls()
			if c := calls[len(calls)-2]; c.Status != tc.status || c.Code != want || c.PhoneNumber != num {
				t.Fatalf("recorded %+v", c)
			}
		})
	}
	t.Run("always", func(t *testing.T) {
		s.SetNumber(num, Number{Error: &InjectedError{Status: 500, Message: "boom"}})
		for range 5 {
			r := call(t, s, tok, pCFU, phone(num))
			if r.status != 500 {
				t.Fatalf("%d", r.status)
			}
			jsonEq(t, r.body, `{"status":500,"code":"INTERNAL","message":"boom"}`)
		}
	})
	t.Run("default message from the spec", func(t *testing.T) {
		s.SetNumber(num, Number{Error: &InjectedError{Status: 429}})
		jsonEq(t, call(t, s, tok, pCFU, phone(num)).body, `{"status":429,"code":"TOO_MANY_REQUESTS","message":"Rate limit reached."}`)
		jsonEq(t, call(t, s, tok, pSimCheck, phone(num)).body, `{"status":429,"code":"TOO_MANY_REQUESTS","message":"Rejected due to request rate limit overpassed."}`)
	})
	t.Run("endpoints", func(t *testing.T) {
		s.SetNumber(num, Number{Error: &InjectedError{Status: 503, Endpoints: []string{"sim-swap", EndpointRoamingStatus}}})
		for path, want := range map[string]int{pSimCheck: 503, pSimDate: 503, pRoaming: 503, pCFU: 200, pCFList: 200, pDevCheck: 200, pDevDate: 200} {
			body := phone(num)
			if path == pRoaming {
				body = device(num)
			}
			if r := call(t, s, tok, path, body); r.status != want {
				t.Fatalf("%s: %d, want %d", path, r.status, want)
			}
		}
		s.SetNumber(num, Number{Error: &InjectedError{Status: 500, Times: 1, Endpoints: []string{EndpointSimSwapRetrieveDate}}})
		if r := call(t, s, tok, pSimCheck, phone(num)); r.status != 200 {
			t.Fatalf("check: %d", r.status)
		}
		if r := call(t, s, tok, pSimDate, phone(num)); r.status != 500 {
			t.Fatalf("retrieve-date: %d", r.status)
		}
		if r := call(t, s, tok, pSimDate, phone(num)); r.status != 200 {
			t.Fatalf("retrieve-date again: %d", r.status)
		}
	})
	t.Run("default number", func(t *testing.T) {
		s.SetDefault(Number{Error: &InjectedError{Status: 500, Times: 1}})
		for _, n := range []string{"+447700900061", "+447700900062"} {
			if r := call(t, s, tok, pSimCheck, phone(n)); r.status != 500 {
				t.Fatalf("%s first: %d", n, r.status)
			}
			if r := call(t, s, tok, pSimCheck, phone(n)); r.status != 200 {
				t.Fatalf("%s second: %d", n, r.status)
			}
		}
		s.SetDefault(Number{})
		s.DeleteNumber(num)
		if r := call(t, s, tok, pSimCheck, phone(num)); r.status != 200 {
			t.Fatalf("deleted: %d", r.status)
		}
	})
}

// Latency delays answers; a client giving up ends the wait early.
func TestLatency(t *testing.T) {
	s := start(t, Config{Scenario: testScenario()})
	tok := getToken(t, s, "")
	s.SetNumber("+447700900070", Number{Latency: Duration(150 * time.Millisecond), SimChangedAgo: Ago(time.Minute)})
	begin := time.Now()
	r := call(t, s, tok, pSimCheck, phone("+447700900070"))
	if el := time.Since(begin); el < 150*time.Millisecond || r.status != 200 {
		t.Fatalf("answered %d after %s", r.status, el)
	}
	jsonEq(t, r.body, `{"swapped":true}`)

	s.SetNumber("+447700900071", Number{Latency: Duration(time.Hour)})
	assertGivesUp(t, s, tok, "+447700900071")
}

// Timeout never answers: the client's deadline ends the call, and so does Close.
func TestTimeout(t *testing.T) {
	s := start(t, Config{Scenario: testScenario()})
	tok := getToken(t, s, "")
	s.SetNumber("+447700900072", Number{Timeout: true})
	assertGivesUp(t, s, tok, "+447700900072")

	// Close aborts a waiting call.
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+pCFU, strings.NewReader(phone("+447700900072")))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		errc <- err
	}()
	waitFor(t, func() bool { return s.CallCount(EndpointUnconditionalForwarding) == 1 })
	begin := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(begin); el > 2*time.Second {
		t.Fatalf("Close took %s", el)
	}
	select {
	case err := <-errc:
		if err == nil || strings.HasPrefix(err.Error(), "answered") {
			t.Fatalf("client: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client was not released by Close")
	}
}

// assertGivesUp calls with a short client deadline and checks the server let go.
func assertGivesUp(t *testing.T, s *Server, tok, num string) {
	t.Helper()
	before := len(s.Calls())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+pSimCheck, strings.NewReader(phone(num)))
	req.Header.Set("Authorization", "Bearer "+tok)
	begin := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d", resp.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v", err)
	}
	if el := time.Since(begin); el > 2*time.Second {
		t.Fatalf("gave up after %s", el)
	}
	// The handler returns once the client is gone: the call is completed with status 0.
	waitFor(t, func() bool {
		calls := s.Calls()
		return len(calls) == before+1 && calls[before].Duration > 0
	})
	if c := s.Calls()[before]; c.Status != 0 || c.PhoneNumber != num {
		t.Fatalf("recorded %+v", c)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Calls and CallCount by endpoint and API.
func TestCallCount(t *testing.T) {
	s := start(t, Config{Scenario: testScenario()})
	tok := getToken(t, s, "")
	call(t, s, tok, pSimCheck, phone("+447700900001"))
	call(t, s, tok, pSimDate, phone("+447700900001"))
	call(t, s, tok, pSimDate, phone("+447700900001"))
	call(t, s, tok, pCFU, phone("+447700900001"))
	call(t, s, tok, pRoaming, device("+447700900001"))
	for name, want := range map[string]int{
		"token": 1, "sim-swap": 3, EndpointSimSwapCheck: 1, EndpointSimSwapRetrieveDate: 2,
		"call-forwarding-signal": 1, EndpointCallForwardings: 0, "device-roaming-status": 1, "device-swap": 0,
		"sim": 0, "": 0,
	} {
		if got := s.CallCount(name); got != want {
			t.Errorf("CallCount(%q) = %d, want %d", name, got, want)
		}
	}
	calls := s.Calls()
	if len(calls) != 6 || calls[0].Endpoint != EndpointToken || calls[0].AuthMethod != AuthBasic || calls[0].ClientID != "app" {
		t.Fatalf("calls %+v", calls)
	}
	if c := calls[5]; c.Path != pRoaming || c.PhoneNumber != "+447700900001" || c.ClientID != "app" || c.Status != 200 || !c.Time.Equal(t0) {
		t.Fatalf("roaming call %+v", c)
	}
	s.ResetCalls()
	if len(s.Calls()) != 0 || s.CallCount("sim-swap") != 0 {
		t.Fatal("ResetCalls")
	}
}

// PathPrefix puts every endpoint under it.
func TestPathPrefix(t *testing.T) {
	s := start(t, Config{Scenario: testScenario(), PathPrefix: "camara/"})
	if !strings.HasSuffix(s.URL(), "/camara") || s.TokenURL() != s.URL()+"/oauth2/token" {
		t.Fatalf("URL %s token %s", s.URL(), s.TokenURL())
	}
	tok := getToken(t, s, "")
	if r := call(t, s, tok, pSimCheck, phone("+447700900001")); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	base := strings.TrimSuffix(s.URL(), "/camara")
	for _, p := range []string{base + pSimCheck, base + "/camaraX" + pSimCheck, base + "/oauth2/token"} {
		req, _ := http.NewRequest(http.MethodPost, p, strings.NewReader(phone("+447700900001")))
		req.Header.Set("Authorization", "Bearer "+tok)
		if r := do(t, req); r.status != 404 {
			t.Fatalf("%s: %d", p, r.status)
		}
	}
}

// NoAuth accepts calls without a token.
func TestNoAuth(t *testing.T) {
	s := start(t, Config{Scenario: Scenario{Numbers: map[string]Number{"+447700900001": {SimChangedAgo: Ago(time.Hour)}}}, NoAuth: true})
	r := call(t, s, "", pSimCheck, phone("+447700900001"))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	jsonEq(t, r.body, `{"swapped":true}`)
	if r := call(t, s, "garbage", pCFList, phone("+447700900001")); r.status != 200 {
		t.Fatalf("with a bad token: %d", r.status)
	}
}

// Concurrent calls, scenario changes, token expiry and reads (for -race).
func TestConcurrent(t *testing.T) {
	s := start(t, Config{Scenario: testScenario(), Now: time.Now})
	tok := getToken(t, s, "")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			num := fmt.Sprintf("+4477009001%02d", i)
			for j := range 20 {
				s.SetNumber(num, Number{SimChangedAgo: Ago(time.Duration(j) * time.Hour), Error: &InjectedError{Status: 500, Times: 1}})
				call(t, s, tok, pSimCheck, phone(num))
				_ = s.Calls()
				_ = s.CallCount("sim-swap")
			}
		}()
	}
	wg.Wait()
	if got := s.CallCount(EndpointSimSwapCheck); got != 160 {
		t.Fatalf("%d calls", got)
	}
	s.ExpireTokens()
}
