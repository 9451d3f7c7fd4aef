// Command smppguard is a transparent SMPP 3.4 proxy that guards one-time passwords against
// SIM-swap and call-forwarding fraud.
//
//	smppguard serve [-c config.yaml]    run the proxy (no -c: the embedded sandbox)
//	smppguard check-config -c F         validate a config file
//	smppguard check -c F +447700900123  what an OTP to this number would get now
//	smppguard fake-smsc [flags]         run the bundled fake SMSC
//	smppguard fake-carrier [flags]      run the bundled fake carrier API
//	smppguard send [flags]              bind, submit one message, print the response and receipt
//	smppguard load [flags]              run the load generator against an SMPP port
//	smppguard bench [flags]             direct vs proxied throughput and latency, side by side
//	smppguard tcp-relay -listen A -to B a byte-copying TCP relay, the bench's yardstick
//	smppguard version                   print build information
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	// The first SIGINT/SIGTERM cancels ctx: serve drains and exits 0. A second one exits at once.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "smppguard: second signal, exiting now")
		os.Exit(2)
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

const usage = `usage: smppguard <command> [flags]

commands:
  serve          run the proxy; without -c it runs the embedded sandbox
                 (proxy on 127.0.0.1:2775 and an in-process fake SMSC)
  check-config   validate a config file: smppguard check-config -c smppguard.yaml
  check          run the configured checks for a number and print the decision an OTP
                 to it would get now: smppguard check -c F +447700900123
  fake-smsc      run the bundled fake SMSC (smppguard fake-smsc -h for flags)
  fake-carrier   run the bundled fake carrier API (CAMARA + OAuth2 token endpoint)
  send           bind, submit one message, print the response and its receipt
  load           run the load generator (smppguard load -h for flags)
  bench          run the same load direct to a fake SMSC and through smppguard,
                 each in its own process, and print the ratios
  tcp-relay      a byte-copying TCP relay (no SMPP): the bench's yardstick for the
                 cost of any proxy on the path
  version        print build information

Run 'smppguard <command> -h' for a command's flags.
`

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case "check-config":
		err = checkConfig(args[1:], stdout, stderr)
	case "fake-smsc":
		err = fakeSMSC(ctx, args[1:], stdout, stderr)
	case "fake-carrier":
		err = fakeCarrier(ctx, args[1:], stdout, stderr)
	case "check":
		err = check(ctx, args[1:], stdout, stderr)
	case "load":
		err = load(ctx, args[1:], stdout, stderr)
	case "send":
		err = send(ctx, args[1:], stdout, stderr)
	case "bench":
		err = bench(ctx, args[1:], stdout, stderr)
	case "tcp-relay":
		err = tcpRelay(ctx, args[1:], stderr)
	case "version", "-version", "--version":
		version(stdout)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "smppguard: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if err == errUsage {
			return 2
		}
		fmt.Fprintln(stderr, errorLine(args[0], err))
		return 1
	}
	return 0
}

// errorLine prefixes a command's error with "smppguard <command>: " once: the bundled
// tools' own entry points (loadgen, fake SMSC, fake carrier) already name themselves.
func errorLine(cmd string, err error) string {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "smppguard "+cmd+": "):
		return msg
	case strings.HasPrefix(msg, cmd+": "):
		return "smppguard " + msg
	}
	return "smppguard " + cmd + ": " + msg
}

func version(w io.Writer) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(w, "smppguard (no build info)")
		return
	}
	v := bi.Main.Version
	rev, dirty := "", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	fmt.Fprintf(w, "smppguard %s %s%s %s\n", v, rev, dirty, bi.GoVersion)
}
