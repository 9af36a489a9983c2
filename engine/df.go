package engine

import (
	"context"

	"github.com/berth-containers/berth/image/content"
)

// DiskUsage is what the store holds on disk.
type DiskUsage struct {
	Images            int
	ImagesActive      int
	ImagesSize        int64 // blobs plus unpacked layers, as stored
	ImagesReclaimable int64
	Blobs             int
	BlobBytes         int64
	Layers            int
	LayerBytes        int64
}

// DiskUsage measures the store. Images are reclaimable until containers
// use them.
func (e *Engine) DiskUsage(ctx context.Context) (DiskUsage, error) {
	var du DiskUsage
	imgs, err := e.Images.List(ctx)
	if err != nil {
		return du, err
	}
	du.Images = len(imgs)
	err = e.Images.Content.Walk(func(i content.Info) error {
		du.Blobs++
		du.BlobBytes += i.Size
		return nil
	})
	if err != nil {
		return du, err
	}
	layers, err := e.Snapshots.Layers(ctx)
	if err != nil {
		return du, err
	}
	for _, l := range layers {
		du.Layers++
		du.LayerBytes += l.Size
	}
	du.ImagesSize = du.BlobBytes + du.LayerBytes
	du.ImagesReclaimable = du.ImagesSize
	return du, nil
}
