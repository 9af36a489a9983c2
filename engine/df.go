package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/berth-containers/berth/image"
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

	Containers            int
	ContainersActive      int
	ContainersSize        int64 // what containers wrote in their layers
	ContainersReclaimable int64 // of that, by stopped containers
	Volumes               int
	VolumesActive         int
	VolumesSize           int64
	VolumesReclaimable    int64 // in volumes no container uses
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
	if _, err := os.Stat(filepath.Join(e.root, stateDB)); errors.Is(err, os.ErrNotExist) {
		return du, nil // no container or volume was ever made
	}
	return du, e.containerUsage(ctx, &du, imgs)
}

// containerUsage adds containers and volumes to du; images that
// containers use are active and not reclaimable.
func (e *Engine) containerUsage(ctx context.Context, du *DiskUsage, imgs []image.Image) error {
	cs, err := e.Containers(ctx)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, c := range cs {
		du.Containers++
		used[c.ImageID] = true
		rw, _ := e.ContainerSize(ctx, c)
		du.ContainersSize += rw
		if active(c.State.Status) {
			du.ContainersActive++
		} else {
			du.ContainersReclaimable += rw
		}
	}
	sizes, err := e.LayerSizes(ctx)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		if used[img.Config.String()] {
			du.ImagesActive++
			du.ImagesReclaimable -= ImageSize(img, sizes)
		}
	}
	du.ImagesReclaimable = max(du.ImagesReclaimable, 0)
	vs, err := e.Volumes(ctx)
	if err != nil {
		return err
	}
	users, err := e.VolumeUsers(ctx)
	if err != nil {
		return err
	}
	for _, v := range vs {
		size := volumeSize(ctx, v)
		du.Volumes++
		du.VolumesSize += size
		if len(users[v.Name]) > 0 {
			du.VolumesActive++
		} else {
			du.VolumesReclaimable += size
		}
	}
	return nil
}
