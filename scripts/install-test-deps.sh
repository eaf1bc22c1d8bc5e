#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine: BIND's tools
# (named-checkzone checks the RPZ zones fluxwatch writes) and the Go modules.
set -euo pipefail

need=()
command -v named-checkzone >/dev/null 2>&1 || need+=(bind9-utils)

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-test-deps: need root to install: ${need[*]}" >&2
		exit 1
	fi
	echo "install-test-deps: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

go mod download
