package registry

import (
	"github.com/opencontainers/go-digest"
)

// The storage layout; doc.go describes it.
const (
	blobsDir = "blobs"
	reposDir = "repositories"
)

// blobDataPath is where a blob's bytes live, shared by every repository.
// The two-character fan-out keeps directories small on filesystems.
func blobDataPath(d digest.Digest) string {
	hex := d.Encoded()
	return blobsDir + "/" + d.Algorithm().String() + "/" + hex[:2] + "/" + hex + "/data"
}

func repoPath(name string) string { return reposDir + "/" + name }

// blobLinkPath marks a blob as part of a repository.
func blobLinkPath(name string, d digest.Digest) string {
	return repoPath(name) + "/_blobs/" + d.Algorithm().String() + "/" + d.Encoded() + "/link"
}

// blobLinkDir is what deleting a blob from a repository removes.
func blobLinkDir(name string, d digest.Digest) string {
	return repoPath(name) + "/_blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

func manifestsDir(name string) string { return repoPath(name) + "/_manifests" }

func revisionsDir(name string) string { return manifestsDir(name) + "/revisions" }

// revisionLinkPath marks a manifest as part of a repository; it holds the
// manifest's descriptor (media type, digest, size).
func revisionLinkPath(name string, d digest.Digest) string {
	return revisionsDir(name) + "/" + d.Algorithm().String() + "/" + d.Encoded() + "/link"
}

func revisionDir(name string, d digest.Digest) string {
	return revisionsDir(name) + "/" + d.Algorithm().String() + "/" + d.Encoded()
}

func tagsDir(name string) string { return manifestsDir(name) + "/tags" }

// tagPath holds the digest the tag points to.
func tagPath(name, tag string) string { return tagsDir(name) + "/" + tag }

// referrersDir holds one object per manifest of the repository whose
// subject is d.
func referrersDir(name string, subject digest.Digest) string {
	return repoPath(name) + "/_referrers/" + subject.Algorithm().String() + "/" + subject.Encoded()
}

// referrerPath holds the descriptor the referrers API lists for the
// manifest referrer of subject.
func referrerPath(name string, subject, referrer digest.Digest) string {
	return referrersDir(name, subject) + "/" + referrer.Algorithm().String() + "/" + referrer.Encoded()
}

func uploadDir(name, id string) string { return repoPath(name) + "/_uploads/" + id }

// uploadDataPath is the driver upload the session appends to.
func uploadDataPath(name, id string) string { return uploadDir(name, id) + "/data" }

// uploadStartedPath marks the session as open and says when it began.
func uploadStartedPath(name, id string) string { return uploadDir(name, id) + "/startedat" }

// uploadHashPath holds the session's running sha256 state and the offset
// it has reached, for drivers whose writers hold an upload alone.
func uploadHashPath(name, id string) string { return uploadDir(name, id) + "/hashstate" }
