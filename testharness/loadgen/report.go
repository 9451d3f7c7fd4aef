package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes r as a human-readable table.
func (r *Result) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "sent\t%d\n", r.Sent)
	fmt.Fprintf(tw, "responses\t%d\tok %d, errors %d, timeouts %d\n", r.Responses, r.OK, r.Responses-r.OK, r.Timeouts)
	if len(r.ErrorsByStatus) > 0 {
		names := make([]string, 0, len(r.ErrorsByStatus))
		for name := range r.ErrorsByStatus {
			names = append(names, name)
		}
		slices.Sort(names)
		parts := make([]string, len(names))
		for i, name := range names {
			parts[i] = fmt.Sprintf("%s %d", name, r.ErrorsByStatus[name])
		}
		fmt.Fprintf(tw, "errors\t%s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(tw, "elapsed\t%s\n", fmtDuration(r.Elapsed))
	fmt.Fprintf(tw, "throughput\t%.0f responses/s\n", r.Throughput)
	fmt.Fprintf(tw, "latency\t%s\n", r.Latency)
	fmt.Fprintf(tw, "message ids\t%d distinct\n", r.MessageIDs)
	if r.DLRs > 0 || r.MOs > 0 || r.DLRLatency.N > 0 {
		fmt.Fprintf(tw, "receipts\t%d\tmatched %d, MOs %d\n", r.DLRs, r.DLRLatency.N, r.MOs)
		fmt.Fprintf(tw, "receipt latency\t%s\n", r.DLRLatency)
	}
	tw.Flush()
	if len(r.ByKind) > 0 {
		fmt.Fprintln(w)
		r.writeKinds(w)
	}
}

// writeKinds writes the per-kind table: a row per kind of the Mix, in the order of
// MixKinds, and a row of totals.
func (r *Result) writeKinds(w io.Writer) {
	// Numbers align right; the names, padded to one width, read as aligned left.
	width := len("kind")
	for name := range r.ByKind {
		width = max(width, len(name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tweight\tmessages\tsent\tok\terrors\ttimeouts\tp50\tp90\tp99\tmax\t\n", width, "kind")
	row := func(name, weight string, k KindResult) {
		l := k.Latency
		fmt.Fprintf(tw, "%-*s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", width, name, weight, k.Messages, k.Sent, k.OK, k.Errors, k.Timeouts,
			fmtDuration(l.P50), fmtDuration(l.P90), fmtDuration(l.P99), fmtDuration(l.Max))
	}
	var total KindResult
	for _, name := range MixKinds() {
		k, ok := r.ByKind[name]
		if !ok {
			continue
		}
		row(name, strconv.Itoa(k.Weight), k)
		total.Weight += k.Weight
		total.Messages += k.Messages
		total.Sent += k.Sent
		total.OK += k.OK
		total.Errors += k.Errors
		total.Timeouts += k.Timeouts
	}
	total.Latency = r.Latency
	row("all", strconv.Itoa(total.Weight), total)
	tw.Flush()
}

// String formats the percentiles on one line.
func (p Percentiles) String() string {
	if p.N == 0 {
		return "n=0"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (n=%d)",
		fmtDuration(p.P50), fmtDuration(p.P90), fmtDuration(p.P99), fmtDuration(p.P999), fmtDuration(p.Max), p.N)
}

// fmtDuration rounds d to four significant digits.
func fmtDuration(d time.Duration) string {
	unit := time.Duration(1)
	for v := d / 10000; v > 0; v /= 10 {
		unit *= 10
	}
	return d.Round(unit).String()
}

// JSON returns r as indented JSON. Field names are the Go names; durations are integer
// nanoseconds, so the output unmarshals back into a Result.
func (r *Result) JSON() ([]byte, error) {
	return json.MarshalIndent(r, "", "  ")
}
