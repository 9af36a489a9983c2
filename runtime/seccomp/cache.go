package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Compiling a profile is the dearest step of a container's start: Docker's
// default profile takes libseccomp several milliseconds to turn into BPF,
// in every container, although the result depends only on the profile, the
// library and the machine. CompileCached keeps each program it generates in
// a directory, keyed by those three, and later starts only read it back.

// cacheMagic starts every cache file; its last byte is the format version.
const cacheMagic = "BSCF\x01"

// headerSize is the magic, the flags (u32) and the notify byte.
const headerSize = len(cacheMagic) + 4 + 1

// CompileCached is Compile with a cache of generated programs in dir. A
// missing, unreadable or corrupt entry is compiled again and rewritten;
// the error from writing it (the cache is only an optimisation) comes back
// as cacheErr beside a good filter, for the caller to report as it likes.
func CompileCached(cfg *specs.LinuxSeccomp, dir string) (f *Filter, cacheErr error, err error) {
	key, err := cacheKey(cfg)
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, key)
	if raw, rerr := os.ReadFile(path); rerr == nil {
		if f, derr := decodeFilter(raw); derr == nil {
			return f, nil, nil
		}
	}
	if f, err = Compile(cfg); err != nil {
		return nil, nil, err
	}
	return f, writeCache(dir, path, f.encode()), nil
}

// cacheKey names a config's entry: the config as JSON, the libseccomp
// version (a newer one may know more syscalls or generate other code) and
// the architecture.
func cacheKey(cfg *specs.LinuxSeccomp) (string, error) {
	js, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encode seccomp config: %w", err)
	}
	major, minor, micro := libseccomp.GetLibraryVersion()
	h := sha256.New()
	fmt.Fprintf(h, "%s %d.%d.%d %s\n", cacheMagic, major, minor, micro, runtime.GOARCH)
	h.Write(js)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeCache stores data at path through a temporary file and a rename,
// so that a concurrent reader sees the whole entry or none.
func writeCache(dir, path string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make seccomp cache %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return fmt.Errorf("write seccomp cache: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write seccomp cache %s: %w", path, err)
	}
	return nil
}

// MarshalBinary encodes the filter, program, flags and all, for another
// process to load: the runtime compiles in the parent and hands the
// program to the container's init.
func (f *Filter) MarshalBinary() ([]byte, error) {
	if f == nil || f.prog == nil {
		return nil, errors.New("encode a released filter")
	}
	return f.encode(), nil
}

// UnmarshalFilter decodes what MarshalBinary wrote.
func UnmarshalFilter(raw []byte) (*Filter, error) { return decodeFilter(raw) }

func (f *Filter) encode() []byte {
	const size = int(unsafe.Sizeof(unix.SockFilter{}))
	out := make([]byte, headerSize, headerSize+len(f.prog)*size)
	copy(out, cacheMagic)
	binary.NativeEndian.PutUint32(out[len(cacheMagic):], uint32(f.flags))
	if f.notify {
		out[headerSize-1] = 1
	}
	for _, in := range f.prog {
		var b [8]byte
		binary.NativeEndian.PutUint16(b[0:2], in.Code)
		b[2], b[3] = in.Jt, in.Jf
		binary.NativeEndian.PutUint32(b[4:8], in.K)
		out = append(out, b[:]...)
	}
	return out
}

func decodeFilter(raw []byte) (*Filter, error) {
	if len(raw) < headerSize || string(raw[:len(cacheMagic)]) != cacheMagic {
		return nil, errors.New("not an encoded seccomp filter")
	}
	prog, err := decodeProgram(raw[headerSize:])
	if err != nil {
		return nil, err
	}
	return &Filter{
		prog:   prog,
		flags:  uint(binary.NativeEndian.Uint32(raw[len(cacheMagic):])),
		notify: raw[headerSize-1] == 1,
	}, nil
}

// SplitEncoded returns the parts of what MarshalBinary wrote: the flags
// for seccomp(2), whether the filter hands a listener fd back, and the
// program as the kernel takes it (an array of struct sock_filter, in the
// machine's byte order), for a loader that is not Go.
func SplitEncoded(raw []byte) (flags uint32, notify bool, prog []byte, err error) {
	if _, err := decodeFilter(raw); err != nil {
		return 0, false, nil, err
	}
	flags = binary.NativeEndian.Uint32(raw[len(cacheMagic):])
	return flags, raw[headerSize-1] == 1, raw[headerSize:], nil
}
