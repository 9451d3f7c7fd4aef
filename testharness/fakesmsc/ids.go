package fakesmsc

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// Random decisions are a pure function of (Seed, purpose, counter): lock-free and
// reproducible. The n-th submit of a server with a given seed always gets the same fate.
const (
	saltError  = 0x51
	saltMix    = 0x52
	saltJitter = 0x53
	saltBase   = 0x54
	saltUUID   = 0x55
)

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

func (s *Server) rand(salt, n uint64) uint64 {
	return splitmix(uint64(s.cfg.Seed) ^ splitmix(salt<<56^n))
}

// unit returns a float64 in [0, 1).
func unit(r uint64) float64 { return float64(r>>11) / (1 << 53) }

// ids maps message numbers (an atomic counter) to message_id strings and back, and remembers
// the state of the last 2^stateRingBits messages.
type ids struct {
	format string
	base   uint64 // first number issued is base+1
	last   atomic.Uint64
	uuid   [8]byte // the first half of every uuid id
	ring   []atomic.Uint64
}

func (s *Server) initIDs() {
	d := &s.ids
	d.format = s.cfg.MessageIDFormat
	// Hex ids stay 8 digits with a non-zero first digit for at least 2^30 messages.
	d.base = 0x10000000 + s.rand(saltBase, 0)%0x40000000
	binary.BigEndian.PutUint64(d.uuid[:], s.rand(saltUUID, 0))
	d.uuid[6] = d.uuid[6]&0x0f | 0x40 // version 4
	d.last.Store(d.base)
	d.ring = make([]atomic.Uint64, 1<<stateRingBits)
}

func (d *ids) next() uint64 { return d.last.Add(1) }

const hexDigits = "0123456789ABCDEF"

// appendID appends message number n's id.
func (d *ids) appendID(b []byte, n uint64) []byte {
	switch d.format {
	case "decimal":
		return strconv.AppendUint(b, n, 10)
	case "uuid":
		var u [16]byte
		copy(u[:8], d.uuid[:])
		binary.BigEndian.PutUint64(u[8:], n)
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant; n < 2^56 so nothing is lost
		var out [36]byte
		hex.Encode(out[0:8], u[0:4])
		out[8] = '-'
		hex.Encode(out[9:13], u[4:6])
		out[13] = '-'
		hex.Encode(out[14:18], u[6:8])
		out[18] = '-'
		hex.Encode(out[19:23], u[8:10])
		out[23] = '-'
		hex.Encode(out[24:36], u[10:16])
		return append(b, out[:]...)
	default:
		var tmp [16]byte
		i := len(tmp)
		for v := n; v != 0 || i > len(tmp)-8; v >>= 4 {
			i--
			tmp[i] = hexDigits[v&15]
		}
		return append(b, tmp[i:]...)
	}
}

func (d *ids) id(n uint64) string { return string(d.appendID(nil, n)) }

// parse returns the message number of an id this server issued in its format.
func (d *ids) parse(id string) (uint64, bool) {
	switch d.format {
	case "decimal":
		n, err := strconv.ParseUint(id, 10, 64)
		return n, err == nil && id == strconv.FormatUint(n, 10)
	case "uuid":
		if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
			return 0, false
		}
		compact := id[0:8] + id[9:13] + id[14:18] + id[19:23] + id[24:36]
		var u [16]byte
		if _, err := hex.Decode(u[:], []byte(compact)); err != nil || [8]byte(u[:8]) != d.uuid {
			return 0, false
		}
		u[8] &= 0x3f
		return binary.BigEndian.Uint64(u[8:]), true
	default:
		n, err := strconv.ParseUint(id, 16, 64)
		return n, err == nil
	}
}

// textID is the id as written in a receipt's "id:" text.
func (s *Server) textID(n uint64, id string) string {
	if s.cfg.DLRTextIDFormat == "decimal" && s.ids.format != "uuid" {
		return strconv.FormatUint(n, 10)
	}
	return id
}

// setState records message n's state; only if the slot still belongs to n when onlyIfOwner.
func (d *ids) setState(n uint64, st byte, onlyIfOwner bool) {
	slot := &d.ring[n&(1<<stateRingBits-1)]
	v := n<<8 | uint64(st)
	if !onlyIfOwner {
		slot.Store(v)
		return
	}
	for {
		old := slot.Load()
		if old>>8 != n || slot.CompareAndSwap(old, v) {
			return
		}
	}
}

// state returns message n's state if n is one of the messages remembered.
func (d *ids) state(n uint64) (byte, bool) {
	if n <= d.base || n > d.last.Load() {
		return 0, false
	}
	v := d.ring[n&(1<<stateRingBits-1)].Load()
	if v>>8 != n {
		return 0, false
	}
	return byte(v), true
}
