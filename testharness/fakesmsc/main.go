package fakesmsc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
)

// Main runs `smppguard fake-smsc`: it parses args, starts a server, prints the listen address
// to stdout ("fake-smsc listening on HOST:PORT") and serves until ctx is cancelled. With
// -mo-every it also sends an MO to -mo-to at that interval (skipped while no receiver is
// bound). -h prints the flags to stdout and returns nil.
func Main(ctx context.Context, args []string, stdout io.Writer, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	fs := flag.NewFlagSet("fake-smsc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg Config
	accounts := map[string]string{}
	fs.StringVar(&cfg.Addr, "listen", "127.0.0.1:2776", "listen address host:port")
	fs.Func("account", "accepted credentials `system_id:password` (repeatable; none = accept any)", func(v string) error {
		id, pw, ok := strings.Cut(v, ":")
		if !ok || id == "" {
			return errors.New("want system_id:password")
		}
		if len(id) > 15 || len(pw) > 8 {
			return errors.New("system_id is at most 15 characters, password at most 8")
		}
		accounts[id] = pw
		return nil
	})
	fs.StringVar(&cfg.MessageIDFormat, "id-format", "hex", "message_id format: hex, decimal or uuid")
	fs.DurationVar(&cfg.DLRDelay, "dlr-delay", 0, "delay before a receipt is sent")
	fs.Func("dlr-mix", "receipt states by weight, e.g. `DELIVRD=90,UNDELIV=10` (also EXPIRED, REJECTD; default all DELIVRD)", func(v string) error {
		m, err := parseMix(v)
		cfg.DLRStatusMix = m
		return err
	})
	fs.StringVar(&cfg.DLRTextIDFormat, "dlr-text-id", "", `"decimal": write hex ids in decimal in the receipt text`)
	fs.BoolVar(&cfg.DLRNoTLVs, "dlr-no-tlvs", false, "omit receipted_message_id and message_state from receipts")
	fs.BoolVar(&cfg.DLRBeforeResp, "dlr-before-resp", false, "send each receipt before its submit_sm_resp")
	fs.Float64Var(&cfg.ErrorRate, "error-rate", 0, "share of submits answered with -error-status (0..1)")
	fs.Func("error-status", "status of injected errors: a name like `ESME_RSUBMITFAIL` or a number (default ESME_RSUBMITFAIL)", func(v string) error {
		st, err := parseStatus(v)
		cfg.ErrorStatus = st
		return err
	})
	fs.IntVar(&cfg.TPS, "tps", 0, "submits per second per bind; excess answered ESME_RTHROTTLED (0 = no limit)")
	fs.DurationVar(&cfg.ResponseDelay, "response-delay", 0, "delay before each submit response")
	fs.DurationVar(&cfg.ResponseJitter, "response-jitter", 0, "random extra delay per submit response (reorders them)")
	fs.IntVar(&cfg.DisconnectAfter, "disconnect-after", 0, "close each connection after this many submits (0 = never)")
	fs.StringVar(&cfg.RecordPath, "record", "", "append every received PDU as a JSON line to this `file`")
	fs.BoolVar(&cfg.NoRecord, "no-record", false, "keep no PDU records in memory")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the error, state and jitter draws")
	moEvery := fs.Duration("mo-every", 0, "send an MO at this interval (needs -mo-to)")
	moTo := fs.String("mo-to", "", "system_id the periodic MOs go to")
	moFrom := fs.String("mo-from", "447700900001", "source address of the periodic MOs")
	moDst := fs.String("mo-dst", "12345", "destination address of the periodic MOs")
	moText := fs.String("mo-text", "hello from fake-smsc", "text of the periodic MOs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintln(stdout, "usage: smppguard fake-smsc [flags]")
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("fake-smsc: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("fake-smsc: unexpected argument %q", fs.Arg(0))
	}
	if len(accounts) > 0 {
		cfg.Accounts = accounts
	}
	switch {
	case *moEvery < 0:
		return errors.New("fake-smsc: -mo-every must not be negative")
	case *moEvery > 0 && *moTo == "":
		return errors.New("fake-smsc: -mo-every needs -mo-to system_id")
	case *moEvery == 0 && *moTo != "":
		return errors.New("fake-smsc: -mo-to needs -mo-every interval")
	case len(*moFrom) > 20 || len(*moDst) > 20:
		return errors.New("fake-smsc: -mo-from and -mo-dst are at most 20 characters")
	case cfg.MessageIDFormat != "hex" && cfg.MessageIDFormat != "decimal" && cfg.MessageIDFormat != "uuid":
		return fmt.Errorf("fake-smsc: -id-format %q: want hex, decimal or uuid", cfg.MessageIDFormat)
	case cfg.DLRTextIDFormat != "" && cfg.DLRTextIDFormat != "decimal":
		return fmt.Errorf("fake-smsc: -dlr-text-id %q: want decimal or nothing", cfg.DLRTextIDFormat)
	case math.IsNaN(cfg.ErrorRate) || cfg.ErrorRate < 0 || cfg.ErrorRate > 1:
		return fmt.Errorf("fake-smsc: -error-rate %v: want a share between 0 and 1", cfg.ErrorRate)
	case cfg.TPS < 0:
		return fmt.Errorf("fake-smsc: -tps %d: want 0 (no limit) or more", cfg.TPS)
	case cfg.DisconnectAfter < 0:
		return fmt.Errorf("fake-smsc: -disconnect-after %d: want 0 (never) or more", cfg.DisconnectAfter)
	case cfg.DLRDelay < 0:
		return errors.New("fake-smsc: -dlr-delay must not be negative")
	case cfg.ResponseDelay < 0:
		return errors.New("fake-smsc: -response-delay must not be negative")
	case cfg.ResponseJitter < 0:
		return errors.New("fake-smsc: -response-jitter must not be negative")
	}
	cfg.Logger = log
	if err := cfg.normalize(); err != nil {
		return fmt.Errorf("fake-smsc: %s", strings.TrimPrefix(err.Error(), "fakesmsc: "))
	}
	srv, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "fake-smsc listening on %s\n", srv.Addr()); err != nil {
		srv.Close()
		return err
	}
	if *moEvery > 0 {
		t := time.NewTicker(*moEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return srv.Close()
			case <-t.C:
				mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := srv.SendMO(mctx, *moTo, *moFrom, *moDst, 0, []byte(*moText))
				cancel()
				switch {
				case err == nil:
				case errors.Is(err, ErrNoReceiver):
					log.Debug("fake-smsc: MO skipped", zap.Error(err))
				default:
					log.Warn("fake-smsc: MO failed", zap.Error(err))
				}
			}
		}
	}
	<-ctx.Done()
	return srv.Close()
}

// parseMix parses "DELIVRD=90,UNDELIV=10".
func parseMix(v string) (map[string]int, error) {
	m := map[string]int{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, w, ok := strings.Cut(part, "=")
		k = strings.ToUpper(strings.TrimSpace(k))
		if !ok {
			return nil, fmt.Errorf("%q: want STATE=weight", part)
		}
		if statIndex(k) < 0 {
			return nil, fmt.Errorf("unknown state %q (want DELIVRD, UNDELIV, EXPIRED, REJECTD)", k)
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s weight %q is not a non-negative integer", k, w)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%s given twice", k)
		}
		m[k] = n
	}
	if len(m) == 0 {
		return nil, errors.New("empty mix")
	}
	if _, _, err := mixTable(m); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "fakesmsc: DLRStatusMix: "))
	}
	return m, nil
}

// parseStatus parses a command_status: an ESME_R* name (case-insensitive, the ESME_ prefix
// optional) or a number (decimal or 0x hex). ESME_ROK is refused: it is not an error.
func parseStatus(v string) (smpp.Status, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseUint(v, 0, 32); err == nil {
		if n == 0 {
			return 0, errors.New("status 0 (ESME_ROK) is not an error")
		}
		return smpp.Status(n), nil
	}
	name := strings.ToUpper(v)
	if !strings.HasPrefix(name, "ESME_") {
		name = "ESME_" + name
	}
	for n := smpp.Status(1); n <= 0x400; n++ {
		if n.String() == name {
			return n, nil
		}
	}
	return 0, fmt.Errorf("unknown status %q (want an ESME_R* name or a number)", v)
}
