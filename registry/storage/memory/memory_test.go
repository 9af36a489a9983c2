package memory

import (
	"testing"

	"github.com/berth-containers/berth/registry/storage"
	"github.com/berth-containers/berth/registry/storage/storagetest"
)

// TestSuite runs the shared driver suite; every driver the suite opens
// over one backend is the same Driver, as replicas share one backend.
func TestSuite(t *testing.T) {
	storagetest.Run(t, func(testing.TB) func() storage.Driver {
		d := New()
		return func() storage.Driver { return d }
	})
}
