# edgecache: make run · make test · make build · make lint · make bench
GO      ?= go
BINS    := origin proxy bench
# The one-box stack keeps its data here (git-ignored).
RUN_DIR ?= .run

.PHONY: build run test lint bench deps fuzz

build:
	$(GO) build -o bin/ ./origin/cmd/origin ./proxy/cmd/proxy ./bench/cmd/bench

deps:
	@./deploy/install-deps.sh

run: deps build
	$(GO) run ./deploy/cmd/onebox -dir $(RUN_DIR)

test: deps lint
	$(GO) test -race -count=1 -timeout 12m ./...

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
