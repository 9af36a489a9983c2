package containers_test

import (
	"strings"
	"testing"
)

// TestSystemDF counts containers and volumes, and the image a container
// uses as active.
func TestSystemDF(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "-v", "dfvol:/data", "bb", "sleep", "600")
	s.must("run", "--name", "stopped", "bb", "sh", "-c", "head -c 100000 /dev/zero > /big")
	rows := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(s.must("system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}")), "\n") {
		f := strings.Split(l, "|")
		rows[f[0]] = f[1:]
	}
	if c := rows["Containers"]; len(c) != 4 || c[0] != "2" || c[1] != "1" || c[2] == "0B" || strings.HasPrefix(c[3], "0B") {
		t.Fatalf("containers row %v: want 2 total, 1 active, the stopped one's 100 kB reclaimable", c)
	}
	if v := rows["Local Volumes"]; len(v) != 4 || v[0] != "1" || v[1] != "1" {
		t.Fatalf("volumes row %v: want 1 volume, in use", v)
	}
	if i := rows["Images"]; len(i) != 4 || i[0] != "1" || i[1] != "1" {
		t.Fatalf("images row %v: want 1 image, active", i)
	}
	s.must("rm", "-f", "stopped")
}
