# edgecache: make run · make fleet · make test · make build · make lint · make bench
GO      ?= go
BINS    := origin proxy invalidator bench
# The one-box stack keeps its data here (git-ignored).
RUN_DIR ?= .run

.PHONY: build run fleet drills test lint bench deps fuzz

build:
	$(GO) build -o bin/ ./origin/cmd/origin ./proxy/cmd/proxy ./proxy/cmd/invalidator ./bench/cmd/bench

deps:
	@./deploy/install-deps.sh

run: deps build
	$(GO) run ./deploy/cmd/onebox -dir $(RUN_DIR)

# The multi-AZ fleet behind HAProxy, for fault drills (README "Multi-AZ fleet
# on one machine"); FLEET_FLAGS="-listen 127.0.0.1:9080" etc.
fleet: deps
	$(GO) run ./deploy/cmd/fleet -dir $(RUN_DIR)/fleet $(FLEET_FLAGS)

# Fault drills under load through the fleet (README "Fault drills"):
# DRILLS=memcached-stall,replica-lag to pick some.
DRILLS ?= all
drills: deps
	$(GO) run ./deploy/cmd/fleet -dir $(RUN_DIR)/drills -listen 127.0.0.1:0 -stats 127.0.0.1:0 -drills $(DRILLS)

test: deps lint
	$(GO) test -race -count=1 -timeout 12m ./...
	# allocation budgets, which the race detector's own allocations blur
	$(GO) test -count=1 -run Allocations ./proxy/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: deps build
	$(GO) run ./deploy/cmd/onebox -dir $(RUN_DIR) -bench bench/out $(BENCH_FLAGS)

# Every fuzz target in turn, FUZZTIME each (go test -fuzz runs one at a time).
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done
