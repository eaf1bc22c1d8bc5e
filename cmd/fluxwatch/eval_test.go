package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestEvalMeetsTheTargets runs the evaluation on one seed for ten simulated
// minutes and checks the JSON contract and the detection targets: flux
// precision ≥ 0.999, recall ≥ 0.99, kind accuracy ≥ 0.99, nothing benign
// or allowlisted listed, median delay ≤ 2 TTL periods.
func TestEvalMeetsTheTargets(t *testing.T) {
	stdout, stderr, err := fw(t, "", "eval", "--seed", "5", "--json", "--duration", "10m", "--log-level", "warn")
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	var r struct {
		Seed    int64 `json:"seed"`
		Classes map[string]struct {
			Precision          *float64 `json:"precision"`
			Recall             *float64 `json:"recall"`
			MedianDelayRounds  *float64 `json:"median_delay_rounds"`
			MedianDelaySeconds *float64 `json:"median_delay_seconds"`
			MedianDelayTTLs    float64  `json:"median_delay_ttls"`
			Count              int      `json:"count"`
		} `json:"classes"`
		Flux struct {
			Precision *float64 `json:"precision"`
			Recall    *float64 `json:"recall"`
		} `json:"flux"`
		KindAccuracy  *float64 `json:"kind_accuracy"`
		FalseListings *int     `json:"false_listings"`
		Missed        *int     `json:"missed"`
		Wrong         []string `json:"wrong"`
		Networks      *struct {
			Purity             *float64 `json:"purity"`
			ARI                *float64 `json:"ari"`
			Known              *float64 `json:"median_delay_rounds_known"`
			Unknown            *float64 `json:"median_delay_rounds_unknown"`
			FalseByAssociation int      `json:"false_listings_by_association"`
		} `json:"networks"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	// The flux networks (issue 17): the JSON keys, nothing listed falsely
	// by association, and a grouping better than none. Ten minutes are
	// too few to group them well (a domain that moved has few agents of
	// its new network yet: purity 0.91-0.96 and ARI 0.51-0.73 measured);
	// the 30-minute evals of the README measure it. Every domain in one
	// network would fall under the purity bound, every domain alone gives
	// an ARI of 0.
	if n := r.Networks; n == nil || n.Purity == nil || n.ARI == nil || n.Known == nil || n.Unknown == nil {
		t.Fatalf("networks figures missing: %s", stdout)
	} else if n.FalseByAssociation != 0 || *n.Purity < 0.8 || *n.ARI <= 0 {
		t.Errorf("networks: purity %v, ARI %v, %d false listings by association", *n.Purity, *n.ARI, n.FalseByAssociation)
	}
	if r.Seed != 5 || r.Flux.Precision == nil || r.Flux.Recall == nil || r.KindAccuracy == nil || r.FalseListings == nil || r.Missed == nil {
		t.Fatalf("JSON lacks keys: %s", stdout)
	}
	for _, class := range []string{"single-flux", "double-flux", "benign"} {
		c, ok := r.Classes[class]
		if !ok || c.Precision == nil || c.Recall == nil || c.MedianDelayRounds == nil || c.MedianDelaySeconds == nil || c.Count == 0 {
			t.Fatalf("class %s missing or incomplete: %s", class, stdout)
		}
		if class != "benign" && c.MedianDelayTTLs > 2 {
			t.Errorf("%s: median delay %.2f TTL periods", class, c.MedianDelayTTLs)
		}
	}
	if *r.Flux.Precision < 0.999 || *r.Flux.Recall < 0.99 || *r.KindAccuracy < 0.99 || *r.FalseListings != 0 {
		t.Errorf("flux precision %v recall %v kind %v false listings %d; wrong: %v",
			*r.Flux.Precision, *r.Flux.Recall, *r.KindAccuracy, *r.FalseListings, r.Wrong)
	}
}

// eval --seeds runs a world per seed, two at once, and its JSON has the
// figures of every class and world.
func TestEvalSeeds(t *testing.T) {
	stdout, stderr, err := fw(t, "", "eval", "--seeds", "3-4", "--parallel", "2", "--json", "--duration", "3m", "--log-level", "warn")
	if err != nil {
		t.Fatalf("eval --seeds: %v\n%s", err, stderr)
	}
	var r struct {
		Seeds   []int64 `json:"seeds"`
		Worlds  int     `json:"worlds"`
		Classes map[string]struct {
			Domains      int            `json:"domains"`
			Precision    map[string]any `json:"precision"`
			Recall       map[string]any `json:"recall"`
			DelaySeconds map[string]any `json:"delay_seconds"`
		} `json:"classes"`
		Flux struct {
			Precision, Recall map[string]any
		} `json:"flux"`
		FalseListed []struct {
			Seed int64  `json:"seed"`
			Line string `json:"line"`
		} `json:"false_listed"`
		Misses  []any `json:"misses"`
		Results []struct {
			Seed int64 `json:"seed"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if !slices.Equal(r.Seeds, []int64{3, 4}) || r.Worlds != 2 || len(r.Results) != 2 || r.Results[0].Seed != 3 || r.Results[1].Seed != 4 ||
		r.FalseListed == nil || r.Misses == nil {
		t.Fatalf("eval --seeds: %s", stdout)
	}
	for _, class := range []string{"single-flux", "double-flux", "benign"} {
		c := r.Classes[class]
		for _, s := range []map[string]any{c.Precision, c.Recall} {
			if _, ok := s["worst"]; !ok || s["median"] == nil || s["mean"] == nil || c.Domains == 0 {
				t.Fatalf("class %s: %+v", class, c)
			}
		}
	}
	if _, _, err := fw(t, "", "eval", "--seeds", "9-1"); err == nil || !strings.Contains(err.Error(), "ends before it starts") {
		t.Fatalf("eval --seeds 9-1: %v", err)
	}
}
