package config_test

import (
	"os/exec"
	"strings"
	"testing"
)

// config is a leaf: it holds values, defaults and validation, and the
// components build themselves from it. It may use obs, which only
// defines what is measured, and no other fluxwatch package.
func TestConfigImportsNoComponent(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/fluxwatch/fluxwatch/") && p != "github.com/fluxwatch/fluxwatch/config" &&
			p != "github.com/fluxwatch/fluxwatch/obs" {
			t.Errorf("config depends on %s", p)
		}
	}
}
