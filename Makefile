# berth: build, test, lint and benchmark.
#
#   make            build bin/berth (static, cgo for seccomp and nsenter)
#   make test       all tests; those needing root skip clearly unless run as root
#   make lint       gofmt, go vet, golangci-lint
#   make bench      runtime benchmark against runc and crun -> docs/BENCHMARKS.md
#   make bench-images  pull/push benchmark against docker, podman, skopeo
#   make bench-containers  run/ps/monitor benchmark against podman and docker
#   make bench-network  default network cost and published-port throughput against docker and podman
#   make bench-registry  berth registry against the distribution registry: manifest GETs, push, pull, gc
#   make bench-build  berth build against docker build and buildah: cold and fully cached

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION) -extldflags=-static
TAGS      := netgo,osusergo,sqlite_omit_load_extension
PKGS      := ./...
TESTFLAGS ?= -count=1 -timeout 30m

.PHONY: all build test unit lint bench bench-images bench-containers bench-network bench-registry bench-build clean deps

all: build

build:
	CGO_ENABLED=1 $(GO) build -tags $(TAGS) -trimpath -ldflags '$(LDFLAGS)' -o bin/berth ./cmd/berth
	ln -sf berth bin/berth-runc

# Integration tests find the binary through BERTH_BINARY.
test: build
	BERTH_BINARY=$(CURDIR)/bin/berth $(GO) test -tags $(TAGS) $(TESTFLAGS) -p 1 $(PKGS)

unit:
	$(GO) test -tags $(TAGS) -short $(PKGS)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet -tags $(TAGS) $(PKGS)
	golangci-lint run $(PKGS)

bench: build
	bench/runtime.sh bin/berth

bench-containers: build
	scripts/dockerd.sh
	bench/containers.sh bin/berth

# bench/network.sh uses this dockerd when it has a bridge network and
# otherwise starts one of its own that has.
bench-network: build
	scripts/dockerd.sh
	bench/network.sh bin/berth

# No dockerd: both registries are driven with skopeo and wrk.
bench-registry: build
	bench/registry.sh bin/berth

bench-build: build
	scripts/dockerd.sh
	bench/build.sh bin/berth

bench-images: build
	scripts/dockerd.sh
	bench/images.sh bin/berth

clean:
	rm -rf bin
