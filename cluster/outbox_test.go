package cluster

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func entries(n int, size int) []OutboxEntry {
	out := make([]OutboxEntry, n)
	for i := range out {
		out[i] = OutboxEntry{ID: fmt.Sprintf("id-%d", i), Subject: "fluxwatch.obs.a", Data: []byte(strings.Repeat("x", size))}
	}
	return out
}

func TestOutboxKeepsOrderAndSurvivesReopening(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox")
	box, err := OpenOutbox(path, OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := box.Put(entries(5, 10))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(kept); i++ {
		if kept[i].Seq <= kept[i-1].Seq {
			t.Fatalf("sequence numbers not increasing: %d then %d", kept[i-1].Seq, kept[i].Seq)
		}
	}
	if err := box.Delete([]uint64{kept[1].Seq, kept[3].Seq, 999}); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenOutbox(path, OutboxOptions{}); !errors.Is(err, ErrOutboxLocked) {
		t.Errorf("second opener: %v, want ErrOutboxLocked", err)
	}
	box.Close()

	box, err = OpenOutbox(path, OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	left, err := box.Pending(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range left {
		got = append(got, e.ID)
		if e.Subject != "fluxwatch.obs.a" || len(e.Data) != 10 {
			t.Errorf("entry %+v changed", e)
		}
	}
	if want := "id-0 id-2 id-4"; strings.Join(got, " ") != want {
		t.Errorf("after reopening: %v, want %s", got, want)
	}
	if tail, _ := box.Pending(left[0].Seq, 1); len(tail) != 1 || tail[0].ID != "id-2" {
		t.Errorf("Pending after the first: %+v", tail)
	}
	st, _ := box.Stats()
	if st.Pending != 3 || st.Bytes != 3*int64(len("id-0")+len("fluxwatch.obs.a")+10) || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestOutboxDropsOldestWhenFull(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        OutboxOptions
		put         [][]OutboxEntry
		wantPending int
		wantDropped uint64
		wantFirst   string
	}{
		{"by count", OutboxOptions{MaxEntries: 4}, [][]OutboxEntry{entries(3, 1), entries(3, 1)}, 4, 2, "id-2"},
		{"by bytes", OutboxOptions{MaxBytes: 3 * (4 + 15 + 100)}, [][]OutboxEntry{entries(5, 100)}, 3, 2, "id-2"},
		{"within bounds", OutboxOptions{MaxEntries: 10}, [][]OutboxEntry{entries(5, 1)}, 5, 0, "id-0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			box, err := OpenOutbox(filepath.Join(t.TempDir(), "outbox"), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer box.Close()
			for _, p := range tc.put {
				if _, err := box.Put(p); err != nil {
					t.Fatal(err)
				}
			}
			st, _ := box.Stats()
			left, _ := box.Pending(0, 100)
			if st.Pending != tc.wantPending || len(left) != tc.wantPending || st.Dropped != tc.wantDropped {
				t.Fatalf("stats %+v with %d entries; want %d pending, %d dropped", st, len(left), tc.wantPending, tc.wantDropped)
			}
			if left[0].ID != tc.wantFirst {
				t.Errorf("oldest kept %s, want %s", left[0].ID, tc.wantFirst)
			}
		})
	}
}
