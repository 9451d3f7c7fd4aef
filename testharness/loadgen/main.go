package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// defaultDLRWait is how long -dlr waits for receipts when given without a duration.
const defaultDLRWait = 30 * time.Second

const usage = `usage: smppguard load [flags]

Binds to -addr and sends -n submit_sm (or for -duration), reporting responses, latency
percentiles and, with -dlr, receipts; -json prints the result as JSON.

With -mix, each message is one of these kinds, chosen in an even weighted round robin
(weights count messages; a concat message is 2 submit_sm, and -n counts submit_sm):
  plain         a non-OTP text, GSM 7-bit (data_coding 0)
  otp-cached    an OTP, GSM 7-bit, to one of -cached-dests numbers in turn: the prefix of
                -dst followed by the top values of its counter (4477009*: 44770099999900 up)
  otp-uncached  the same OTP to a number used by no other message (-dst's prefix + counter)
  concat        an OTP of 267 characters in 2 parts with a UDH (esm_class 0x40, 05 00 03 ref 02 n),
                sent back to back on one bind, to a new number; needs -window 2 or more
  ucs2          an OTP in Russian, UCS-2 (data_coding 0x08), to a new number
The OTP code changes with every message; the table then has a row per kind.

Flags:
`

// Main is `smppguard load`: it parses args (without the program and command names), runs
// the load and prints the table, or JSON with -json. An interrupted run (ctx canceled) still
// prints what it measured and returns nil.
func Main(ctx context.Context, args []string, stdout io.Writer, log *zap.Logger) error {
	fs := flag.NewFlagSet("smppguard load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		cfg     Config
		jsonOut bool
		dlr     dlrFlag
		mix     string
	)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:2775", "SMSC or proxy address")
	fs.StringVar(&cfg.SystemID, "system-id", "bank", "bind system_id")
	fs.StringVar(&cfg.Password, "password", "bankpw", "bind password")
	fs.StringVar(&cfg.SystemType, "system-type", "", "bind system_type")
	fs.StringVar(&cfg.BindType, "bind-type", BindTransceiver, `"transceiver" or "transmitter" (plus a receiver per bind for receipts)`)
	fs.IntVar(&cfg.Binds, "binds", 1, "parallel binds")
	fs.IntVar(&cfg.Window, "window", DefaultWindow, "outstanding submits per bind")
	fs.IntVar(&cfg.Count, "n", 1000, "total submits (0 = until -duration; defaults to 0 when -duration is given)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop submitting after this (0 = until -n)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open-loop submits/s across binds (0 = as fast as the window allows)")
	fs.StringVar(&cfg.Source, "src", DefaultSource, "source_addr")
	fs.StringVar(&cfg.Dest, "dst", DefaultDest, fmt.Sprintf(`destination_addr; a trailing "*" appends a per-message counter (with -mix: a prefix ending in "*" is required, default %q)`, DefaultMixDest))
	fs.StringVar(&cfg.Text, "text", DefaultText, "short_message text (not with -mix)")
	fs.StringVar(&mix, "mix", "", "a mix of message kinds by weight per message, e.g. "+
		"plain=70,otp-cached=20,otp-uncached=5,concat=3,ucs2=2 (kinds: "+strings.Join(MixKinds(), ", ")+")")
	fs.IntVar(&cfg.CachedDests, "cached-dests", DefaultCachedDests, "with -mix, how many destinations the otp-cached messages go to in turn")
	fs.DurationVar(&cfg.Timeout, "timeout", DefaultTimeout, "per-response timeout")
	fs.Var(&dlr, "dlr", fmt.Sprintf("request receipts and wait for them after the last response: -dlr (%s) or -dlr=DURATION", defaultDLRWait))
	fs.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("smppguard load: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("smppguard load: unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.Duration > 0 && !set["n"] {
		cfg.Count = 0
	}
	if set["mix"] {
		m, err := ParseMix(mix)
		if err != nil {
			return fmt.Errorf("smppguard load: -mix: %w", err)
		}
		cfg.Mix = m
		if set["text"] {
			return errors.New("smppguard load: -text does not apply with -mix (each kind has its own text)")
		}
		if !set["dst"] {
			cfg.Dest = DefaultMixDest
		}
	}
	if dlr > 0 {
		cfg.RegisteredDelivery = 1
		cfg.WaitDLRs = time.Duration(dlr)
	}
	cfg.Logger = log

	res, err := Run(ctx, cfg)
	if res != nil {
		if jsonOut {
			b, jerr := res.JSON()
			if jerr != nil {
				return jerr
			}
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			res.WriteTable(stdout)
		}
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil // interrupted: the partial result is the answer
		}
	}
	return err
}

// dlrFlag is -dlr: a boolean flag that also takes a duration (-dlr, -dlr=true, -dlr=45s).
type dlrFlag time.Duration

func (f *dlrFlag) String() string { return time.Duration(*f).String() }

func (f *dlrFlag) IsBoolFlag() bool { return true }

func (f *dlrFlag) Set(v string) error {
	if b, err := strconv.ParseBool(v); err == nil {
		*f = 0
		if b {
			*f = dlrFlag(defaultDLRWait)
		}
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("want a boolean or a duration, not %q", v)
	}
	*f = dlrFlag(d)
	return nil
}
