// Package fakesmsc is a real SMPP 3.4 SMSC for tests, demos and benchmarks.
//
// It is the peer that proves the proxy right, so it is written directly on the wire codec
// (package smpp's frame reader, index and encoder) and shares no session code with the
// proxy. It accepts binds, answers every ESME request, issues message ids, generates
// delivery receipts (queued until a receiver is bound, retried until acknowledged, never
// dropped below the pending bound), sends mobile-originated messages on demand, records
// every PDU it receives and injects faults: errors, throttling, delays, out-of-order
// responses, scheduled and abrupt disconnects.
//
// Per connection there is one reader goroutine and one writer goroutine; the writer drains a
// buffered channel into a bufio.Writer and flushes only when the channel is empty. Delays
// (ResponseDelay, ResponseJitter, DLRDelay) go through one heap-based scheduler goroutine;
// receipt retries and timeouts through one dispatcher goroutine.
package fakesmsc

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
)

// Config configures a fake SMSC. The zero value is a working SMSC on 127.0.0.1:0 that
// accepts any credentials.
type Config struct {
	Addr            string            // listen address, default "127.0.0.1:0"
	Accounts        map[string]string // system_id -> password; empty map/nil = accept any credentials
	MessageIDFormat string            // "hex" (default, e.g. "1A2B3C4D"), "decimal", "uuid"
	DLRDelay        time.Duration     // delay before a receipt is sent, default 0 (send right after the resp)
	DLRStatusMix    map[string]int    // weights over DELIVRD, UNDELIV, EXPIRED, REJECTD; nil = all DELIVRD
	DLRTextIDFormat string            // "" same as message_id; "decimal": hex ids written in decimal in the receipt's "id:" text (the receipted_message_id TLV keeps the original)
	DLRNoTLVs       bool              // omit receipted_message_id/message_state TLVs (text only)
	DLRBeforeResp   bool              // send the receipt BEFORE the submit_sm_resp (proxies must hold unmatched receipts)
	ErrorRate       float64           // share of submits answered with ErrorStatus (0..1), deterministic by a seeded PRNG (Seed)
	ErrorStatus     smpp.Status       // default ESME_RSUBMITFAIL
	TPS             int               // per-bind submit limit per second; excess answered ESME_RTHROTTLED; 0 = none
	ResponseDelay   time.Duration     // fixed delay before each submit response
	ResponseJitter  time.Duration     // random extra delay per response: responses go out of order
	DisconnectAfter int               // close each connection after this many submits (0 = never) — scheduled disconnect
	RecordPath      string            // append every received PDU as a JSON line (see Record) to this file; "" = memory only
	RecordLimit     int               // max records kept in memory (default 100000; 0 = default; oldest dropped)
	NoRecord        bool              // keep no records in memory (benchmarks); RecordPath is still written
	Seed            int64
	Logger          *zap.Logger // nil = zap.NewNop()
}

// Record is one received PDU.
type Record struct {
	Time     time.Time `json:"time"`
	Conn     uint64    `json:"conn"`      // connection number
	SystemID string    `json:"system_id"` // of the bind on that connection ("" before bind)
	Command  string    `json:"command"`
	Seq      uint32    `json:"seq"`
	Status   uint32    `json:"status"`
	Hex      string    `json:"hex"` // the whole frame
	Bytes    []byte    `json:"-"`   // the whole frame; shared with the server: do not modify
}

// Stats are the server's counters.
type Stats struct {
	Binds       int64 // successful binds
	Submits     int64 // submit_sm, data_sm and submit_multi received (well-formed)
	Responses   int64 // responses to those submits handed to the writer, any status
	Errors      int64 // submits answered with ErrorStatus (ErrorRate)
	Throttled   int64 // submits answered ESME_RTHROTTLED (TPS)
	DLRsSent    int64 // receipt deliver_sm written, retransmissions included
	DLRsAcked   int64 // receipts acknowledged with ESME_ROK
	DLRsPending int64 // receipts generated and not yet acknowledged (scheduled, queued or in flight)
	DLRsDropped int64 // receipts dropped because the pending bound was exceeded
	MOsSent     int64 // MO deliver_sm written by SendMO
	Conns       int64 // connections open now
	Accepted    int64 // connections accepted since Start
}

// Receipt states (stat: text) and their message_state values.
const (
	StateEnroute       byte = 1
	StateDelivered     byte = 2
	StateExpired       byte = 3
	StateDeleted       byte = 4
	StateUndeliverable byte = 5
	StateAccepted      byte = 6
	StateUnknown       byte = 7
	StateRejected      byte = 8
)

// dlrStats lists the receipt stat: values in the order the mix is drawn.
var dlrStats = [4]struct {
	name  string
	state byte
	err   string
}{
	{"DELIVRD", StateDelivered, "000"},
	{"UNDELIV", StateUndeliverable, "001"},
	{"EXPIRED", StateExpired, "002"},
	{"REJECTD", StateRejected, "003"},
}

// Tunables that tests shorten; read once by Start.
var (
	dlrRespTimeout  = 5 * time.Second        // a receipt without deliver_sm_resp is retried after this
	dlrRetryEvery   = 200 * time.Millisecond // failed receipts are retried this often
	maxPendingDLRs  = 1_000_000              // queued receipts kept; oldest dropped beyond
	closeDrainLimit = 2 * time.Second        // how long a graceful close reads what the client still sends
)

const (
	defaultRecordLimit = 100000
	outQueueLen        = 8192 // frames buffered per connection for the writer
	stateRingBits      = 18   // message states remembered for query/cancel/replace: the last 262144 ids
)

// ErrNoReceiver is returned by SendMO when no receiver or transceiver of the system_id is bound.
var ErrNoReceiver = errors.New("fakesmsc: no receiver bound")

// ErrClosed is returned once the server is closed.
var ErrClosed = errors.New("fakesmsc: server closed")

func (c *Config) normalize() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	switch c.MessageIDFormat {
	case "":
		c.MessageIDFormat = "hex"
	case "hex", "decimal", "uuid":
	default:
		return fmt.Errorf("fakesmsc: MessageIDFormat %q: want hex, decimal or uuid", c.MessageIDFormat)
	}
	switch c.DLRTextIDFormat {
	case "", "decimal":
	default:
		return fmt.Errorf("fakesmsc: DLRTextIDFormat %q: want \"\" or decimal", c.DLRTextIDFormat)
	}
	if c.DLRDelay < 0 || c.ResponseDelay < 0 || c.ResponseJitter < 0 {
		return errors.New("fakesmsc: negative delay")
	}
	if _, _, err := mixTable(c.DLRStatusMix); err != nil {
		return err
	}
	if math.IsNaN(c.ErrorRate) || c.ErrorRate < 0 || c.ErrorRate > 1 {
		return fmt.Errorf("fakesmsc: ErrorRate %v outside 0..1", c.ErrorRate)
	}
	if c.ErrorStatus == smpp.StatusOK {
		c.ErrorStatus = smpp.StatusSubmitFail
	}
	if c.TPS < 0 {
		return fmt.Errorf("fakesmsc: TPS %d is negative", c.TPS)
	}
	if c.DisconnectAfter < 0 {
		return fmt.Errorf("fakesmsc: DisconnectAfter %d is negative", c.DisconnectAfter)
	}
	if c.RecordLimit < 0 {
		return fmt.Errorf("fakesmsc: RecordLimit %d is negative", c.RecordLimit)
	}
	if c.RecordLimit == 0 {
		c.RecordLimit = defaultRecordLimit
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// mixTable turns DLRStatusMix into cumulative weights in dlrStats order.
func mixTable(mix map[string]int) (cum [4]int, total int, err error) {
	if len(mix) == 0 {
		return cum, 0, nil
	}
	for k, w := range mix {
		i := statIndex(k)
		if i < 0 {
			return cum, 0, fmt.Errorf("fakesmsc: DLRStatusMix: unknown status %q (want DELIVRD, UNDELIV, EXPIRED, REJECTD)", k)
		}
		if w < 0 {
			return cum, 0, fmt.Errorf("fakesmsc: DLRStatusMix: negative weight %d for %s", w, k)
		}
	}
	for i, st := range dlrStats {
		total += mix[st.name]
		cum[i] = total
	}
	if total <= 0 {
		return cum, 0, errors.New("fakesmsc: DLRStatusMix: weights add up to 0")
	}
	return cum, total, nil
}

func statIndex(name string) int {
	for i, st := range dlrStats {
		if st.name == name {
			return i
		}
	}
	return -1
}
