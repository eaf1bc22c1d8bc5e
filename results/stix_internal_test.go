package results

import "testing"

func TestUUID5(t *testing.T) {
	// The DNS namespace of RFC 9562 and a widely published example.
	dns := [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	if got, want := uuid5(dns, "python.org"), "886313e1-3b8a-5372-9b90-0c9aee199e5d"; got != want {
		t.Errorf("uuid5(DNS, python.org) = %s, want %s", got, want)
	}
}

func TestSTIXQuote(t *testing.T) {
	for in, want := range map[string]string{
		"a.test":         "a.test",
		`it's.test`:      `it\'s.test`,
		`back\slash`:     `back\\slash`,
		`\'`:             `\\\'`,
		`x' OR 1=1 OR '`: `x\' OR 1=1 OR \'`,
	} {
		if got := stixQuote(in); got != want {
			t.Errorf("stixQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSTIXConfidence(t *testing.T) {
	nan := 0.0
	nan /= nan
	for in, want := range map[float64]int{0: 0, -0.5: 0, 0.004: 0, 0.005: 1, 0.5: 50, 0.874: 87, 0.999: 100, 1: 100, 3: 100, nan: 0} {
		if got := stixConfidence(in); got != want {
			t.Errorf("stixConfidence(%v) = %d, want %d", in, got, want)
		}
	}
}
