package dockerfile

import (
	"errors"
	"maps"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
)

func TestPlanStages(t *testing.T) {
	src := `ARG BASE=busybox
ARG TAG
FROM ${BASE}:${TAG:-latest} AS base
RUN true
FROM base AS builder
RUN --mount=type=bind,from=tools,target=/t true
FROM alpine AS tools
FROM busybox AS other
COPY --from=builder /x /x
FROM scratch
COPY --from=BASE /a /a
COPY --from=registry.example/img:1 /b /b
`
	f, err := Parse([]byte(src))
	require.NoError(t, err)
	for _, tc := range []struct {
		target string
		args   map[string]string
		want   []string // labels of the needed stages, in order
		base   string   // the target's base image
	}{
		{"", nil, []string{"base", "4"}, "scratch"},
		{"other", nil, []string{"base", "builder", "other"}, "busybox"},
		{"BUILDER", nil, []string{"base", "builder"}, ""},
		{"base", map[string]string{"TAG": "1.36"}, []string{"base"}, "busybox:1.36"},
		{"base", map[string]string{"BASE": "debian"}, []string{"base"}, "debian:latest"},
	} {
		p, err := f.Plan(tc.target, tc.args)
		require.NoError(t, err, tc.target)
		var got []string
		for _, st := range p.Needed {
			got = append(got, st.Label())
		}
		assert.Equal(t, tc.want, got, tc.target)
		assert.Equal(t, tc.base, p.Target.Base, tc.target)
	}
}

func TestPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		src, target string
		line        int
		class       error
	}{
		{"FROM busybox\nFORM x\n", "", 2, errdefs.ErrInvalidArgument},
		{"FROM busybox\nENV\n", "", 2, errdefs.ErrInvalidArgument},
		{"# just a comment\n", "", 0, errdefs.ErrInvalidArgument},
		{"FROM busybox\n", "nope", 0, errdefs.ErrNotFound},
		{"FROM busybox AS a\nCOPY --from=a /x /y\n", "", 2, errdefs.ErrInvalidArgument},
	} {
		f, err := Parse([]byte(tc.src))
		if err == nil {
			_, err = f.Plan(tc.target, nil)
		}
		require.Error(t, err, tc.src)
		assert.ErrorIs(t, err, tc.class, tc.src)
		var le *LineError
		if tc.line > 0 {
			require.True(t, errors.As(err, &le), "%q: %v", tc.src, err)
			assert.Equal(t, tc.line, le.Line, tc.src)
		}
	}
}

func TestUnusedArgs(t *testing.T) {
	f, err := Parse([]byte("ARG A\nFROM busybox\nARG B\n"))
	require.NoError(t, err)
	p, err := f.Plan("", map[string]string{"A": "1", "B": "2", "C": "3", "HTTP_PROXY": "x", "TARGETARCH": "y"})
	require.NoError(t, err)
	assert.Equal(t, []string{"C"}, p.UnusedArgs)
	want := maps.Clone(PlatformArgs)
	want["A"] = "1"
	assert.Equal(t, want, p.MetaArgs)
}

func TestPlatformArgs(t *testing.T) {
	assert.Equal(t, map[string]string{
		"BUILDPLATFORM": "linux/arm/v7", "BUILDOS": "linux", "BUILDARCH": "arm", "BUILDVARIANT": "v7",
		"TARGETPLATFORM": "linux/arm/v7", "TARGETOS": "linux", "TARGETARCH": "arm", "TARGETVARIANT": "v7",
	}, platformArgs("linux", "arm"))
	assert.Equal(t, "linux/amd64", platformArgs("linux", "amd64")["TARGETPLATFORM"])

	f, err := Parse([]byte("ARG BASE=busybox\nFROM --platform=$BUILDPLATFORM $BASE AS b\nFROM b\n"))
	require.NoError(t, err)
	p, err := f.Plan("", nil)
	require.NoError(t, err)
	assert.Equal(t, PlatformArgs["BUILDPLATFORM"], p.Stages[0].Platform, "FROM sees the platform ARGs undeclared")
}
