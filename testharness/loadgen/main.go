package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// defaultDLRWait is how long -dlr waits for receipts when given without a duration.
const defaultDLRWait = 30 * time.Second

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
	fs.StringVar(&cfg.Dest, "dst", DefaultDest, `destination_addr; a trailing "*" appends a per-message counter`)
	fs.StringVar(&cfg.Text, "text", DefaultText, "short_message text")
	fs.DurationVar(&cfg.Timeout, "timeout", DefaultTimeout, "per-response timeout")
	fs.Var(&dlr, "dlr", fmt.Sprintf("request receipts and wait for them after the last response: -dlr (%s) or -dlr=DURATION", defaultDLRWait))
	fs.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: smppguard load [flags]")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("smppguard load: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("smppguard load: unexpected arguments %q", fs.Args())
	}
	countSet := false
	fs.Visit(func(f *flag.Flag) { countSet = countSet || f.Name == "n" })
	if cfg.Duration > 0 && !countSet {
		cfg.Count = 0
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
