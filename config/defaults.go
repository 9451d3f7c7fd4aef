package config

import (
	"fmt"
	"time"
)

// Default values, in one place. Keep default.yaml and the field comments in
// config.go in step with these (TestDefaultYAMLMatchesDefaults checks).
const (
	defaultListenSMPP = "127.0.0.1:2775"
	defaultMaxConns   = 10000

	defaultWindow              = 100
	defaultMaxPDUSize          = 65536 + 16
	defaultEnquireLinkInterval = Duration(30 * time.Second)
	defaultInactivityTimeout   = Duration(120 * time.Second)
	defaultResponseTimeout     = Duration(10 * time.Second)
	defaultBindTimeout         = Duration(10 * time.Second)
	defaultWriteTimeout        = Duration(10 * time.Second)

	defaultUpstreamBindType = BindTransceiver
	defaultUpstreamBinds    = 1
	defaultReconnectMin     = Duration(500 * time.Millisecond)
	defaultReconnectMax     = Duration(30 * time.Second)

	defaultAccountMode     = ModePooled
	defaultAccountMaxBinds = 8
	defaultQueueMax        = 10000
	defaultQueueTTL        = Duration(72 * time.Hour)

	defaultDLRMatchWait      = Duration(2 * time.Second)
	defaultDLRCorrelationTTL = Duration(72 * time.Hour)
	defaultDLRCorrelationMax = 1_000_000
	defaultLinkWait          = Duration(5 * time.Second)
	defaultDeliverTimeout    = Duration(10 * time.Second)

	defaultFakeSMSCListen   = "127.0.0.1:2776"
	defaultMessageIDFormat  = MessageIDHex
	defaultFakeSMSCDLRDelay = Duration(100 * time.Millisecond)

	defaultLogLevel  = "info"
	defaultLogFormat = "json"
)

// defaultBindTypes returns a fresh copy of the default Account.BindTypes.
func defaultBindTypes() []string {
	return []string{BindTransmitter, BindReceiver, BindTransceiver}
}

// applyDefaults fills in every value the YAML leaves out. A key counts as
// set when it is present with a non-null value, so an explicit 0 (e.g.
// "enquire_link_interval: 0" to disable keepalives, or an invalid
// "window: 0") is kept and left to validation. With no node tree (d is nil
// or empty) zero values are treated as unset.
func applyDefaults(c *Config, d *doc) {
	unset := func(path string, isZero bool) bool {
		if d == nil || d.root == nil {
			return isZero
		}
		return !d.has(path)
	}

	if unset("listen.smpp", c.Listen.SMPP == "") {
		c.Listen.SMPP = defaultListenSMPP
	}
	if unset("listen.max_connections", c.Listen.MaxConns == 0) {
		c.Listen.MaxConns = defaultMaxConns
	}

	s := &c.Session
	if unset("session.window", s.Window == 0) {
		s.Window = defaultWindow
	}
	if unset("session.max_pdu_size", s.MaxPDUSize == 0) {
		s.MaxPDUSize = defaultMaxPDUSize
	}
	if unset("session.enquire_link_interval", s.EnquireLinkInterval == 0) {
		s.EnquireLinkInterval = defaultEnquireLinkInterval
	}
	if unset("session.inactivity_timeout", s.InactivityTimeout == 0) {
		s.InactivityTimeout = defaultInactivityTimeout
	}
	if unset("session.response_timeout", s.ResponseTimeout == 0) {
		s.ResponseTimeout = defaultResponseTimeout
	}
	if unset("session.bind_timeout", s.BindTimeout == 0) {
		s.BindTimeout = defaultBindTimeout
	}
	if unset("session.write_timeout", s.WriteTimeout == 0) {
		s.WriteTimeout = defaultWriteTimeout
	}

	if len(c.Upstreams) == 0 {
		c.Upstreams = nil
	}
	for i := range c.Upstreams {
		u, p := &c.Upstreams[i], fmt.Sprintf("upstreams[%d].", i)
		if unset(p+"bind_type", u.BindType == "") {
			u.BindType = defaultUpstreamBindType
		}
		if unset(p+"binds", u.Binds == 0) {
			u.Binds = defaultUpstreamBinds
		}
		if unset(p+"window", u.Window == 0) {
			u.Window = s.Window
		}
		if unset(p+"reconnect_min", u.ReconnectMin == 0) {
			u.ReconnectMin = defaultReconnectMin
		}
		if unset(p+"reconnect_max", u.ReconnectMax == 0) {
			u.ReconnectMax = defaultReconnectMax
		}
	}

	if len(c.Routes) == 0 {
		c.Routes = nil
	}

	if len(c.Accounts) == 0 {
		c.Accounts = nil
	}
	for i := range c.Accounts {
		a, p := &c.Accounts[i], fmt.Sprintf("accounts[%d].", i)
		if unset(p+"mode", a.Mode == "") {
			a.Mode = defaultAccountMode
		}
		if unset(p+"bind_types", len(a.BindTypes) == 0) {
			a.BindTypes = defaultBindTypes()
		}
		if unset(p+"max_binds", a.MaxBinds == 0) {
			a.MaxBinds = defaultAccountMaxBinds
		}
		if len(a.AllowedCIDRs) == 0 {
			a.AllowedCIDRs = nil // absent or [] both mean "any"
		}
		if len(a.PrefixRoutes) == 0 {
			a.PrefixRoutes = nil
		}
		if unset(p+"queue_max", a.QueueMax == 0) {
			a.QueueMax = defaultQueueMax
		}
		if unset(p+"queue_ttl", a.QueueTTL == 0) {
			a.QueueTTL = defaultQueueTTL
		}
	}

	if len(c.MORules) == 0 {
		c.MORules = nil
	}

	r := &c.Relay
	if unset("relay.dlr_match_wait", r.DLRMatchWait == 0) {
		r.DLRMatchWait = defaultDLRMatchWait
	}
	if unset("relay.dlr_correlation_ttl", r.DLRCorrelationTTL == 0) {
		r.DLRCorrelationTTL = defaultDLRCorrelationTTL
	}
	if unset("relay.dlr_correlation_max", r.DLRCorrelationMax == 0) {
		r.DLRCorrelationMax = defaultDLRCorrelationMax
	}
	if unset("relay.link_wait", r.LinkWait == 0) {
		r.LinkWait = defaultLinkWait
	}
	if unset("relay.deliver_timeout", r.DeliverTimeout == 0) {
		r.DeliverTimeout = defaultDeliverTimeout
	}
	if unset("relay.drain_timeout", r.DrainTimeout == 0) {
		r.DrainTimeout = Duration(30 * time.Second)
	}

	if f := c.Sandbox.FakeSMSC; f != nil {
		if unset("sandbox.fake_smsc.listen", f.Listen == "") {
			f.Listen = defaultFakeSMSCListen
		}
		if unset("sandbox.fake_smsc.message_id_format", f.MessageIDFormat == "") {
			f.MessageIDFormat = defaultMessageIDFormat
		}
		if unset("sandbox.fake_smsc.dlr_delay", f.DLRDelay == 0) {
			f.DLRDelay = defaultFakeSMSCDLRDelay
		}
	}

	applyOTPDefaults(c, unset)

	if unset("log.level", c.Log.Level == "") {
		c.Log.Level = defaultLogLevel
	}
	if unset("log.format", c.Log.Format == "") {
		c.Log.Format = defaultLogFormat
	}
}
