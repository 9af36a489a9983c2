package build

import (
	"crypto/sha256"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/build/dockerfile"
)

// defaultShell runs the shell forms of RUN, CMD and ENTRYPOINT.
var defaultShell = []string{"/bin/sh", "-c"}

// state is a stage's image as its steps change it.
type state struct {
	image  dockerspec.DockerOCIImage
	layers []Layer
	// key is the cache key of everything so far: the base and each step.
	key digest.Digest
	// created is the time the last layer was made (or the base's): the
	// steps that change only the config take it too, so a fully cached
	// build makes the very same image.
	created time.Time
	// args are the ARGs declared in the stage so far, with their values.
	args map[string]string
	// cmdSet says CMD was set in this stage: ENTRYPOINT clears an
	// inherited CMD only.
	cmdSet bool
	// mkdirs are WORKDIRs not yet created; the next step that mounts the
	// root filesystem makes them.
	mkdirs []string
}

// clone copies s deeply enough that changes to the copy leave s alone.
func (s *state) clone() *state {
	c := *s
	c.image.Config.Env = slices.Clone(s.image.Config.Env)
	c.image.Config.Labels = maps.Clone(s.image.Config.Labels)
	c.image.Config.ExposedPorts = maps.Clone(s.image.Config.ExposedPorts)
	c.image.Config.Volumes = maps.Clone(s.image.Config.Volumes)
	c.image.Config.OnBuild = slices.Clone(s.image.Config.OnBuild)
	c.image.History = slices.Clone(s.image.History)
	c.image.RootFS.DiffIDs = slices.Clone(s.image.RootFS.DiffIDs)
	c.layers = slices.Clone(s.layers)
	c.args = maps.Clone(s.args)
	c.mkdirs = slices.Clone(s.mkdirs)
	return &c
}

// shell is the shell of the shell forms.
func (s *state) shell() []string {
	if len(s.image.Config.Shell) > 0 {
		return s.image.Config.Shell
	}
	return defaultShell
}

// env is what words are expanded with: the stage's ARGs, then ENV over
// them (ENV wins, as in Docker).
func (s *state) env() dockerfile.Env {
	out := dockerfile.Env{}
	maps.Copy(out, s.args)
	for _, kv := range s.image.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// setEnv sets one variable of the image's environment.
func (s *state) setEnv(k, v string) {
	for i, kv := range s.image.Config.Env {
		if name, _, _ := strings.Cut(kv, "="); name == k {
			s.image.Config.Env[i] = k + "=" + v
			return
		}
	}
	s.image.Config.Env = append(s.image.Config.Env, k+"="+v)
}

// workdir is the working directory steps run in.
func (s *state) workdir() string {
	if s.image.Config.WorkingDir == "" {
		return "/"
	}
	return s.image.Config.WorkingDir
}

// advance chains the key with one step's inputs.
func (s *state) advance(inputs any) {
	s.key = stepKey(s.key, inputs)
}

// stepKey is sha256 of the previous key and the step's inputs in JSON.
func stepKey(prev digest.Digest, inputs any) digest.Digest {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{0})
	// The inputs are plain structs, maps and strings: encoding cannot fail.
	data, _ := json.Marshal(inputs)
	h.Write(data)
	return digest.NewDigest(digest.SHA256, h)
}

// addHistory records a step in the image's history.
func (s *state) addHistory(createdBy string, empty bool) {
	t := s.created
	s.image.History = append(s.image.History, ocispec.History{Created: &t, CreatedBy: createdBy, EmptyLayer: empty})
	s.image.Created = &t
}

// addLayer appends a layer a step made.
func (s *state) addLayer(l Layer) {
	s.layers = append(s.layers, l)
	s.image.RootFS.DiffIDs = append(s.image.RootFS.DiffIDs, l.DiffID)
}
