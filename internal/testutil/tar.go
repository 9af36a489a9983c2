package testutil

import (
	"archive/tar"
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TarEntry is one entry of an archive Tar writes.
type TarEntry struct {
	Name, Body string
	// Link is a symlink's or hard link's target.
	Link string
	// Type is a tar type flag; 0 means a regular file.
	Type byte
	// Mode defaults to 0644, or 0755 for a directory.
	Mode     int64
	UID, GID int
}

// Tar writes entries, in the order given, as an uncompressed tar with a
// fixed modification time.
func Tar(t testing.TB, entries ...TarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Linkname: e.Link,
			Uid: e.UID, Gid: e.GID, ModTime: time.Unix(1e9, 0)}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		require.NoError(t, tw.WriteHeader(hdr))
		if hdr.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(e.Body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}
