package main

import "testing"

func TestProcsFor(t *testing.T) {
	for _, c := range []struct {
		setting int
		envSet  bool
		current int
		want    int
	}{
		{0, false, 2, 1},  // half the CPUs
		{0, false, 1, 1},  // at least one
		{0, false, 16, 8}, //
		{0, true, 16, 16}, // GOMAXPROCS in the environment wins over the default
		{3, true, 16, 3},  // the setting wins over both
		{4, false, 2, 4},
	} {
		if got := procsFor(c.setting, c.envSet, c.current); got != c.want {
			t.Errorf("procsFor(%d, %v, %d) = %d; want %d", c.setting, c.envSet, c.current, got, c.want)
		}
	}
}
