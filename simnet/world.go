package simnet

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Domain classes.
const (
	ClassSingleFlux = "single-flux"
	ClassDoubleFlux = "double-flux"
	ClassBenign     = "benign"
	ClassBroken     = "broken"
)

// Domain kinds, a finer split of the classes.
const (
	KindFluxA      = "flux-a"       // single flux: A/AAAA rotate, stable NS
	KindFluxNSAddr = "flux-ns-addr" // double flux: stable NS names, their addresses rotate
	KindFluxNSName = "flux-ns-name" // double flux: the NS names rotate too
	KindCDN        = "cdn"          // CNAME into a CDN zone, addresses in 1 or 2 ASNs
	KindRoundRobin = "round-robin"  // 3–5 fixed addresses in one ASN, order rotates
	KindStable     = "stable"       // 1–2 fixed addresses
	KindNXDomain   = "nxdomain"     // every name at or below answers NXDOMAIN
	KindServfail   = "servfail"     // every name at or below answers SERVFAIL
	KindNoData     = "nodata"       // delegated (NS answer), but no A or AAAA

	// Hard cases: benign look-alikes of flux, and flux that hides.
	KindGeo        = "geo"         // each vantage region gets its own 2–4 fixed addresses, 1–2 ASNs, TTL 60
	KindPool       = "pool"        // NTP-pool-like: hundreds of volunteer addresses in 30+ ASNs, TTL 150; allowlisted
	KindMigration  = "migration"   // 2 fixed addresses in one hosting ASN, from Start+10–15 min 2 in another; TTL 300
	KindSlowFlux   = "slow-flux"   // single flux whose answer changes only every 4 TTLs (TTL 60–120)
	KindNarrowFlux = "narrow-flux" // single flux confined to 3 residential ASNs with 9–18 /16s
	// Hard negatives that spread like flux within one provider.
	KindBigCDN        = "big-cdn"        // no CNAME: 300–600 edge addresses over 8–24 /16s of 1–2 ASNs (8–12 each), 4–8 per answer, TTL 20–60
	KindSharedHosting = "shared-hosting" // three sites on the same 1–2 addresses of one hosting ASN
	KindLoadBalancer  = "load-balancer"  // 8–16 addresses of one hosting ASN, 2–4 per answer, TTL 30
	// Flux networks and the names that share addresses without being one.
	KindNetworkFlux = "network-flux" // one of a flux network's domains: 1–2 of its 120–200 agents per answer, TTL 60–180
	KindSharedEdge  = "shared-edge"  // six benign sites answering 2 of the same 4 CDN edge addresses, TTL 60
	KindParked      = "parked"       // six parked domains answering a parking service's one address, TTL 3600
)

// Defaults of Config.
const (
	DefaultVantages   = 4
	DefaultSpeed      = 30
	DefaultSingleFlux = 6
	DefaultDoubleFlux = 4
	DefaultBenign     = 8
	DefaultBroken     = 3
	DefaultGeoDNS     = 2
	DefaultPools      = 1
	DefaultMigrations = 2
	DefaultSlowFlux   = 2
	DefaultNarrowFlux = 2
	DefaultBigCDNs    = 2
	DefaultShared     = 1 // groups of three sites
	DefaultBalancers  = 2
	// The flux networks and their shared-address negatives are none by
	// default, so that worlds made before them stay as they were; eval's
	// worlds hold EvalNetworks of them, and a group of each negative.
	DefaultNetworks = 0
	DefaultEdges    = 0
	DefaultParking  = 0
	EvalNetworks    = 3

	MaxSpeed = 1_000_000 // the highest Config.Speed: 11.6 simulated days per real second
)

// DefaultStart is the simulated time a world starts at unless Config.Start is set.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Config describes a world. The zero value is a valid default world with seed 0.
type Config struct {
	Seed     int64
	Vantages int       // number of vantage resolvers, default 4, at most 64
	Speed    float64   // simulated seconds per real second, default 30, at most MaxSpeed
	Start    time.Time // simulated start, default DefaultStart
	Listen   string    // loopback address to bind, default "127.0.0.1"; each vantage gets its own port
	// Port, if not zero, fixes the ports: the registry listens on Port and
	// vantage i on Port+1+i, so that a world started again answers where
	// it did (and a config written for it still holds). Zero picks free
	// ports at random.
	Port int

	// Domain counts per class: zero means the default, negative means none.
	// SingleFlux counts flux-a domains, DoubleFlux flux-ns-addr and
	// flux-ns-name ones, Benign cdn, round-robin and stable ones, Broken
	// nxdomain, servfail and nodata ones.
	SingleFlux, DoubleFlux, Benign, Broken int

	// Hard-case counts, zero meaning the default and negative none:
	// geo-DNS sites (benign), public pools (benign, allowlisted), hosting
	// migrations (benign), slow flux and narrow flux (both single flux).
	GeoDNS, Pools, Migrations, SlowFlux, NarrowFlux int
	// Hard negatives, zero meaning the default and negative none: big CDNs
	// without a CNAME, groups of three sites on one shared-hosting address,
	// DNS load balancers within one provider (all benign).
	BigCDNs, SharedHosting, LoadBalancers int
	// Flux networks (each 4–5 domains, see KindNetworkFlux) and the
	// shared-address negatives beside them: groups of six benign sites on
	// one CDN edge, parking services of six parked domains. Zero means the
	// default (none), negative none.
	FluxNetworks, SharedEdges, Parking int

	// FluxEndsAfter, if positive, stops every flux domain's flux that much
	// simulated time after Start: from then on its addresses (and its flux
	// name servers') settle on one of them, with a 300 s TTL. Truth still
	// gives the class it had.
	FluxEndsAfter time.Duration

	// ServfailDelay delays SERVFAIL answers by this much real time, to play
	// a resolver that gives up on a dead delegation. Zero answers at once.
	ServfailDelay time.Duration

	Logger *slog.Logger // nil discards
}

// WithNetworks returns c with eval's flux networks and the names that
// share addresses with them: EvalNetworks networks, a group of shared CDN
// edges and a parking service. Eval's worlds are these, and `simnet
// --networks` serves one.
func (c Config) WithNetworks() Config {
	c.FluxNetworks, c.SharedEdges, c.Parking = EvalNetworks, 1, 1
	return c
}

// withDefaults fills in defaults and checks the values.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Vantages < 0 || c.Vantages > 64:
		return c, fmt.Errorf("simnet: vantages %d out of range 0..64", c.Vantages)
	case c.Speed < 0 || c.Speed > MaxSpeed || math.IsNaN(c.Speed):
		return c, fmt.Errorf("simnet: speed %v out of range 0..%d", c.Speed, MaxSpeed)
	case c.FluxEndsAfter < 0:
		return c, fmt.Errorf("simnet: negative flux end %v", c.FluxEndsAfter)
	case c.ServfailDelay < 0:
		return c, fmt.Errorf("simnet: negative servfail delay %v", c.ServfailDelay)
	}
	if c.Port < 0 || c.Port > 0 && c.Port+cmp.Or(c.Vantages, DefaultVantages) > 65535 {
		return c, fmt.Errorf("simnet: port %d: the registry and the vantages need ports %d to %d, outside 1..65535",
			c.Port, c.Port, c.Port+cmp.Or(c.Vantages, DefaultVantages))
	}
	c.Vantages = cmp.Or(c.Vantages, DefaultVantages)
	c.Speed = cmp.Or(c.Speed, DefaultSpeed)
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	c.Listen = cmp.Or(c.Listen, "127.0.0.1")
	if a, err := netip.ParseAddr(c.Listen); err != nil || !a.IsLoopback() {
		return c, fmt.Errorf("simnet: listen address %q is not a loopback IP address", c.Listen)
	}
	count := func(n, def int) int {
		if n < 0 {
			return 0
		}
		return cmp.Or(n, def)
	}
	c.SingleFlux = count(c.SingleFlux, DefaultSingleFlux)
	c.DoubleFlux = count(c.DoubleFlux, DefaultDoubleFlux)
	c.Benign = count(c.Benign, DefaultBenign)
	c.Broken = count(c.Broken, DefaultBroken)
	c.GeoDNS = count(c.GeoDNS, DefaultGeoDNS)
	c.Pools = count(c.Pools, DefaultPools)
	c.Migrations = count(c.Migrations, DefaultMigrations)
	c.SlowFlux = count(c.SlowFlux, DefaultSlowFlux)
	c.NarrowFlux = count(c.NarrowFlux, DefaultNarrowFlux)
	c.BigCDNs = count(c.BigCDNs, DefaultBigCDNs)
	c.SharedHosting = count(c.SharedHosting, DefaultShared)
	c.LoadBalancers = count(c.LoadBalancers, DefaultBalancers)
	c.FluxNetworks = count(c.FluxNetworks, DefaultNetworks)
	c.SharedEdges = count(c.SharedEdges, DefaultEdges)
	c.Parking = count(c.Parking, DefaultParking)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// port returns the fixed port of the i-th server (0 the registry, 1+i
// vantage i), or 0 when the ports are picked at random.
func (c Config) port(i int) int {
	if c.Port == 0 {
		return 0
	}
	return c.Port + i
}

// Domain is the truth about one seed domain of the world.
type Domain struct {
	Name  string // lower case, no trailing dot
	Class string // ClassSingleFlux, ClassDoubleFlux, ClassBenign or ClassBroken
	Kind  string // one of the Kind constants
	// TTL of the address answer in simulated seconds: the A TTL (for a CDN
	// the edge name's), the negative TTL for nxdomain and nodata, 0 for servfail.
	// A slow-flux answer lasts four of its TTLs.
	TTL uint32
	// Addresses is how many distinct A and AAAA addresses the name can
	// resolve to over time, and ASNs how many networks they lie in.
	Addresses, ASNs int
	// Allowlisted marks a benign name that only an allowlist tells apart
	// from flux (a public pool); WriteAllowlist lists these names.
	Allowlisted bool
	// Network is the flux network a domain of one (KindNetworkFlux)
	// belongs to at the end of a run, "botnet-1" and so on; "" for every
	// other domain (a flux domain with a pool of its own is a network of
	// one). A domain that moved there from another network during the run
	// names that one in PreviousNetwork, and when in MovesAt.
	Network, PreviousNetwork string
	MovesAt                  time.Time
	// Starts is when a newer domain of a network is delegated: before it,
	// it and every name under it are NXDOMAIN. Zero: from the start.
	Starts time.Time
}

// World is a running simulated DNS world. Its methods are safe for
// concurrent use.
type World struct {
	cfg      Config
	log      *slog.Logger
	clock    *clock
	model    *model
	domains  []Domain // sorted by name
	vantages []*vantage
	registry *endpoint      // the parent-zone server of the TLDs
	servers  []*endpoint    // every endpoint started, for Close
	wg       sync.WaitGroup // server goroutines
	done     chan struct{}  // closed by Close

	mu   sync.Mutex
	stop func() bool // unregisters the context hook; guarded by mu

	closeOnce sync.Once
	closeErr  error
}

// Domains returns the world's seed domains sorted by name.
func (w *World) Domains() []Domain { return slices.Clone(w.domains) }

// Truth returns what name (any case, trailing dot optional) really is.
func (w *World) Truth(name string) (Domain, bool) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	i, ok := slices.BinarySearchFunc(w.domains, name, func(d Domain, n string) int { return strings.Compare(d.Name, n) })
	if !ok {
		return Domain{}, false
	}
	return w.domains[i], true
}

// Now returns the current simulated time.
func (w *World) Now() time.Time { return w.clock.Now() }

// Sleep waits until d of simulated time has passed (d/Speed of real time)
// and returns ctx.Err() if ctx is done first.
func (w *World) Sleep(ctx context.Context, d time.Duration) error { return w.clock.Sleep(ctx, d) }

// ASNOf returns the simulated AS number a address belongs to.
func (w *World) ASNOf(a netip.Addr) (uint32, bool) {
	as, ok := w.model.space.lookup(a)
	if !ok {
		return 0, false
	}
	return as.number, true
}

// WriteASNTable writes the world's IP-to-ASN table in iptoasn TSV format:
// range_start, range_end, AS_number, country_code, AS_description.
func (w *World) WriteASNTable(out io.Writer) error {
	if err := w.model.space.writeTable(out); err != nil {
		return fmt.Errorf("simnet: writing ASN table: %w", err)
	}
	return nil
}

// WriteSeeds writes a header comment and then every seed domain, one a line.
func (w *World) WriteSeeds(out io.Writer) error {
	bw := bufio.NewWriter(out)
	fmt.Fprintf(bw, "# fluxwatch simulated world, seed %d\n", w.cfg.Seed)
	for _, d := range w.domains {
		fmt.Fprintln(bw, d.Name)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("simnet: writing seeds: %w", err)
	}
	return nil
}

// WriteAllowlist writes a header comment and then the name of every
// allowlisted domain (the public pools), one a line.
func (w *World) WriteAllowlist(out io.Writer) error {
	bw := bufio.NewWriter(out)
	fmt.Fprintf(bw, "# fluxwatch simulated world, seed %d: public pools, benign despite flux-like answers\n", w.cfg.Seed)
	for _, d := range w.domains {
		if d.Allowlisted {
			fmt.Fprintln(bw, d.Name)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("simnet: writing allowlist: %w", err)
	}
	return nil
}

// ParentPort returns the port of the registry server, which serves the
// parent zones (test. and example.) on the world's loopback address over
// UDP and TCP. The TLDs' name-server hosts (a.nic.test. and so on) resolve
// to that address; ask them on this port rather than 53.
func (w *World) ParentPort() int { return w.registry.port() }

// WriteResolvers writes the address of every vantage resolver, one a line.
func (w *World) WriteResolvers(out io.Writer) error {
	bw := bufio.NewWriter(out)
	for _, v := range w.vantages {
		fmt.Fprintln(bw, v.ep.addr)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("simnet: writing resolvers: %w", err)
	}
	return nil
}

// Vantages returns the "127.0.0.1:port" address of every vantage resolver.
func (w *World) Vantages() []string {
	out := make([]string, len(w.vantages))
	for i, v := range w.vantages {
		out[i] = v.ep.addr
	}
	return out
}

// Queries returns how many queries each vantage has received.
func (w *World) Queries() []uint64 {
	out := make([]uint64, len(w.vantages))
	for i, v := range w.vantages {
		out[i] = v.queries.Load()
	}
	return out
}

// Close shuts every server (vantages and registry) down and waits for them. It may be
// called more than once; later calls return the first call's result.
func (w *World) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		stop := w.stop
		w.mu.Unlock()
		if stop != nil {
			stop()
		}
		close(w.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var errs []error
		for _, ep := range w.servers {
			errs = append(errs, ep.shutdown(ctx))
		}
		w.wg.Wait()
		w.closeErr = errors.Join(errs...)
	})
	return w.closeErr
}
