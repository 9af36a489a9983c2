package runtime_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/testutil"
)

// Tools that take a runtime binary path call berth through a link named
// berth-runc, with runc's global flags, sometimes in Go's single-dash form.
func TestRuncPersonality(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresBusybox(t)
	bin := testutil.BerthBinary(t)
	link := filepath.Join(t.TempDir(), "berth-runc")
	require.NoError(t, os.Symlink(bin, link))
	root := t.TempDir()
	bundle, _ := testutil.BusyboxBundle(t, []string{"echo", "via-link"}, nil)
	logFile := filepath.Join(t.TempDir(), "log.json")
	out, err := exec.Command(link, "-root", root, "--log", logFile, "--log-format", "json",
		"run", "-bundle", bundle, "link-test").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "via-link\n", string(out))

	out, err = exec.Command(link, "--root", root, "--log", logFile, "--log-format", "json", "state", "nope").CombinedOutput()
	require.Error(t, err)
	var entry map[string]string
	data, rerr := os.ReadFile(logFile)
	require.NoError(t, rerr, string(out))
	require.NoError(t, json.Unmarshal([]byte(strings.Split(strings.TrimSpace(string(data)), "\n")[0]), &entry))
	assert.Equal(t, "error", entry["level"])
	assert.Contains(t, entry["msg"], "does not exist")

	version, err := exec.Command(link, "--version").Output()
	require.NoError(t, err)
	assert.Contains(t, string(version), "spec: "+specs.Version)
}

func TestSpecAndFeatures(t *testing.T) {
	bin := testutil.BerthBinary(t)
	dir := t.TempDir()
	out, err := exec.Command(bin, "runtime", "spec", "--bundle", dir).CombinedOutput()
	require.NoError(t, err, string(out))
	var s specs.Spec
	require.NoError(t, json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "config.json"))), &s))
	assert.Equal(t, specs.Version, s.Version)
	assert.Equal(t, []string{"sh"}, s.Process.Args)
	_, err = exec.Command(bin, "runtime", "spec", "--bundle", dir).CombinedOutput()
	assert.Error(t, err, "spec does not overwrite a config.json")

	out, err = exec.Command(bin, "runtime", "features").Output()
	require.NoError(t, err)
	var f map[string]any
	require.NoError(t, json.Unmarshal(out, &f))
	assert.Equal(t, "1.0.0", f["ociVersionMin"])
	linux := f["linux"].(map[string]any)
	assert.Contains(t, linux["namespaces"], "user")
	assert.Contains(t, linux["capabilities"], "CAP_SYS_ADMIN")
	assert.Equal(t, true, linux["seccomp"].(map[string]any)["enabled"])
}
