package importer_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/fluxwatch/fluxwatch/importer"
	"github.com/fluxwatch/fluxwatch/obs"
)

// Read turns each lookup event into a probe, and reports the lines it
// cannot use without stopping.
func ExampleRead() {
	log := `{"rrname":"flux.example","rrtype":"A","rdata":["198.51.100.7","203.0.113.9"],"time_first":1795770001,"time_last":1795773601,"sensor_id":"s1"}
{"rrname":"flux.example","rrtype":"A","rdata":"300.1.2.3","time_first":1795770001,"time_last":1795770001}
`
	stats, err := importer.Read(strings.NewReader(log), "pdns.jsonl", importer.COF, importer.Options{},
		func(p obs.Probe) error {
			o := p.Observations[0]
			fmt.Println(p.Start.Format("15:04:05"), p.Vantage, p.Domain, len(o.Answer), "records", o.Flags)
			return nil
		},
		func(e *importer.LineError) { fmt.Println(e) })
	fmt.Printf("%d lines, %d probes, %d errors, %v\n", stats.Lines, stats.Probes, stats.Errors, err)
	// Output:
	// 09:00:01 pdns:s1 flux.example 2 records passive
	// 10:00:01 pdns:s1 flux.example 2 records passive
	// pdns.jsonl:2: rdata "300.1.2.3" is not an A address
	// 2 lines, 2 probes, 1 errors, <nil>
}

// Encode writes the jsonl format that Decode (and import --format jsonl)
// reads back.
func ExampleEncode() {
	line := `{"domain":"flux.example","vantage":"192.0.2.53:53","start":"2026-11-27T09:00:01Z","observations":[{"time":"2026-11-27T09:00:01.0005Z","name":"flux.example","qtype":"A","rcode":"NOERROR","flags":["ra"],"rtt_us":500,"answer":[{"name":"flux.example","type":"A","ttl":180,"data":"198.51.100.7"}]}]}`
	p, err := importer.Decode([]byte(line))
	if err != nil {
		fmt.Println(err)
		return
	}
	importer.Encode(os.Stdout, p)
	// Output:
	// {"domain":"flux.example","vantage":"192.0.2.53:53","start":"2026-11-27T09:00:01Z","observations":[{"time":"2026-11-27T09:00:01.0005Z","name":"flux.example","qtype":"A","rcode":"NOERROR","flags":["ra"],"rtt_us":500,"answer":[{"name":"flux.example","type":"A","ttl":180,"data":"198.51.100.7"}]}]}
}
