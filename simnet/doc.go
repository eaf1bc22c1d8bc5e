// Package simnet is an offline simulated DNS world with known truth, for
// fluxwatch's demo and tests.
//
// A World is generated from a seed: single-flux, double-flux, benign (CDN,
// round-robin, stable) and broken (NXDOMAIN, SERVFAIL, NODATA) domains
// under the reserved TLDs .test and .example, the name servers and CDN
// edges they point to, and the autonomous systems their addresses belong
// to. Hard cases come with them: benign look-alikes of flux (geo DNS that
// answers each region of vantages differently, public pools of volunteer
// servers that only an allowlist tells from flux, sites migrating between
// hosters) and flux that keeps a feature low (slow flux, whose answers last
// four TTLs; narrow flux, confined to three ISPs). Start serves the world
// through several vantage resolvers on loopback ports (UDP and TCP):
// recursive resolvers as a crawler sees them, each with its own cache and
// its own view of the rotating records. A registry server on a port of its
// own (ParentPort) is the authoritative server of the TLD zones: asked
// without recursion, it refers each registered domain to its name servers
// with glue, so that a crawler can measure delegations as the parent zone
// holds them. The TLDs' name servers (a.nic.test. and so on) resolve to the
// world's loopback address.
//
// The world runs on an accelerated clock (Config.Speed simulated seconds
// per real second). Rotating record sets change every TTL (slow flux every
// four): the records a name has are a pure function of the seed, the name,
// the type, the epoch (whole periods since the Unix epoch in simulated
// time) and the vantage, so only cache timing depends on when queries
// arrive. Truth, Domains, WriteASNTable and WriteAllowlist tell a test or a
// demo what the crawler should find; WriteConfig writes them beside a
// fluxwatch config that points crawl, classify and daemon at the world.
// The servers listen on ports picked at random, or on fixed ones
// (Config.Port), so that a world started again answers where it did.
//
// Nothing in the world is real: the addresses only appear inside DNS
// answers and nothing ever connects to them, except the TLD name servers'
// loopback address.
package simnet
