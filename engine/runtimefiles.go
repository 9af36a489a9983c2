package engine

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-containers/berth/engine/specgen"
)

// What starting a container makes in its writable layer, which Docker
// keeps in an init layer of its own: diff, commit and build steps leave
// it out.

// runtimeFiles are the mount points of the files the engine generates and
// of --init, by path from the root.
var runtimeFiles = map[string]bool{
	"etc/hosts": true, "etc/hostname": true, "etc/resolv.conf": true, ".dockerenv": true,
	strings.TrimPrefix(specgen.InitDestination, "/"): true,
}

// mountPointDirs are the top-level directories starting a container
// makes, for its mounts and for runtimeFiles, when the image lacks them.
var mountPointDirs = map[string]bool{"dev": true, "proc": true, "sys": true, "etc": true, "sbin": true}

// madeForRuntime says whether the top-level directory name is one that
// starting the container made: absent from the image, and holding
// nothing but the runtime's files.
func madeForRuntime(upper string, lowers []string, name string) bool {
	if !mountPointDirs[name] || inLowers(lowers, "/"+name) {
		return false
	}
	entries, err := os.ReadDir(filepath.Join(upper, name))
	if err != nil {
		return false
	}
	for _, en := range entries {
		if !runtimeFiles[name+"/"+en.Name()] {
			return false
		}
	}
	return true
}
