package networks

// Scores of a grouping against a known truth (the simulated world's):
// purity, and the adjusted Rand index (Hubert and Arabie 1985). Each takes
// two labelings of the same items, pred[i] and truth[i] the cluster item i
// was put in and belongs to.

// Purity is the share of items that belong to the truth cluster most of
// their predicted cluster's items belong to: 1 when no predicted cluster
// mixes truth clusters (a grouping into single items is pure too; the
// adjusted Rand index is what tells it from a good one). It is 1 for no
// items.
func Purity(pred, truth []string) float64 {
	if len(pred) == 0 {
		return 1
	}
	counts := map[string]map[string]int{}
	for i, p := range pred {
		if counts[p] == nil {
			counts[p] = map[string]int{}
		}
		counts[p][truth[i]]++
	}
	right := 0
	for _, byTruth := range counts {
		top := 0
		for _, n := range byTruth {
			top = max(top, n)
		}
		right += top
	}
	return float64(right) / float64(len(pred))
}

// AdjustedRand is the adjusted Rand index of two labelings: the share of
// pairs of items on which they agree (together in both, or apart in
// both), corrected for the agreement expected by chance, so that 1 means
// the same partition and 0 what random labelings of the same cluster
// sizes score on average. When both labelings put every item on its own,
// or all items in one cluster, the index is 1 if they agree and 0 if not.
func AdjustedRand(pred, truth []string) float64 {
	n := len(pred)
	if n < 2 {
		return 1
	}
	pair := func(k int) float64 { return float64(k) * float64(k-1) / 2 }
	cells := map[[2]string]int{}
	rows, cols := map[string]int{}, map[string]int{}
	for i := range pred {
		cells[[2]string{pred[i], truth[i]}]++
		rows[pred[i]]++
		cols[truth[i]]++
	}
	index := 0.0
	for _, k := range cells {
		index += pair(k)
	}
	a, b := 0.0, 0.0
	for _, k := range rows {
		a += pair(k)
	}
	for _, k := range cols {
		b += pair(k)
	}
	expected := a * b / pair(n)
	maximum := (a + b) / 2
	if maximum == expected {
		if index == maximum {
			return 1
		}
		return 0
	}
	return (index - expected) / (maximum - expected)
}
