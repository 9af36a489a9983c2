// Package ctxio stops long copies when their context ends: a reader that
// checks the context before every read, so a client that hangs up or a
// command that is interrupted stops the copy at the next buffer.
package ctxio

import (
	"context"
	"io"
)

// Reader reads r until ctx is done; then every read returns ctx.Err().
func Reader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx, r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
