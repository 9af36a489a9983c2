package archive

import (
	"path"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/internal/errdefs"
)

// cleanName checks the name of a tar entry and returns it in canonical form
// ("./a//b" becomes "a/b"). Absolute names and names with a ".." component
// are refused outright: Load never extracts to disk, but a name that could
// point outside the archive only ever comes from a hostile archive.
func cleanName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", errdefs.Invalid("archive entry with an empty or malformed name %q", name)
	}
	if strings.HasPrefix(name, "/") {
		return "", errdefs.Invalid("archive entry %q: absolute paths are not allowed", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", errdefs.Invalid("archive entry %q: paths with .. are not allowed", name)
		}
	}
	return path.Clean(name), nil
}

// linkTarget returns the archive name a link entry called name points to.
// A symlink's target is relative to the link's directory (skopeo writes
// `<id>/layer.tar -> ../<diffid>.tar`), a hard link's to the archive root.
// Targets are resolved by name only, never on a file system, and may not
// leave the archive.
func linkTarget(name, target string, symlink bool) (string, error) {
	if target == "" || strings.HasPrefix(target, "/") {
		return "", errdefs.Invalid("archive link %q: target %q must be a relative path", name, target)
	}
	if !symlink {
		t, err := cleanName(target)
		if err != nil {
			return "", errdefs.Invalid("archive link %q: bad target: %w", name, err)
		}
		return t, nil
	}
	t := path.Join(path.Dir(name), target)
	if t == ".." || strings.HasPrefix(t, "../") {
		return "", errdefs.Invalid("archive link %q: target %q points outside the archive", name, target)
	}
	return t, nil
}

// blobName tells whether name lies under blobs/ and, if so, the digest its
// name announces; any other file under blobs/ is refused.
func blobName(name string) (digest.Digest, bool, error) {
	if name != dirBlobs && !strings.HasPrefix(name, dirBlobs+"/") {
		return "", false, nil
	}
	parts := strings.Split(name, "/")
	if len(parts) != 3 {
		return "", true, errdefs.Invalid("archive entry %q: not a blobs/<algorithm>/<hex> name", name)
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
	if err := d.Validate(); err != nil {
		return "", true, errdefs.Invalid("archive entry %q: bad blob name: %v", name, err)
	}
	return d, true, nil
}

// blobPathOf is where a blob lives in an archive.
func blobPathOf(d digest.Digest) string {
	return path.Join(dirBlobs, d.Algorithm().String(), d.Encoded())
}
