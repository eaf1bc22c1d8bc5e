package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A file without the network buckets (every file written before them)
// reads as holding no networks, also through a read-only open, which
// leaves it byte for byte as it was; the first ReplaceNetworks makes them.
func TestNetworksAbsentReadAsNone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	filledDB(t, path)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := ro.Networks(func(string, []byte) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("Networks: %d, %v; want none", n, err)
	}
	if v, err := ro.Network("net-1"); v != nil || err != nil {
		t.Errorf("Network: %q, %v", v, err)
	}
	if id, err := ro.NetworkOf("a.test"); id != "" || err != nil {
		t.Errorf("NetworkOf: %q, %v", id, err)
	}
	if idx, err := ro.NetworkIndex(); len(idx) != 0 || err != nil {
		t.Errorf("NetworkIndex: %v, %v", idx, err)
	}
	if seq, err := ro.NetworkSequence(); seq != 0 || err != nil {
		t.Errorf("NetworkSequence: %d, %v", seq, err)
	}
	if err := ro.ReplaceNetworks(nil, 1); err == nil {
		t.Error("ReplaceNetworks on a read-only store succeeded")
	}
	ro.Close()
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("a read-only open changed the file")
	}
}

// ReplaceNetworks replaces every network and the domain index at once and
// keeps the highest sequence it was given.
func TestReplaceNetworks(t *testing.T) {
	s := openTest(t)
	first := []NetworkRecord{
		{ID: "net-1", Domains: []string{"a.test", "b.test"}, JSON: []byte(`{"id":"net-1"}`)},
		{ID: "net-2", Domains: []string{"c.test"}, JSON: []byte(`{"id":"net-2"}`)},
	}
	if err := s.ReplaceNetworks(first, 2); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.NetworkOf("b.test"); id != "net-1" {
		t.Errorf("NetworkOf(b.test) = %q", id)
	}
	if err := s.ReplaceNetworks([]NetworkRecord{{ID: "net-3", Domains: []string{"a.test"}, JSON: []byte(`{"id":"net-3"}`)}}, 3); err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := s.Networks(func(id string, v []byte) error { ids = append(ids, id+"="+string(v)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != `net-3={"id":"net-3"}` {
		t.Errorf("networks after the second replace: %v", ids)
	}
	idx, err := s.NetworkIndex()
	if err != nil || len(idx) != 1 || idx["a.test"] != "net-3" {
		t.Errorf("index: %v, %v", idx, err)
	}
	if v, _ := s.Network("net-1"); v != nil {
		t.Errorf("net-1 still stored: %s", v)
	}
	if seq, _ := s.NetworkSequence(); seq != 3 {
		t.Errorf("sequence %d, want 3", seq)
	}
	// A replace computed from an older sequence never takes it back: the
	// ids it gave stay given.
	if err := s.ReplaceNetworks(nil, 1); err != nil {
		t.Fatal(err)
	}
	if seq, _ := s.NetworkSequence(); seq != 3 {
		t.Errorf("sequence %d after a replace with 1, want it kept at 3", seq)
	}
	if err := s.ReplaceNetworks([]NetworkRecord{{Domains: []string{"x.test"}}}, 4); err == nil {
		t.Error("a network without an id was stored")
	}
}

// Salvage copies the networks of a file that has them.
func TestSalvageKeepsNetworks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "n.db")
	filledDB(t, path)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceNetworks([]NetworkRecord{{ID: "net-7", Domains: []string{"a.test"}, JSON: []byte(`{"id":"net-7"}`)}}, 7); err != nil {
		t.Fatal(err)
	}
	s.Close()
	to := filepath.Join(dir, "salvaged.db")
	rep, err := Salvage(path, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Lost) != 0 {
		t.Errorf("lost: %v", rep.Lost)
	}
	got, err := OpenReadOnly(to)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if id, _ := got.NetworkOf("a.test"); id != "net-7" {
		t.Errorf("salvaged index: %q", id)
	}
	if seq, _ := got.NetworkSequence(); seq != 7 {
		t.Errorf("salvaged sequence %d", seq)
	}
}
