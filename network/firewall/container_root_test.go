package firewall

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/testutil"
)

func TestContainerFirewall(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	tp := newTopology(t)
	fw := NewHost(InNetNS(tp.host))
	require.NoError(t, fw.Apply(ctx, tp.state()))
	t.Cleanup(func() { _ = fw.Remove(ctx) })
	server(t, tp.out, "0.0.0.0:9001")
	server(t, tp.out, "0.0.0.0:9002")
	server(t, tp.c1, "0.0.0.0:80")
	server(t, tp.c1, "0.0.0.0:81")
	server(t, tp.c1, "127.0.0.1:82")
	server(t, tp.c2, "0.0.0.0:80")

	// Everything passes before the container has rules.
	reaches(t, tp.c1, ipOut+":9001", hostUplink)
	reaches(t, tp.c2, ipC1+":81", ipC2)

	rules := []Rule{
		mustParse(t, "direction=egress,action=deny,cidr=10.99.0.0/24,proto=tcp,port=9001"),
		mustParse(t, "direction=ingress,action=deny,proto=tcp,port=81"),
	}
	require.NoError(t, ApplyContainer(ctx, tp.c1, rules, Policy{}))

	t.Run("named traffic is blocked", func(t *testing.T) {
		blocked(t, tp.c1, ipOut+":9001")
		blocked(t, tp.c2, ipC1+":81")
	})
	t.Run("other traffic passes", func(t *testing.T) {
		reaches(t, tp.c1, ipOut+":9002", hostUplink)
		reaches(t, tp.c2, ipC1+":80", ipC2)
		reaches(t, tp.c1, ipC2+":80", ipC1)
		reaches(t, tp.c1, "127.0.0.1:82", "127.0.0.1")
	})
	t.Run("re-apply is idempotent", func(t *testing.T) {
		before := nft(t, tp.c1, "list", "ruleset")
		require.NoError(t, ApplyContainer(ctx, tp.c1, rules, Policy{}))
		assert.Equal(t, before, nft(t, tp.c1, "list", "ruleset"))
		assert.Equal(t, 1, countTables(nft(t, tp.c1, "list", "tables")))
	})
	t.Run("default deny egress", func(t *testing.T) {
		allow := []Rule{mustParse(t, "direction=egress,action=allow,cidr=10.99.0.2,proto=tcp,port=9002")}
		def, err := ParseDefaults("egress=deny")
		require.NoError(t, err)
		require.NoError(t, ApplyContainer(ctx, tp.c1, allow, def))
		reaches(t, tp.c1, ipOut+":9002", hostUplink)
		blocked(t, tp.c1, ipOut+":9001")
		blocked(t, tp.c1, ipC2+":80")
		reaches(t, tp.c1, "127.0.0.1:82", "127.0.0.1") // loopback always passes
		reaches(t, tp.c2, ipC1+":80", ipC2)            // replies are established
		reaches(t, tp.c2, ipC1+":81", ipC2)            // the ingress rule is gone
	})
	t.Run("default deny ingress", func(t *testing.T) {
		require.NoError(t, ApplyContainer(ctx, tp.c1, nil, Policy{Ingress: Deny}))
		blocked(t, tp.c2, ipC1+":80")
		reaches(t, tp.c1, ipC2+":80", ipC1) // replies come back in
		reaches(t, tp.c1, ipOut+":9001", hostUplink)
	})
	t.Run("allow all again", func(t *testing.T) {
		require.NoError(t, ApplyContainer(ctx, tp.c1, nil, Policy{}))
		reaches(t, tp.c2, ipC1+":80", ipC2)
		reaches(t, tp.c1, ipOut+":9001", hostUplink)
	})
}

func TestApplyContainerErrors(t *testing.T) {
	ctx := context.Background()
	assert.Error(t, ApplyContainer(ctx, "", nil, Policy{}))
	assert.Error(t, ApplyContainer(ctx, "/nonexistent/netns", nil, Policy{}))
	assert.Error(t, ApplyContainer(ctx, "/nonexistent/netns", []Rule{{}}, Policy{}))
}

func mustParse(t *testing.T, s string) Rule {
	t.Helper()
	r, err := ParseRule(s)
	require.NoError(t, err)
	return r
}

func countTables(listing string) int {
	n := 0
	for _, line := range splitLines(listing) {
		if len(line) > 6 && line[:6] == "table " {
			n++
		}
	}
	return n
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
