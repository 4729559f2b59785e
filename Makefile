# trakx build, test and package targets. `make test` is what CI runs.

# The release version; a newer build for an upgrade test overrides it.
VERSION ?= 0.1.0
# The package's revision: the package is VERSION-RELEASE, and the binary
# says the same (trakx version).
RELEASE ?= 1
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION)-$(RELEASE) -X main.commit=$(COMMIT)
GO      ?= go
# Fuzzing runs by count, not duration: a duration-bound run fails at random
# with "context deadline exceeded" (Go issue 75804).
FUZZTIME ?= 10000x
NFPM    := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Dates in the package come from the last commit, so builds repeat exactly.
DATE    := $(shell git log -1 --format=%cD 2>/dev/null || date -R)

.PHONY: all build test lint fuzz bench mem clean package package-files lintian e2e webtorrent screenshot

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/trakx ./cmd/trakx

# The README's test command: formatting, vet, go mod tidy, staticcheck, and every test under the race
# detector; then, alone, real WebTorrent clients (WebRTC stacks starved of CPU
# stall); the allocation assertions again without the race detector (it changes what
# allocates). The request-path benchmarks check their own replies, so they run
# once too: a benchmark that measures an empty reply must fail, not rot. The
# WebSocket conformance suite runs a second time over wss:// (TRAKX_WS_TLS).
test: lint webtorrent
	$(GO) test -race -count=1 ./...
	TRAKX_WS_TLS=1 $(GO) test -race -count=1 ./internal/wsconformance
	TRAKX_WEBTORRENT=1 $(GO) test -count=1 -run 'TestWebTorrentClients' -v ./internal/daemon
	$(GO) test -count=1 -run 'Allocat' ./internal/...
	$(GO) test -run '^$$' -bench Announce -benchtime 1x ./internal/...

# Real WebTorrent clients and the reference tracker (npm, pinned by
# test/webtorrent/package-lock.json) for the WebSocket tests; without npm,
# those tests skip (CI requires them).
# The stats page's picture for the README (not a test: it takes a minute
# of load so that the charts have something to show).
screenshot:
	bash test/screenshot.sh

webtorrent:
	@if command -v npm >/dev/null; then cd test/webtorrent && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the WebTorrent client tests will skip"; fi

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }
	$(STATICCHECK) ./...

# A short run of every fuzz target (FUZZTIME inputs each); crashers land
# in testdata/fuzz.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Memory per peer beside opentracker (test/memory.sh; about 10 minutes).
mem:
	bash test/memory.sh

# Everything nfpm.yaml takes from dist/build: a static, stripped, stamped
# binary, the man page, and the Debian copyright and changelog.
package-files:
	rm -rf dist/build && mkdir -p dist/build
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/build/trakx ./cmd/trakx
	gzip -9n < packaging/trakx.8 > dist/build/trakx.8.gz
	{ echo 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/'; \
	  echo 'Upstream-Name: trakx'; echo 'Source: https://github.com/trakx/trakx'; echo; \
	  echo 'Files: *'; echo 'Copyright: 2026 the trakx developers'; echo 'License: MIT'; \
	  sed -e '1,2d' -e 's/^$$/./' -e 's/^/ /' LICENSE; } > dist/build/copyright
	{ echo 'trakx ($(VERSION)-$(RELEASE)) unstable; urgency=medium'; echo; \
	  echo '  * Release $(VERSION), built from commit $(COMMIT).'; echo; \
	  echo ' -- trakx developers <trakx@users.noreply.github.com>  $(DATE)'; } \
	  | gzip -9n > dist/build/changelog.gz

package: package-files
	VERSION=$(VERSION) RELEASE=$(RELEASE) $(NFPM) package -f nfpm.yaml -p deb -t dist/trakx_$(VERSION)_amd64.deb
	VERSION=$(VERSION) RELEASE=$(RELEASE) $(NFPM) package -f nfpm.yaml -p rpm -t dist/trakx-$(VERSION).x86_64.rpm

# lintian on the .deb must report no errors; the warnings it may report are
# listed, with reasons, in the README.
lintian: package
	lintian --fail-on error dist/trakx_$(VERSION)_amd64.deb

# The end-to-end test in a real systemd (see test/e2e.sh): the package, and a
# newer build of it to upgrade to.
E2E_NEWER := $(VERSION)+e2e1
e2e:
	$(MAKE) package VERSION=$(E2E_NEWER)
	$(MAKE) package
	bash test/e2e.sh dist/trakx_$(VERSION)_amd64.deb dist/trakx_$(E2E_NEWER)_amd64.deb

clean:
	rm -rf bin dist
