package seeds

import (
	"bufio"
	"io"
)

// ParseUnique parses a seed list as Parse does and returns its names, each
// once in the order first seen, and the rejected lines.
func ParseUnique(r io.Reader, name string, opts Options) ([]string, []Reject, error) {
	var names []string
	var rejects []Reject
	seen := map[string]bool{}
	err := Parse(bufio.NewReader(r), name, opts,
		func(name string, _ int) {
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		},
		func(rj Reject) { rejects = append(rejects, rj) })
	return names, rejects, err
}
