package ipmeta

import (
	"fmt"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// mmdb is a MaxMind-format database: GeoLite2/GeoIP2 ASN and Country, and
// the ip-location-db and iptoasn .mmdb builds, which use the same keys.
type mmdb struct {
	r *maxminddb.Reader
}

// mmdbRecord holds the fields fluxwatch reads; absent ones stay zero.
type mmdbRecord struct {
	ASN     uint32 `maxminddb:"autonomous_system_number"`
	Org     string `maxminddb:"autonomous_system_organization"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	CountryCode string `maxminddb:"country_code"`
}

func openMMDB(path string) (*mmdb, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return &mmdb{r: r}, nil
}

func (m *mmdb) lookup(a netip.Addr) (Info, bool) {
	var rec mmdbRecord
	res := m.r.Lookup(a.Unmap())
	if !res.Found() || res.Decode(&rec) != nil {
		return Info{}, false
	}
	info := Info{ASN: rec.ASN, Org: rec.Org, Country: rec.Country.ISOCode}
	if info.Country == "" {
		info.Country = rec.CountryCode
	}
	return info, info != (Info{})
}

func (m *mmdb) size() int { return int(m.r.Metadata.NodeCount) }
