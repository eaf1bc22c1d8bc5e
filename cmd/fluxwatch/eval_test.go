package main

import (
	"encoding/json"
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
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
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
