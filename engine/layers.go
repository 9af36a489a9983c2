package engine

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/snapshot"
)

// layers adapts the snapshotter to what the image store asks of it.
type layers struct{ s *snapshot.Snapshotter }

func (l layers) HasLayer(d digest.Digest) bool { return l.s.HasLayer(d) }

func (l layers) ApplyLayer(ctx context.Context, d digest.Digest, r io.Reader) error {
	_, err := l.s.ApplyLayer(ctx, d, r)
	return err
}

func (l layers) RemoveLayer(ctx context.Context, d digest.Digest) error {
	return l.s.RemoveLayer(ctx, d)
}

func (l layers) LayerDiffIDs() ([]digest.Digest, error) {
	infos, err := l.s.Layers(context.Background())
	if err != nil {
		return nil, err
	}
	out := make([]digest.Digest, len(infos))
	for i, info := range infos {
		out[i] = info.DiffID
	}
	return out, nil
}

// LayerSizes maps each unpacked layer to its size on disk.
func (e *Engine) LayerSizes(ctx context.Context) (map[digest.Digest]int64, error) {
	infos, err := e.Snapshots.Layers(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[digest.Digest]int64, len(infos))
	for _, info := range infos {
		out[info.DiffID] = info.Size
	}
	return out, nil
}
