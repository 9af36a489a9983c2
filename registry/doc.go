// Package registry is berth's OCI distribution server: an http.Handler
// that serves the distribution spec v1.1 API (manifests, blobs, chunked
// and monolithic uploads, cross-repository mounts, tags, referrers and
// the catalog) from a storage.Driver.
//
// The handler keeps nothing in memory between requests. Everything,
// upload sessions included, lives in the driver, so any number of
// replicas on one backend serve the same content, and an upload begun on
// one replica is continued and finished on another. Authentication, TLS,
// rate limits and metrics wrap the handler from outside; WriteError
// answers in the registry's error format for them.
//
// # Storage layout
//
//	blobs/<alg>/<hex[0:2]>/<hex>/data
//	    The bytes of every blob and manifest, addressed by digest and
//	    shared by all repositories: content pushed twice is stored once.
//
//	repositories/<name>/_blobs/<alg>/<hex>/link
//	    The blob is part of the repository (pushed or mounted there).
//	    Holds the digest. A repository serves only blobs it links, so
//	    knowing a digest is not enough to read another repository's
//	    content.
//
//	repositories/<name>/_manifests/revisions/<alg>/<hex>/link
//	    The manifest is part of the repository. Holds its descriptor
//	    (media type, digest, size) as JSON, so HEAD needs one small read
//	    and GET answers with the media type it was pushed with.
//
//	repositories/<name>/_manifests/tags/<tag>
//	    The digest the tag points to.
//
//	repositories/<name>/_referrers/<alg>/<hex>/<alg>/<hex>
//	    One object per manifest of the repository whose subject is the
//	    first digest, named by the second: the descriptor the referrers
//	    API lists (artifactType and annotations included).
//
//	repositories/<name>/_uploads/<id>/startedat
//	repositories/<name>/_uploads/<id>/data
//	    An open upload session: when it began (its presence is what makes
//	    the session exist), and the driver upload its chunks are appended
//	    to. The closing PUT commits the data, reads it back to check the
//	    digest, and moves it to blobs/ (or drops it when the blob is
//	    already there).
//
// Repository names are components of [a-z0-9] and separators, so no name
// component starts with "_", and the registry's own entries never collide
// with a repository nested under another.
//
// # Referrers
//
// The referrers index is kept per subject at push, not computed by
// walking the repository's manifests at query time: a query then reads
// only the entries for its subject, its cost independent of how many
// manifests the repository holds, and each entry is its own object, so
// concurrent pushes on different replicas never contend for one index
// file. A manifest's entry is written after its link and removed after
// it on delete; the query skips entries whose manifest is gone, so a
// write or delete interrupted half-way is never visible.
//
// # Ordering
//
// Writes go in the order that keeps every reader's view whole: blob data
// before the link to it, the manifest link before its referrers entry,
// tags last. Deletes go the other way: tags, then the link. Blob data is
// never deleted by the API, only unlinked; the garbage collector removes
// data no repository refers to (WalkBlobs, Repositories, WalkManifests,
// References and DeleteBlob are its view of the layout; WalkUploads and
// CancelUpload purge abandoned sessions).
package registry
