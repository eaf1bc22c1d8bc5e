// Package feed serves the published blocklist to the resolvers that load
// it. Server is an authoritative DNS server for exactly one zone, the RPZ
// zone: it answers its SOA and hands it out by AXFR and IXFR (RFC 5936,
// RFC 1995) to secondaries that sign their requests with a configured TSIG
// key, keeps the last versions as differences so an IXFR carries only what
// changed, and sends NOTIFY (RFC 1996) to the configured secondaries on
// every Publish once it listens. Everything else is refused. FileServer serves the
// published export files read-only over HTTP, with ETag and Last-Modified
// validators so pollers download a list only when it changed.
//
// Both listen on loopback unless told otherwise, and neither ever logs a
// TSIG secret.
package feed
