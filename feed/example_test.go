package feed_test

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/fluxwatch/fluxwatch/feed"
)

// A secondary signs its transfer request with the shared key; after a
// second publish it asks for what changed since its serial.
func ExampleServer() {
	key := feed.Key{Name: "fluxwatch-feed", Secret: "ZXhhbXBsZS1rZXktbm90LWEtcmVhbC1zZWNyZXQhIQ=="}
	srv, err := feed.NewServer(feed.Options{Zone: "fluxwatch.rpz", Addr: "127.0.0.1:0", Keys: []feed.Key{key},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	publish := func(serial int, names ...string) {
		zone := fmt.Sprintf("$ORIGIN fluxwatch.rpz.\n@ 300 IN SOA localhost. hostmaster.localhost. %d 3600 600 604800 300\n", serial)
		for _, n := range names {
			zone += n + " 300 CNAME .\n"
		}
		rrs, _ := feed.ParseZone(strings.NewReader(zone), "fluxwatch.rpz", "example")
		if err := srv.Publish(rrs); err != nil {
			panic(err)
		}
	}
	transfer := func(m *dns.Msg) {
		m.SetTsig("fluxwatch-feed.", dns.HmacSHA256, 300, time.Now().Unix())
		tr := &dns.Transfer{TsigSecret: map[string]string{"fluxwatch-feed.": key.Secret}}
		ch, err := tr.In(m, srv.Addr())
		if err != nil {
			panic(err)
		}
		for env := range ch {
			for _, rr := range env.RR {
				if soa, ok := rr.(*dns.SOA); ok {
					fmt.Println("SOA", soa.Serial)
				} else {
					fmt.Println(rr.Header().Name)
				}
			}
		}
	}

	publish(1, "flux.test", "old.test")
	transfer(new(dns.Msg).SetAxfr("fluxwatch.rpz."))
	publish(2, "flux.test", "new.test")
	fmt.Println("--")
	transfer(new(dns.Msg).SetIxfr("fluxwatch.rpz.", 1, "localhost.", "hostmaster.localhost."))
	// Output:
	// SOA 1
	// flux.test.fluxwatch.rpz.
	// old.test.fluxwatch.rpz.
	// SOA 1
	// --
	// SOA 2
	// SOA 1
	// old.test.fluxwatch.rpz.
	// SOA 2
	// new.test.fluxwatch.rpz.
	// SOA 2
}
