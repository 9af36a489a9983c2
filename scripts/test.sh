#!/usr/bin/env bash
# Runs berth's whole test suite: installs what it needs, builds, lints,
# and runs every test. Run as root, as CI does: tests that need root skip
# (saying so) otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH=$PATH:/usr/local/go/bin:$(go env GOPATH)/bin
if ! command -v golangci-lint >/dev/null; then
	GOFLAGS= go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
fi
# The S3 server the registry's S3 driver is tested against.
if ! command -v versitygw >/dev/null; then
	GOFLAGS= go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
scripts/dockerd.sh
make lint
# Everything the tests use is installed and started above: a test that
# finds a tool missing fails here instead of skipping.
BERTH_TEST_STRICT=1 make test
