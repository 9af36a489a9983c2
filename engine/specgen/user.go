package specgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
)

// maxIDFile bounds how much of an image's /etc/passwd or /etc/group is
// read: real ones are kilobytes.
const maxIDFile = 16 << 20

// maxID is the largest uid or gid a container may use.
const maxID = 1<<31 - 1

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	name    string
	gid     int
	members []string
}

// user resolves Config.User (else the image's) against the container's
// own /etc/passwd and /etc/group, and adds HostConfig.GroupAdd. It returns
// the user and its home directory.
func (g *generator) user() (specs.User, string, error) {
	spec := g.in.Config.User
	if spec == "" && g.in.Image != nil {
		spec = g.in.Image.User
	}
	passwd, err := readIDFile(g.in.Rootfs, "/etc/passwd")
	if err != nil {
		return specs.User{}, "", err
	}
	group, err := readIDFile(g.in.Rootfs, "/etc/group")
	if err != nil {
		return specs.User{}, "", err
	}
	u, home, err := resolveUser(spec, g.hc.GroupAdd, passwd, group)
	if err != nil {
		return specs.User{}, "", err
	}
	if g.hc.Umask != nil {
		if *g.hc.Umask > 0o777 {
			return specs.User{}, "", errdefs.Invalid("invalid umask %#o: it must be at most 0777", *g.hc.Umask)
		}
		m := *g.hc.Umask
		u.Umask = &m
	}
	return u, home, nil
}

// readIDFile reads name (an absolute path inside the container) from the
// root filesystem, resolving every symlink inside rootfs so that a link in
// the image cannot make us read a host file. A missing file gives nil.
func readIDFile(rootfs, name string) ([]byte, error) {
	f, err := pathrs.OpenInRoot(rootfs, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in the container: %w", name, err)
	}
	defer f.Close()
	r, err := pathrs.Reopen(f, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open %s in the container: %w", name, err)
	}
	defer r.Close()
	fi, err := r.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s in the container: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errdefs.Invalid("%s in the container is not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxIDFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s in the container: %w", name, err)
	}
	if len(data) > maxIDFile {
		return nil, errdefs.Invalid("%s in the container is larger than %d bytes", name, maxIDFile)
	}
	return data, nil
}

// resolveUser applies Docker's (runc's) rules to a user spec "user",
// "uid", "user:group" or "uid:gid": names must exist in the files, numbers
// need not. Without an explicit group the user's primary group is used and
// every group listing the user by name is added as a supplementary group.
// The supplementary list starts with the primary gid, as Docker's does,
// and ends with groupAdd. passwd or group nil means the file is missing.
func resolveUser(spec string, groupAdd []string, passwd, group []byte) (specs.User, string, error) {
	userArg, groupArg, _ := strings.Cut(spec, ":")
	users := parsePasswd(passwd)
	groups := parseGroup(group)

	uid, gid, home := 0, 0, "/"
	var matched *passwdEntry
	uidNum, uidErr := strconv.Atoi(userArg)
	for i := range users {
		u := &users[i]
		if (userArg == "" && u.uid == 0) || (userArg != "" && uidErr == nil && u.uid == uidNum) || (uidErr != nil && u.name == userArg) {
			matched = u
			break
		}
	}
	switch {
	case matched != nil:
		uid, gid, home = matched.uid, matched.gid, matched.home
	case userArg == "":
	case uidErr != nil:
		return specs.User{}, "", errdefs.Invalid("unable to find user %s: no matching entries in passwd file", userArg)
	default:
		if uidNum < 0 || uidNum > maxID {
			return specs.User{}, "", errdefs.Invalid("invalid user %q: uid out of range [0, %d]", spec, maxID)
		}
		uid = uidNum
	}

	var sgids []int
	if groupArg != "" {
		g, err := lookupGroup(groupArg, groups)
		if err != nil {
			return specs.User{}, "", err
		}
		gid = g
	} else if matched != nil {
		for _, g := range groups {
			if slices.Contains(g.members, matched.name) {
				sgids = append(sgids, g.gid)
			}
		}
	}
	for _, ga := range groupAdd {
		g, err := lookupGroup(ga, groups)
		if err != nil {
			return specs.User{}, "", err
		}
		sgids = append(sgids, g)
	}

	u := specs.User{UID: uint32(uid), GID: uint32(gid), AdditionalGids: []uint32{uint32(gid)}}
	for _, g := range sgids {
		if !slices.Contains(u.AdditionalGids, uint32(g)) {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	if home == "" {
		home = "/"
	}
	return u, home, nil
}

// lookupGroup finds a group by number (which need not exist) or by name
// (which must).
func lookupGroup(arg string, groups []groupEntry) (int, error) {
	n, numErr := strconv.Atoi(arg)
	for _, g := range groups {
		if (numErr == nil && g.gid == n) || (numErr != nil && g.name == arg) {
			return g.gid, nil
		}
	}
	if numErr != nil {
		return 0, errdefs.Invalid("unable to find group %s: no matching entries in group file", arg)
	}
	if n < 0 || n > maxID {
		return 0, errdefs.Invalid("invalid group %q: gid out of range [0, %d]", arg, maxID)
	}
	return n, nil
}

// idLines yields the colon-separated fields of each non-comment line.
func idLines(data []byte, fields int, fn func([]string)) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxIDFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		parts := strings.Split(line, ":")
		for len(parts) < fields {
			parts = append(parts, "")
		}
		fn(parts)
	}
}

// parsePasswd parses name:password:uid:gid:gecos:home:shell lines,
// skipping those whose ids are not numbers.
func parsePasswd(data []byte) []passwdEntry {
	var out []passwdEntry
	idLines(data, 7, func(f []string) {
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || f[0] == "" {
			return
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]})
	})
	return out
}

// parseGroup parses name:password:gid:member,member lines.
func parseGroup(data []byte) []groupEntry {
	var out []groupEntry
	idLines(data, 4, func(f []string) {
		gid, err := strconv.Atoi(f[2])
		if err != nil || f[0] == "" {
			return
		}
		var members []string
		for m := range strings.SplitSeq(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
		out = append(out, groupEntry{name: f[0], gid: gid, members: members})
	})
	return out
}
