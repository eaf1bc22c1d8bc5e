// Package simnet is an offline simulated DNS world with known truth, for
// fluxwatch's demo and tests.
//
// A World is generated from a seed: single-flux, double-flux, benign (CDN,
// round-robin, stable) and broken (NXDOMAIN, SERVFAIL, NODATA) domains
// under the reserved TLDs .test and .example, the name servers and CDN
// edges they point to, and the autonomous systems their addresses belong
// to. Start serves the world through several vantage resolvers on loopback
// ports (UDP and TCP): recursive resolvers as a crawler sees them, each
// with its own cache and its own view of the rotating records.
//
// The world runs on an accelerated clock (Config.Speed simulated seconds
// per real second). Rotating record sets change every TTL: the records a
// name has are a pure function of the seed, the name, the type, the epoch
// (whole TTLs since the Unix epoch in simulated time) and the vantage, so
// only cache timing depends on when queries arrive. Truth, Domains and
// WriteASNTable tell a test or a demo what the crawler should find.
//
// Nothing in the world is real: the addresses only appear inside DNS
// answers and nothing ever connects to them.
package simnet
