package eval

import (
	"slices"
	"strings"
	"testing"
)

func TestParseSeeds(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []int64
		err  string
	}{
		{"1-5", []int64{1, 2, 3, 4, 5}, ""},
		{"7", []int64{7}, ""},
		{"1-3,8, 2-4", []int64{1, 2, 3, 8, 4}, ""},
		{"5-1", nil, `seed range "5-1": ends before it starts`},
		{"a", nil, `seed "a": not a number`},
		{"1-b", nil, `seed range "1-b": "b" is not a number`},
		{"1-20000", nil, `seed range "1-20000": more than 10000 seeds`},
		{"", nil, `seed "": not a number`},
	} {
		got, err := ParseSeeds(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseSeeds(%q): %v, want error %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseSeeds(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if s := seedList([]int64{1, 2, 3, 8, 1001, 1002}); s != "1-3,8,1001-1002" {
		t.Errorf("seedList: %s", s)
	}
}

// The worlds are summed up per class as worst, median and mean, the
// misses and false listings kept with their seeds.
func TestSumUpWorlds(t *testing.T) {
	world := func(recall, delay float64, missed ...string) *Result {
		r := &Result{Classes: map[string]*ClassFigures{}, Flux: PRFigures{Precision: 1, Recall: recall}, KindAccuracy: 1,
			Missed: len(missed), Misses: missed}
		for _, c := range []string{"single-flux", "double-flux", "benign"} {
			r.Classes[c] = &ClassFigures{Count: 4, PRFigures: PRFigures{Precision: 1, Recall: recall}, MedianDelaySeconds: delay, detected: 4}
		}
		return r
	}
	worlds := []*Result{world(1, 10), world(0.75, 30, "x.test (single-flux narrow-flux) → benign: few"), world(1, 20)}
	for i, w := range worlds {
		w.Networks = &NetworkFigures{Purity: 1, ARI: 1 - 0.1*float64(i), MedianDelayRoundsKnown: 1, MedianDelayRoundsUnknown: float64(2 + i), Known: 2, Unknown: 3,
			Overlap: OverlapFigures{SamePairs: 4, SameBestMin: 0.5 - 0.1*float64(i), DifferentMax: 0.01 * float64(i)}}
	}
	r := sumUp([]int64{1, 2, 3}, worlds)
	if n := r.Networks; n.ARI != (stat{Worst: 0.8, Median: 0.9, Mean: 0.9, Worlds: 3}) || n.MedianDelayRoundsUnknown.Worst != 4 ||
		n.MedianDelayRoundsKnown.Worst != 1 || n.SameBestMin != 0.3 || n.DifferentMax != 0.02 {
		t.Fatalf("networks: %+v", n)
	}
	sf := r.Classes["single-flux"]
	if sf.Domains != 12 || sf.Recall != (stat{Worst: 0.75, Median: 1, Mean: 0.917, Worlds: 3}) ||
		sf.DelaySeconds != (stat{Worst: 30, Median: 20, Mean: 20, Worlds: 3}) || sf.Precision.Worst != 1 {
		t.Fatalf("single-flux: %+v", sf)
	}
	if r.Missed != 1 || len(r.Misses) != 1 || r.Misses[0].Seed != 2 || r.Flux.Recall.Worst != 0.75 || r.FalseListed == nil {
		t.Fatalf("misses: %+v; flux %+v", r.Misses, r.Flux)
	}
	var out strings.Builder
	r.print(&out)
	if !strings.Contains(out.String(), "miss: seed 2: x.test (single-flux narrow-flux) → benign: few") ||
		!strings.Contains(out.String(), "0.750 / 1.000 / 0.917") {
		t.Fatalf("printed:\n%s", out.String())
	}
}
