# edgecache: make run · make test · make build · make lint · make bench · make overload · make fleet · make drills · make hotpost · make fuzz · make simulate · make deps
GO      ?= go
# The one-box stack keeps its data here (git-ignored); make bench uses its
# own folder below it, so its data never mixes with make run's.
RUN_DIR ?= .run
# Flags of bin/onebox for make run, e.g. RUN_FLAGS='-mariadb-port 3307 -memcached-port 11311'.
RUN_FLAGS ?=
CMDS    := ./origin/cmd/origin ./proxy/cmd/proxy ./proxy/cmd/invalidator ./bench/cmd/bench ./deploy/cmd/onebox ./deploy/cmd/fleet

.PHONY: build run fleet drills hotpost test lint bench overload deps fuzz simulate

# One go build for every command: each package is compiled once.
build:
	$(GO) build -o bin/ $(CMDS)

deps:
	@./deploy/install-deps.sh

# bin/onebox, not go run: Ctrl-C stops the stack and make exits 0.
run: deps build
	bin/onebox -dir $(RUN_DIR) $(RUN_FLAGS)

# The multi-AZ fleet behind HAProxy, for fault drills (README "Multi-AZ fleet
# on one machine"); FLEET_FLAGS="-listen 127.0.0.1:9080" etc.
fleet: deps build
	bin/fleet -dir $(RUN_DIR)/fleet $(FLEET_FLAGS)

# Fault drills under load through the fleet (README "Fault drills"):
# DRILLS=memcached-stall,replica-lag to pick some.
DRILLS ?= all
drills: deps build
	bin/fleet -dir $(RUN_DIR)/drills -listen 127.0.0.1:0 -stats 127.0.0.1:0 -drills $(DRILLS)

# The fleet-scale check of read-after-write (proxy/PROTOCOL.md "Measured on
# live processes"): HOTPOST proxies reading one post, 20 writes/s,
# flush_all every 2 s; HOTPOST_TIME per load phase.
HOTPOST      ?= 1,8
HOTPOST_TIME ?= 30s
hotpost: deps
	$(GO) test -count=1 -timeout 0 -run '^TestHotPost$$' ./deploy/fleet/ -v -hotpost $(HOTPOST) -hotpost.for $(HOTPOST_TIME)

test: deps lint
	$(GO) test -race -count=1 -timeout 12m ./...
	# allocation budgets, which the race detector's own allocations blur
	$(GO) test -count=1 -run Allocations ./proxy/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The default benchmark against a one-box stack of its own (its MariaDB data
# in $(RUN_DIR)/bench), with nginx and Varnish for comparison; reports in
# bench/out. BENCH_FLAGS="-bench-rate 2000".
bench: build
	@./deploy/install-deps.sh bench
	bin/onebox -dir $(RUN_DIR)/bench -bench bench/out $(BENCH_FLAGS)

# The origin-protection drills (issue 20; bench/README.md "make overload")
# against a one-box stack of its own: the 100:1 mix alone, beside a
# cache-busting flood and beside an id scan of missing posts, the floods at
# 3× the origin's knee (measured first by an origin sweep); reports in
# bench/out/overload. OVERLOAD_FLAGS='-overload-knee 2500' skips the sweep.
OVERLOAD_FLAGS ?=
overload: build
	bin/onebox -dir $(RUN_DIR)/bench -overload bench/out/overload $(OVERLOAD_FLAGS)

# Every fuzz target in turn, FUZZTIME each (go test -fuzz runs one at a time).
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

# The fault simulator of the read-after-write guarantee (proxy/PROTOCOL.md):
# seeds explored for SIMTIME (make test runs a fixed budget of them);
# SEED=n replays one schedule and prints it.
SIMTIME ?= 1m
SEED    ?=
simulate:
	@if [ -n "$(SEED)" ]; then \
	  $(GO) test -count=1 -run '^TestSimulate$$' ./proxy/ -v -sim.seed $(SEED); \
	else \
	  $(GO) test -count=1 -timeout 0 -run '^TestSimulate$$' ./proxy/ -v -sim.for $(SIMTIME); \
	fi
