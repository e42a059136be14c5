# underhood: build, test and try a Linux container made by hand.
# sudo's PATH often lacks Go's default install directory.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
BIN     ?= ./underhood
PREFIX  ?= /usr/local
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test unit vet lint tidy-check install uninstall clean demo setup bench faults

all: build

# underhood, and beside it underhood-init: the small program that becomes
# each container's first process (underhood runs itself where it is missing).
INIT    = $(dir $(BIN))underhood-init

build:
	CGO_ENABLED=0 $(GO) build -ldflags "-X github.com/underhood/underhood/cmd/underhood/cli.version=$(VERSION)" -o $(BIN) ./cmd/underhood
	CGO_ENABLED=0 $(GO) build -o $(INIT) ./cmd/underhood-init

# vet + every test; the root-only tests run when this runs as root.
# (It installs nothing: 'make setup' does, and CI runs it first.)
test: vet
	$(GO) test -count=1 -timeout 20m ./...

# Only the tests that need no root and no kernel features.
unit:
	$(GO) test -count=1 -short ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

lint: vet
	$(GO) run $(STATICCHECK) ./...

# go.mod and go.sum say exactly what the code imports.
tidy-check:
	$(GO) mod tidy -diff

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/underhood
	install -D -m 0755 $(INIT) $(DESTDIR)$(PREFIX)/bin/underhood-init

# Exactly what install put there, and nothing of the lab (README: Removing the lab).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/underhood $(DESTDIR)$(PREFIX)/bin/underhood-init

clean:
	rm -f $(BIN) $(INIT)

# Set up this machine (BusyBox from the distribution as a fallback).
setup:
	@scripts/setup.sh

# The main job: build, get BusyBox, prepare the root, run a full container.
demo: setup build
	$(BIN) download
	$(BIN) rootfs
	$(BIN) run -- /bin/busybox sh -c 'busybox echo Hello from a container!; busybox hostname; busybox ls /; busybox ps -A'
	@echo; echo "The article's memory hog, in a container limited to 7 MiB (137 expected):"
	$(BIN) run -- /bin/busybox sh -c 'data=$$(busybox head -c 7500000 /dev/urandom)'; test $$? -eq 137

# The fault suite (root): kill -9 at each moment of each step, signals, fifty
# runs at once, cleanup racing runs, hostile run directories; one line at the
# end: scenarios run, passed, leftovers found (must be 0).
faults: build
	$(GO) run ./scripts/faults -underhood $(BIN)

# Lifecycle of a trivial container against unshare, the article's script,
# runc and busybox alone, alternating, in one run (root); then the Go
# benchmarks. Raw figures: build/bench/results.json.
bench: build
	$(GO) run ./scripts/bench -n 30 -underhood $(BIN) -out build/bench/results.json -doc docs/performance.md $(BENCHFLAGS)
	$(GO) test -run '^$$' -bench . -benchtime 200x ./lab/...

# The workshop guide: regenerate the command reference (docs/cli) and the
# outputs shown in docs/*.md by running their commands in a fresh lab (root);
# docs-check changes nothing and fails when any of it is stale.
.PHONY: docs docs-check
docs:
	@scripts/docs.sh

docs-check:
	@scripts/docs.sh --check

# Boot Debian's kernel under qemu (software emulation) and run the lab and the
# root tests inside, on pure cgroup v2 and on pure v1 (two VMs at once).
.PHONY: vm-test vm-test-arm64 vagrant-check
vm-test:
	scripts/vm-test.sh

# The same on arm64: Debian's arm64 kernel under qemu-system-aarch64 (TCG),
# an arm64 BusyBox, underhood and tests built with GOARCH=arm64; cgroup v2,
# the /init checks and the tests of lab/cgroup and lab/doctor.
# VM_DRY_RUN=1 fetches and builds without booting.
vm-test-arm64:
	VM_ARCH=arm64 scripts/vm-test.sh

# The VM set-ups without a hypervisor: vagrant validate, the Lima template and
# the cloud-init file parsed and checked, shellcheck, and scripts/provision.sh
# run in Debian 12 amd64 and arm64 trees by chroot (needs root).
vagrant-check:
	scripts/check-vagrant.sh
