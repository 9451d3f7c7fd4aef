package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/smppguard/smppguard/smpp"
)

// send binds, submits one message, prints the response and, with -dlr, waits for and prints
// its receipt. It is the sandbox's one-shot demo client.
func send(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("send", stderr)
	addr := fs.String("addr", "127.0.0.1:2775", "SMPP address")
	sys := fs.String("system-id", "bank", "system_id")
	pw := fs.String("password", "bankpw", "password")
	src := fs.String("src", "BANK", "source address (sender ID)")
	dst := fs.String("dst", "447700900003", "destination number")
	text := fs.String("text", "Your verification code is 482913", "message text (GSM 03.38 basic characters)")
	dlr := fs.Duration("dlr", 5*time.Second, "wait this long for the delivery receipt (0: do not ask for one)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(*text) > 254 {
		return fmt.Errorf("-text is %d characters; send at most 254", len(*text))
	}
	receipts := make(chan *smpp.PDU, 4)
	h := smpp.HandlerFunc(func(s *smpp.Session, p *smpp.PDU) {
		if p.ID() == smpp.DeliverSM {
			select {
			case receipts <- p.Copy():
			default:
			}
		}
		if p.ID().HasResponse() {
			s.Respond(p, smpp.StatusOK, "")
		}
	})
	bind, err := smpp.BindParams{SystemID: *sys, Password: *pw}.Encode(smpp.BindTransceiver, 0)
	if err != nil {
		return err
	}
	bp, _ := smpp.Parse(bind)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, _, err := smpp.Dial(dctx, *addr, bp, h, smpp.Config{EnquireLinkInterval: -1})
	if err != nil {
		return fmt.Errorf("bind to %s as %s: %w", *addr, *sys, err)
	}
	defer func() {
		uctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		s.Unbind(uctx)
	}()
	var rd byte
	if *dlr > 0 {
		rd = 1
	}
	ton := byte(1)
	if strings.IndexFunc(*src, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		ton = 5 // alphanumeric sender
	}
	sm, err := smpp.NewBuilder(smpp.SubmitSM, smpp.StatusOK, 0).CString("").Int(ton).Int(0).CString(*src).Int(1).Int(1).
		CString(strings.TrimPrefix(*dst, "+")).Int(0).Int(0).Int(0).CString("").CString("").Int(rd).Int(0).Int(0).Int(0).
		ShortMessage([]byte(*text)).PDU()
	if err != nil {
		return err
	}
	start := time.Now()
	resp, err := s.Request(dctx, sm)
	if err != nil {
		return fmt.Errorf("submit_sm: %w", err)
	}
	id := resp.CString(smpp.FieldMessageID)
	fmt.Fprintf(stdout, "submit_sm to %s: %s", *dst, resp.Status())
	if id != "" {
		fmt.Fprintf(stdout, ", message_id %s", id)
	}
	fmt.Fprintf(stdout, " (%s)\n", time.Since(start).Round(time.Microsecond))
	if resp.Status() != smpp.StatusOK || *dlr <= 0 {
		return nil
	}
	select {
	case r := <-receipts:
		fmt.Fprintf(stdout, "receipt: %s\n", r.ShortMessage())
	case <-time.After(*dlr):
		fmt.Fprintf(stdout, "no receipt within %s\n", *dlr)
	case <-ctx.Done():
	}
	return nil
}
