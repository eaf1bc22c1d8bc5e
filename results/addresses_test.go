package results_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/results"
)

// The checks below read the address formats back, by the rules of each
// format and, where the tool is installed, with the tool itself.

func TestWriteIPs(t *testing.T) {
	tests := []struct {
		opts results.Options
		want []string
	}{
		{results.Options{}, wantAddrs},                      // the default threshold, 0.8
		{results.Options{MinConfidence: 0.8}, wantAddrs},    // inclusive
		{results.Options{MinConfidence: 0.4}, wantAllAddrs}, // fastflux-b.test (0.5) too
		{results.Options{MinConfidence: -1}, wantAllAddrs},
		{results.Options{MinConfidence: 0.91, All: true}, // double.flux.test only; All is for jsonl and csv
			[]string{"192.0.2.10", "198.51.100.53", "203.0.113.5", "203.0.113.53", "2001:db8::53", "2001:db8::1:0:0:1"}},
		{results.Options{MinConfidence: 0.99}, nil},
	}
	for _, tt := range tests {
		out := write(t, "ips", agentVerdicts(), tt.opts)
		var got []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			a, err := netip.ParseAddr(sc.Text())
			if err != nil || a.String() != sc.Text() {
				t.Errorf("ips line %q is not an address in canonical form (%v)", sc.Text(), err)
			}
			got = append(got, sc.Text())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ips with MinConfidence %v:\n got %q\nwant %q", tt.opts.MinConfidence, got, tt.want)
		}
	}
	for _, f := range results.AddressFormats {
		if !results.IsAddressFormat(f) || !results.IsBlockList(f) || slices.Contains(results.Formats, f) {
			t.Errorf("%s: IsAddressFormat %v, IsBlockList %v", f, results.IsAddressFormat(f), results.IsBlockList(f))
		}
	}
	if results.IsAddressFormat("domains") || results.IsAddressFormat("misp") {
		t.Error("a domain format is an address format")
	}
}

// nftElements reads the elements an nft script adds to each set, and
// checks every element has the timeout want.
func nftElements(t *testing.T, script []byte, table, wantTimeout string) map[string][]string {
	t.Helper()
	head := regexp.MustCompile(`^add element inet ` + table + ` ([A-Za-z0-9_]+) \{$`)
	elem := regexp.MustCompile(`^\t([^\s,]+) timeout ([^\s,]+)(,?)$`)
	sets := map[string][]string{}
	set, last := "", false
	for _, l := range lines(script) {
		switch m := head.FindStringSubmatch(l); {
		case m != nil:
			set, last = m[1], false
		case set != "" && l == "}":
			if !last {
				t.Errorf("set %s: the last element ends in a comma", set)
			}
			set = ""
		case set != "":
			e := elem.FindStringSubmatch(l)
			if e == nil || last {
				t.Fatalf("line %q in set %s is not an element (or follows the last one)", l, set)
			}
			if e[2] != wantTimeout {
				t.Errorf("element %s: timeout %s, want %s", e[1], e[2], wantTimeout)
			}
			sets[set], last = append(sets[set], e[1]), e[3] == ""
		}
	}
	return sets
}

func TestWriteNFTables(t *testing.T) {
	v4, v6 := wantAddrs[:6], wantAddrs[6:]
	for _, tt := range []struct {
		opts              results.Options
		table, s4, s6, to string
	}{
		{results.Options{}, "fluxwatch", "flux4", "flux6", "7d"},
		{results.Options{Table: "t", Set4: "a", Set6: "B_6", ValidFor: 3*time.Hour + 500*time.Millisecond}, "t", "a", "B_6", "3h"},
		{results.Options{ValidFor: time.Millisecond}, "fluxwatch", "flux4", "flux6", "1s"},
	} {
		out := write(t, "nftables", agentVerdicts(), tt.opts)
		for _, want := range []string{
			"table inet " + tt.table + " {\n\tset " + tt.s4 + " {\n\t\ttype ipv4_addr\n\t\tflags interval, timeout\n\t}\n" +
				"\tset " + tt.s6 + " {\n\t\ttype ipv6_addr\n\t\tflags interval, timeout\n\t}\n}\n",
			"flush set inet " + tt.table + " " + tt.s4 + "\nflush set inet " + tt.table + " " + tt.s6 + "\n",
		} {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("nftables script lacks\n%s\nin\n%s", want, out)
			}
		}
		sets := nftElements(t, out, tt.table, tt.to)
		if !slices.Equal(sets[tt.s4], v4) || !slices.Equal(sets[tt.s6], v6) || len(sets) != 2 {
			t.Errorf("nftables sets %v, want %s %q and %s %q", sets, tt.s4, v4, tt.s6, v6)
		}
	}
	// Nothing to list: the sets are still emptied, and no empty element list is written.
	out := write(t, "nftables", verdicts(), results.Options{})
	if sets := nftElements(t, out, "fluxwatch", "7d"); len(sets) != 0 || !bytes.Contains(out, []byte("flush set inet fluxwatch flux6\n")) {
		t.Errorf("nftables with no addresses: %v\n%s", sets, out)
	}
}

// TestNFTablesLoads has nft check the scripts, then loads them into a
// network namespace of its own (nothing of the machine's firewall is
// touched): the second load replaces the sets' elements.
func TestNFTablesLoads(t *testing.T) {
	nft := tool(t, "nft", "nftables")
	dir := t.TempDir()
	first := filepath.Join(dir, "first.nft")
	os.WriteFile(first, write(t, "nftables", agentVerdicts(), results.Options{}), 0o644)
	second := filepath.Join(dir, "second.nft")
	os.WriteFile(second, write(t, "nftables", agentVerdicts(), results.Options{MinConfidence: 0.91, ValidFor: time.Hour}), 0o644)
	empty := filepath.Join(dir, "empty.nft")
	os.WriteFile(empty, write(t, "nftables", nil, results.Options{}), 0o644)
	// nft -c checks a script without applying it (it still needs the
	// privileges to read the kernel's state: the namespace gives them).
	inNetns(t, nft+" -c -f "+first+" && "+nft+" -c -f "+second+" && "+nft+" -c -f "+empty)

	out := inNetns(t, nft+" -f "+first+" && "+nft+" -f "+second+" && "+nft+" -j list table inet fluxwatch")
	var listing struct {
		Nftables []struct {
			Set *struct {
				Name  string   `json:"name"`
				Type  string   `json:"type"`
				Flags []string `json:"flags"`
				Elem  []struct {
					Elem struct {
						Val     string `json:"val"`
						Timeout int    `json:"timeout"`
					} `json:"elem"`
				} `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &listing); err != nil {
		t.Fatalf("nft -j list: %v\n%s", err, out)
	}
	want := map[string][]string{"flux4": {"192.0.2.10", "198.51.100.53", "203.0.113.5", "203.0.113.53"}, "flux6": {"2001:db8::53", "2001:db8::1:0:0:1"}}
	got := map[string][]string{}
	for _, o := range listing.Nftables {
		if o.Set == nil {
			continue
		}
		if !slices.Equal(o.Set.Flags, []string{"interval", "timeout"}) {
			t.Errorf("set %s: flags %q", o.Set.Name, o.Set.Flags)
		}
		got[o.Set.Name] = []string{}
		for _, e := range o.Set.Elem {
			got[o.Set.Name] = append(got[o.Set.Name], e.Elem.Val)
			if e.Elem.Timeout != 3600 {
				t.Errorf("set %s: %s has timeout %d, want 3600", o.Set.Name, e.Elem.Val, e.Elem.Timeout)
			}
		}
	}
	for name, addrs := range want {
		if !slices.Equal(got[name], addrs) {
			t.Errorf("after loading two scripts, set %s holds %q, want %q (the second one's)", name, got[name], addrs)
		}
	}
	// An empty list empties the sets.
	out = inNetns(t, nft+" -f "+first+" && "+nft+" -f "+empty+" && "+nft+" list table inet fluxwatch")
	if bytes.Contains(out, []byte("elements")) {
		t.Errorf("after loading an empty list the sets still hold elements:\n%s", out)
	}
}

func TestWriteIPSet(t *testing.T) {
	out := write(t, "ipset", agentVerdicts(), results.Options{ValidFor: 36 * time.Hour})
	line := regexp.MustCompile(`^(create|flush|add|swap|destroy) (\S+)(?: (.*))?$`)
	members := map[string][]string{}
	var order []string
	for _, l := range lines(out) {
		if strings.HasPrefix(l, "#") {
			continue
		}
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("ipset line %q", l)
		}
		order = append(order, m[1]+" "+m[2])
		switch m[1] {
		case "create":
			family := "inet"
			if strings.HasSuffix(strings.TrimSuffix(m[2], "-new"), "6") {
				family = "inet6"
			}
			if want := "hash:ip family " + family + " timeout 0 maxelem 1048576 -exist"; m[3] != want {
				t.Errorf("create %s %s, want %s", m[2], m[3], want)
			}
		case "add":
			a, ok := strings.CutSuffix(m[3], " timeout 129600 -exist")
			if !ok {
				t.Errorf("%q lacks the timeout or -exist", l)
			}
			members[m[2]] = append(members[m[2]], a)
		}
	}
	wantOrder := []string{"create fluxwatch4", "create fluxwatch4-new", "flush fluxwatch4-new"}
	for range wantAddrs[:6] {
		wantOrder = append(wantOrder, "add fluxwatch4-new")
	}
	wantOrder = append(wantOrder, "swap fluxwatch4-new", "destroy fluxwatch4-new", "create fluxwatch6", "create fluxwatch6-new", "flush fluxwatch6-new")
	for range wantAddrs[6:] {
		wantOrder = append(wantOrder, "add fluxwatch6-new")
	}
	wantOrder = append(wantOrder, "swap fluxwatch6-new", "destroy fluxwatch6-new")
	if !slices.Equal(order, wantOrder) {
		t.Errorf("ipset commands:\n got %q\nwant %q", order, wantOrder)
	}
	if !slices.Equal(members["fluxwatch4-new"], wantAddrs[:6]) || !slices.Equal(members["fluxwatch6-new"], wantAddrs[6:]) {
		t.Errorf("ipset members %v, want %q and %q", members, wantAddrs[:6], wantAddrs[6:])
	}
	if !strings.Contains(string(write(t, "ipset", agentVerdicts(), results.Options{ValidFor: 365 * 24 * time.Hour})), " timeout 2147483 -exist\n") {
		t.Error("an ipset timeout above ipset's limit is not capped at 2147483 seconds")
	}
}

// TestIPSetLoads restores the files with ipset in a network namespace of
// its own: the second restore replaces the first one's members.
func TestIPSetLoads(t *testing.T) {
	ipset := tool(t, "ipset", "ipset")
	dir := t.TempDir()
	first := filepath.Join(dir, "first.ipset")
	os.WriteFile(first, write(t, "ipset", agentVerdicts(), results.Options{}), 0o644)
	second := filepath.Join(dir, "second.ipset")
	os.WriteFile(second, write(t, "ipset", agentVerdicts(), results.Options{MinConfidence: 0.91, ValidFor: time.Hour}), 0o644)
	// The first twice: a restore must also work when the sets exist; the
	// second has another timeout: that must not make ipset refuse the sets.
	out := inNetns(t, ipset+" restore -file "+first+" && "+ipset+" restore -file "+first+" && "+ipset+" restore -file "+second+" && "+ipset+" save")
	got := map[string][]string{}
	created := map[string]string{}
	member := regexp.MustCompile(`^add (\S+) (\S+) timeout (\d+)$`)
	for _, l := range lines(out) {
		if m := member.FindStringSubmatch(l); m != nil {
			got[m[1]] = append(got[m[1]], m[2])
			if n, _ := strconv.Atoi(m[3]); n > 3600 || n < 3500 {
				t.Errorf("%s: timeout %d, want about 3600", m[2], n)
			}
		} else if f := strings.Fields(l); len(f) >= 2 && f[0] == "create" {
			created[f[1]] = l
		} else {
			t.Errorf("ipset save: %q", l)
		}
	}
	for _, name := range []string{"fluxwatch4", "fluxwatch6"} {
		if !strings.Contains(created[name], "hash:ip") {
			t.Errorf("set %s: %q, want hash:ip", name, created[name])
		}
		slices.SortFunc(got[name], func(a, b string) int { return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b)) })
	}
	if len(created) != 2 {
		t.Errorf("sets after the restores: %v, want fluxwatch4 and fluxwatch6 only", created)
	}
	if want := []string{"192.0.2.10", "198.51.100.53", "203.0.113.5", "203.0.113.53"}; !slices.Equal(got["fluxwatch4"], want) {
		t.Errorf("fluxwatch4 holds %q, want %q", got["fluxwatch4"], want)
	}
	if want := []string{"2001:db8::53", "2001:db8::1:0:0:1"}; !slices.Equal(got["fluxwatch6"], want) {
		t.Errorf("fluxwatch6 holds %q, want %q", got["fluxwatch6"], want)
	}
}

// TestWriteSuricata reads the files by Suricata's IP reputation rules
// (reputation.c): categories "<id>,<short name>,<description>" with ids
// below 60 and short names below 32 octets; reputation lines
// "<ip>,<category>,<score 1-127>"; # starts a comment. Suricata itself is
// not packaged in Debian 12, so no test loads them into it.
func TestWriteSuricata(t *testing.T) {
	files := undump(t, write(t, "suricata", agentVerdicts(), results.Options{}))
	if len(files) != 2 || files["categories.txt"] == nil || files["reputation.list"] == nil {
		t.Fatalf("suricata directory holds %d files: %v", len(files), files)
	}
	cats := map[string]string{}
	for _, l := range lines(files["categories.txt"]) {
		if strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.SplitN(l, ",", 3)
		id, err := strconv.Atoi(f[0])
		if len(f) != 3 || err != nil || id < 0 || id >= 60 || f[1] == "" || len(f[1]) >= 32 {
			t.Errorf("categories line %q", l)
			continue
		}
		cats[f[0]] = f[1]
	}
	if cats["1"] != "FastFluxAgent" || cats["2"] != "FastFluxNS" || len(cats) != 2 {
		t.Errorf("categories %v", cats)
	}
	score := func(c float64) string { return strconv.Itoa(max(1, min(127, int(c*127+0.5)))) }
	want := map[string]string{}
	for _, a := range wantAgents {
		want[a+",1"] = score(0.95)
	}
	for _, a := range []string{"198.51.100.7", "2001:db8::10"} { // a-fast.test's own
		want[a+",1"] = score(0.9)
	}
	for _, a := range []string{"203.0.113.77", "2001:db8:0:1::2"} { // xn--bcher-kva.test's
		want[a+",1"] = score(0.8)
	}
	for _, a := range wantNS {
		want[a+",2"] = score(0.95)
	}
	got := map[string]string{}
	var order []netip.Addr
	for _, l := range lines(files["reputation.list"]) {
		if strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, ",")
		n, err := strconv.Atoi(f[len(f)-1])
		if len(f) != 3 || err != nil || n < 1 || n > 127 || cats[f[1]] == "" {
			t.Errorf("reputation line %q", l)
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil || a.String() != f[0] {
			t.Errorf("reputation line %q: address (%v)", l, err)
		}
		order = append(order, a)
		got[f[0]+","+f[1]] = f[2]
	}
	if !mapsEqual(got, want) {
		t.Errorf("reputation:\n got %v\nwant %v", got, want)
	}
	if !slices.IsSortedFunc(order, netip.Addr.Compare) {
		t.Errorf("reputation lines are not in address order: %v", order)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestWriteRefusesBadAddresses feeds agents that are not addresses, or
// would carry more than an address into a firewall's input: each fails the
// whole export with ErrBadAddress and writes nothing.
func TestWriteRefusesBadAddresses(t *testing.T) {
	bad := []string{
		"", "1.2.3.4\nflush ruleset", "1.2.3.4 }", "192.0.2.1,1,127", "999.1.1.1", "1.2.3.04", "1.2.3", "192.0.2.0/24",
		"fe80::1%eth0", " 192.0.2.1", "2001:db8::1::2", "::ffff:999.0.0.1", "192.0.2.1; destroy", "-exist",
	}
	formats := append(slices.Clone(results.AddressFormats), "rpz")
	opts := results.Options{RPZIPTriggers: true}
	for _, a := range bad {
		for _, format := range formats {
			for _, v := range []classify.Verdict{
				{Domain: "z.test", Verdict: classify.SingleFlux, Listing: listing, Confidence: 1, Agents: []string{"192.0.2.1", a}},
				{Domain: "z.test", Verdict: classify.DoubleFlux, Listing: listing, Confidence: 1, NSAgents: []string{a}},
			} {
				_, err := tryWrite(t, format, append(agentVerdicts(), v), opts)
				if !errors.Is(err, results.ErrBadAddress) {
					t.Errorf("%s with %q = %v, want ErrBadAddress", format, a, err)
				}
			}
		}
	}
	// Addresses of verdicts that no address is exported for are not read.
	low := classify.Verdict{Domain: "z.test", Verdict: classify.SingleFlux, Listing: listing, Confidence: 0.1, Agents: []string{"bad"}}
	for _, format := range formats {
		if _, err := tryWrite(t, format, append(agentVerdicts(), low), opts); err != nil {
			t.Errorf("%s with a bad address on a verdict below the threshold: %v", format, err)
		}
	}
	if _, err := tryWrite(t, "rpz", append(agentVerdicts(), classify.Verdict{Domain: "z.test", Verdict: classify.SingleFlux, Listing: listing, Confidence: 1, Agents: []string{"bad"}}), results.Options{}); err != nil {
		t.Errorf("rpz without rpz-ip triggers read the agents: %v", err)
	}
}

func TestWriteRefusesBadSetNames(t *testing.T) {
	for _, tt := range []struct {
		format string
		opts   results.Options
	}{
		{"nftables", results.Options{Table: "fw; flush ruleset"}},
		{"nftables", results.Options{Table: "1table"}},
		{"nftables", results.Options{Set4: "a b"}},
		{"nftables", results.Options{Set6: "x}"}},
		{"nftables", results.Options{Set4: "s", Set6: "s"}},
		{"nftables", results.Options{Set4: strings.Repeat("s", 64)}},
		{"ipset", results.Options{Set4: "x\ndestroy"}},
		{"ipset", results.Options{Set6: "-exist"}},
		{"ipset", results.Options{Set4: strings.Repeat("s", 28)}}, // with -new, longer than ipset's 31
		{"ipset", results.Options{Set4: "flux", Set6: "flux"}},
		{"misp", results.Options{Org: "a\nb"}},
		{"misp", results.Options{Org: strings.Repeat("o", 129)}},
		{"misp", results.Options{Org: "\xff"}},
	} {
		if _, err := tryWrite(t, tt.format, agentVerdicts(), tt.opts); !errors.Is(err, results.ErrBadName) {
			t.Errorf("%s with %+v = %v, want ErrBadName", tt.format, tt.opts, err)
		}
	}
	for _, tt := range []struct {
		format string
		opts   results.Options
	}{
		{"nftables", results.Options{Table: "Fw_2", Set4: strings.Repeat("s", 63), Set6: "v6"}},
		{"ipset", results.Options{Set4: strings.Repeat("s", 27), Set6: "0-v_6"}},
		{"misp", results.Options{Org: "CERT-Ünïcode (ops)"}},
	} {
		if _, err := tryWrite(t, tt.format, agentVerdicts(), tt.opts); err != nil {
			t.Errorf("%s with %+v: %v", tt.format, tt.opts, err)
		}
	}
}

// tool finds a program a test needs. Where FLUXWATCH_REQUIRE_TOOLS (or CI)
// is set, after scripts/install-test-deps.sh installed the tools, a
// missing tool fails the test; elsewhere the check is skipped, saying so.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} { // not on every user's PATH
		if path := filepath.Join(dir, name); exec.Command(path, "--version").Run() == nil {
			return path
		}
	}
	if os.Getenv("FLUXWATCH_REQUIRE_TOOLS") != "" || os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed and FLUXWATCH_REQUIRE_TOOLS or CI is set (apt-get install %s; scripts/install-test-deps.sh does)", name, pkg)
	}
	t.Skipf("%s is not installed (apt-get install %s); set FLUXWATCH_REQUIRE_TOOLS to make this a failure", name, pkg)
	return ""
}

// inNetns runs a shell script in a new network namespace, where nftables
// tables and ipset sets start empty and vanish with it: nothing of the
// machine's own firewall is touched. Root makes one with unshare --net;
// another user needs unprivileged user namespaces as well (unshare
// --map-root-user --net). Where neither works the test is skipped, saying so.
func inNetns(t *testing.T, script string) []byte {
	t.Helper()
	unshare := tool(t, "unshare", "util-linux")
	var args []string
	for _, try := range [][]string{{"--net"}, {"--map-root-user", "--net"}} {
		if exec.Command(unshare, append(try, "true")...).Run() == nil {
			args = try
			break
		}
	}
	if args == nil {
		t.Skip("cannot make a network namespace to load the file into without touching this machine's firewall " +
			"(unshare --net needs root, or unprivileged user namespaces)")
	}
	out, err := exec.Command(unshare, append(args, "sh", "-ec", script)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return out
}

// Written counts what was written: the distinct addresses of the address
// formats (one file or a directory) and the domains they came from, and
// the domains of a domain format.
func TestWrittenCounts(t *testing.T) {
	confident := 0 // the listed verdicts at the default threshold
	for _, v := range agentVerdicts() {
		if v.Listed() && classify.IsFlux(v.Verdict) && v.Confidence >= results.DefaultMinConfidence {
			confident++
		}
	}
	tests := []struct {
		format string
		all    bool
		want   results.Written
	}{
		{"ips", false, results.Written{Verdicts: confident, Addresses: len(wantAddrs)}},
		{"nftables", false, results.Written{Verdicts: confident, Addresses: len(wantAddrs)}},
		{"ipset", false, results.Written{Verdicts: confident, Addresses: len(wantAddrs)}},
		{"suricata", false, results.Written{Verdicts: confident, Addresses: len(wantAddrs)}},
		{"domains", false, results.Written{Verdicts: len(listedNames)}},
		{"jsonl", true, results.Written{Verdicts: len(allNames)}},
	}
	for _, tt := range tests {
		var got results.Written
		write(t, tt.format, agentVerdicts(), results.Options{All: tt.all, Written: &got})
		if got != tt.want {
			t.Errorf("%s: Written = %+v, want %+v", tt.format, got, tt.want)
		}
	}
}
