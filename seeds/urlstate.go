package seeds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
)

// URLState remembers, per URL, the version of its list last imported: the
// validators for the conditional request of the next fetch, and the
// source and column the list was read with (read with others, it is
// fetched whole again). It is kept in a small JSON file.
type URLState map[string]ListState

// ListState is what URLState remembers of one list.
type ListState struct {
	Source string `json:"source"`
	Column string `json:"column,omitempty"`
	Validators
}

// LoadURLState reads a state file; a missing one is an empty state.
func LoadURLState(path string) (URLState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return URLState{}, nil
	}
	if err != nil {
		return URLState{}, fmt.Errorf("reading the seed URL state: %w", err)
	}
	s := URLState{}
	if err := json.Unmarshal(b, &s); err != nil {
		return URLState{}, fmt.Errorf("reading the seed URL state %s: %w", path, err)
	}
	return s, nil
}

// Save writes the state whole (a temporary file renamed into place),
// readable by its owner only: URLs can carry credentials.
func (s URLState) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*") // created 0600
	if err != nil {
		return fmt.Errorf("writing the seed URL state: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing the seed URL state: %w", err)
	}
	return nil
}

// validators returns the validators of l's last version, if it was read
// as l says to read it.
func (s URLState) validators(l URLList) Validators {
	if st, ok := s[l.URL]; ok && st.Source == l.Source && st.Column == l.Column {
		return st.Validators
	}
	return Validators{}
}

// Poll fetches every list, each conditionally on the version last
// imported that the state file at statePath remembers, and passes what
// each fetch brought to add (also a 304's NotModified, which brings
// nothing new). A list is remembered once add has returned nil, so that
// a list not imported is fetched whole again; lists no longer given are
// forgotten. A list that fails to fetch leaves its names as they were;
// the others go on, and the errors are returned joined. A state file that
// does not read is replaced.
func (f *Fetcher) Poll(ctx context.Context, lists []URLList, statePath string, add func(URLList, Fetched) error) error {
	state, loadErr := LoadURLState(statePath)
	errs := []error{loadErr}
	next := URLState{}
	for _, l := range lists {
		if st, ok := state[l.URL]; ok {
			next[l.URL] = st
		}
	}
	for _, l := range lists {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		got, err := f.Fetch(ctx, l, state.validators(l))
		if err == nil {
			err = add(l, got)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		next[l.URL] = ListState{Source: l.Source, Column: l.Column, Validators: got.Validators}
	}
	if loadErr != nil || !maps.Equal(state, next) {
		errs = append(errs, next.Save(statePath))
	}
	return errors.Join(errs...)
}
