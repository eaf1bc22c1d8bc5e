// Package seeds reads the seed lists that start a fluxwatch crawl: files of
// suspicious domain names collected from threat-intelligence feeds, blocklists
// and top-site rankings. Such lists come in many shapes — plain one-name-a-line
// lists, hosts files, adblock filter lists, (often defanged) URL lists, CSV
// exports with a header and Tranco-style "rank,domain" rankings — and Parse
// recognises each of them line by line, pulls the domain name out of every
// line, and hands it on in the canonical form produced by Normalize: lower
// case, no trailing dot, internationalised names as A-labels. Lines that do not
// yield a usable name are reported as a Reject with a short, stable reason and
// parsing goes on, so that one bad line never costs the whole list. Parse
// streams its input in constant memory and does not remove duplicates; that,
// and any public-suffix policy, is left to the caller.
//
// Lists published on the web are fetched by URL (Fetcher, HTTP and HTTPS
// only) with a size limit and a timeout, and parsed the same way, rejected
// lines named "URL:line". Fetches are conditional (If-None-Match,
// If-Modified-Since): Poll remembers the validators of every list it
// imported in a small state file, so that a list that has not changed
// costs a 304 and nothing else.
package seeds
