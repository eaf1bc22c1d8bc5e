#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine, only what is
# missing, then the Go modules:
#   bind9-utils     named-checkzone checks the RPZ zones fluxwatch writes
#   chromium        drives the web view's end-to-end test (web/browser_test.go)
#   nftables ipset  check and load the address exports in a network namespace
#                   of the test's own (results/addresses_test.go)
#   bind9 unbound pdns-recursor knot-resolver lua-cqueues
#                   the resolvers the feed's integration tests start on
#                   loopback (feed/*_test.go); kresd needs lua-cqueues to
#                   watch its RPZ file
set -euo pipefail

has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
need=()
has named-checkzone || need+=(bind9-utils)
has chromium || need+=(chromium)
has nft || need+=(nftables)
has ipset || need+=(ipset)
has named || need+=(bind9)
has unbound || need+=(unbound)
has pdns_recursor || need+=(pdns-recursor)
has kresd || need+=(knot-resolver)
dpkg-query -W -f='${Status}' lua-cqueues 2>/dev/null | grep -q 'ok installed' || need+=(lua-cqueues)

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-test-deps: need root to install: ${need[*]}" >&2
		exit 1
	fi
	echo "install-test-deps: installing ${need[*]}"
	# Installing the resolvers must not start them: where no policy-rc.d
	# forbids starting services, one is put in place for the install, so no
	# Debian-started resolver holds port 53 or 953. The tests use ports of
	# their own either way.
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# fluxwatch install-test-deps: no service starts during the install\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

go mod download
