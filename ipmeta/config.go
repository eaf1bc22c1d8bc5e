package ipmeta

import (
	"errors"
	"fmt"

	"github.com/fluxwatch/fluxwatch/config"
)

// FromConfig loads the ASN and country tables c names (earlier files win
// where they overlap) or, when it names none, the tables `ipdb update`
// keeps in c.IPDBPath(), if there are any.
func FromConfig(c *config.Config) (*DB, error) {
	db := &DB{}
	if len(c.ASNDB) == 0 && len(c.CountryDB) == 0 {
		if _, err := db.LoadDir(c.IPDBPath()); err != nil && !errors.Is(err, ErrNoTables) {
			return nil, err
		}
		return db, nil
	}
	for _, f := range c.ASNDB {
		if err := db.Open(f, ASN); err != nil {
			return nil, fmt.Errorf("loading ASN table: %w", err)
		}
	}
	for _, f := range c.CountryDB {
		if err := db.Open(f, Country); err != nil {
			return nil, fmt.Errorf("loading country table: %w", err)
		}
	}
	return db, nil
}
