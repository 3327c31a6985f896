# livepack: the two commands a new user runs are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
NODE_DIR := shared/emulator/testdata/node
BIN := bin/livepack
BUILD_FLAGS := -tags lambda.norpc -trimpath -ldflags='-s -w'
DEMO_SECRET := whsec_bGl2ZXBhY2stZGVtby1zZWNyZXQtMDEyMzQ1Njc4OWFi

.PHONY: demo test deps lint unit bench fuzz build build-LivepackFunction clean

## demo: run the sample events through `livepack invoke` against the built-in emulator
demo: $(BIN)
	@tmp=$$(mktemp -d); trap 'kill $$emu 2>/dev/null || true; rm -rf "$$tmp"' EXIT; \
	$(BIN) emulator -addr 127.0.0.1:0 >"$$tmp/url" 2>"$$tmp/emulator.log" & emu=$$!; \
	for i in $$(seq 100); do [ -s "$$tmp/url" ] && break; sleep 0.05; done; \
	export LIVEPACK_ENDPOINT=$$(head -1 "$$tmp/url") LIVEPACK_STATE="file:$$tmp/state.db" \
	  LIVEPACK_POLICIES=events/default-policies.json LIVEPACK_WEBHOOK_SECRET=$(DEMO_SECRET) LIVEPACK_NOTIFY=stdout; \
	calls() { if command -v curl >/dev/null; then curl -s "$$LIVEPACK_ENDPOINT/_emulator/calls" | { grep -o '"action"' || true; } | wc -l; else echo 0; fi; }; \
	step() { printf '\n\033[1m== %s\033[0m\n$$ livepack invoke %s\n' "$$1" "$${*:2}"; before=$$(calls); \
	  $(BIN) invoke "$${@:2}" 2>>"$$tmp/livepack.log" || echo "(exit $$?)"; \
	  printf '\033[2m(%s Live API calls)\033[0m\n' "$$(( $$(calls) - before ))"; }; \
	echo "Live OpenAPI emulator at $$LIVEPACK_ENDPOINT (seed: play.example.com, push.example.com; online stream sports/final)"; \
	step "A new play domain gets the default packaging (EventBridge: AddLiveDomain)" -event events/domain-created.json; \
	step "The CMS posts a stream policy: applied, with its restart-ingest notice" -sign -event events/fc-http-webhook.json; \
	step "The same webhook delivered again: a replay, no API call, no notice" -sign -event events/fc-http-webhook.json; \
	step "An invalid policy is refused with the API's error codes, before any call" -event events/policies-invalid.json; \
	step "A new ingest domain is skipped" -event events/domain-created-ingest.json; \
	step "The scheduled reconcile reports drift from the default policies" -event events/fc-timer-report.json; \
	printf '\nLive API calls the emulator served in all: %s\n' "$$(calls)"

$(BIN): $(shell find functions shared -name '*.go' -not -name '*_test.go') go.mod go.sum
	@mkdir -p bin
	$(GO) build -o $@ ./functions/livepack

## test: everything CI runs; installs what the tests need first
test: deps lint unit

## deps: redis-server (Debian) and the Node SDK used by the conformance test
deps:
	@command -v redis-server >/dev/null || { echo "installing redis-server"; $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@[ -d $(NODE_DIR)/node_modules ] || npm ci --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error
	@$(GO) mod download

lint:
	@out=$$(gofmt -l functions shared); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

unit:
	LIVEPACK_REQUIRE_REDIS=1 LIVEPACK_REQUIRE_NODE=1 LIVEPACK_REQUIRE_CFNLINT=1 $(GO) test -race -count=1 -timeout 15m ./...

## bench: every benchmark, one run
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./... >/dev/null
	$(GO) test -run '^$$' -bench . -benchmem ./...

## fuzz: each fuzz target for a short while (FUZZTIME=30s)
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "$$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; done; done

## build: the cloud binaries (Lambda arm64, FC amd64)
build:
	@mkdir -p dist/lambda dist/fc
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) -o dist/lambda/bootstrap ./functions/livepack
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build $(BUILD_FLAGS) -o dist/fc/bootstrap ./functions/livepack

# sam build (Metadata BuildMethod: makefile) calls this with ARTIFACTS_DIR set.
build-LivepackFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/livepack

clean:
	rm -rf bin dist
