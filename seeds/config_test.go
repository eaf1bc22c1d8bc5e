package seeds_test

import (
	"testing"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/seeds"
)

// config.Default restates the fetch limits, which config cannot import.
func TestConfigDefaults(t *testing.T) {
	if config.DefaultSeedURLMaxBytes != seeds.DefaultMaxBytes || config.DefaultSeedURLTimeout != seeds.DefaultTimeout {
		t.Fatalf("config's defaults %d, %s; seeds' %d, %s", config.DefaultSeedURLMaxBytes, config.DefaultSeedURLTimeout,
			seeds.DefaultMaxBytes, seeds.DefaultTimeout)
	}
}
