#!/usr/bin/env bash
# Fetches ip-location-db's IP-to-ASN and IP-to-country tables (CC BY 4.0, by
# RouteViews, DB-IP and the NRO) from the npm registry into DIR, for
# --asn-db and --country-db. About 65 MB unpacked; not for committing.
set -euo pipefail
dir=${1:?usage: fetch-ipdb.sh DIR}
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
for pkg in @ip-location-db/asn @ip-location-db/asn-country; do
	tgz=$(npm pack --silent "$pkg")
	tar xzf "$tgz"
	cp package/*-ipv4.csv package/*-ipv6.csv "$dir"/
	rm -rf package "$tgz"
done
rm -f "$dir"/*-num.csv
ls -l "$dir"
echo "use: fluxwatch classify --asn-db $dir/asn-ipv4.csv --asn-db $dir/asn-ipv6.csv --country-db $dir/asn-country-ipv4.csv --country-db $dir/asn-country-ipv6.csv"
