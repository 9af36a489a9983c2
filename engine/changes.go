package engine

import (
	"encoding/json"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/internal/errdefs"
)

// applyChanges applies `--change` instructions (the Dockerfile subset
// docker import and commit accept) to an image config.
func applyChanges(cfg *ocispec.ImageConfig, changes []string) error {
	for _, c := range changes {
		instr, arg, _ := strings.Cut(strings.TrimSpace(c), " ")
		arg = strings.TrimSpace(arg)
		if err := applyChange(cfg, strings.ToUpper(instr), arg); err != nil {
			return errdefs.Invalid("--change %q: %v", c, err)
		}
	}
	return nil
}

func applyChange(cfg *ocispec.ImageConfig, instr, arg string) error {
	switch instr {
	case "CMD":
		cfg.Cmd = commandForm(arg)
	case "ENTRYPOINT":
		cfg.Entrypoint = commandForm(arg)
	case "ENV":
		return keyValues(arg, func(k, v string) { cfg.Env = setEnv(cfg.Env, k, v) })
	case "LABEL":
		return keyValues(arg, func(k, v string) {
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			cfg.Labels[k] = v
		})
	case "EXPOSE":
		for _, p := range strings.Fields(arg) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	case "VOLUME":
		for _, v := range listForm(arg) {
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
		}
	case "USER":
		cfg.User = arg
	case "WORKDIR":
		cfg.WorkingDir = arg
	case "STOPSIGNAL":
		cfg.StopSignal = arg
	default:
		return errdefs.Invalid("%s is not an instruction --change accepts (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)", instr)
	}
	if arg == "" {
		return errdefs.Invalid("%s needs an argument", instr)
	}
	return nil
}

// commandForm reads the exec form (a JSON array) or the shell form, which
// runs through /bin/sh -c as in a Dockerfile.
func commandForm(arg string) []string {
	var list []string
	if strings.HasPrefix(arg, "[") && json.Unmarshal([]byte(arg), &list) == nil {
		return list
	}
	return []string{"/bin/sh", "-c", arg}
}

func listForm(arg string) []string {
	var list []string
	if strings.HasPrefix(arg, "[") && json.Unmarshal([]byte(arg), &list) == nil {
		return list
	}
	return strings.Fields(arg)
}

// keyValues reads "k=v k2=v2" (values may be double-quoted) or the legacy
// "k v" form.
func keyValues(arg string, set func(k, v string)) error {
	if !strings.Contains(strings.Fields(arg + " x")[0], "=") {
		k, v, ok := strings.Cut(arg, " ")
		if !ok {
			return errdefs.Invalid("want KEY=VALUE or KEY VALUE")
		}
		set(k, strings.TrimSpace(v))
		return nil
	}
	for _, f := range splitQuoted(arg) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return errdefs.Invalid("want KEY=VALUE, got %q", f)
		}
		set(k, strings.Trim(v, `"`))
	}
	return nil
}

// splitQuoted splits on spaces outside double quotes.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
