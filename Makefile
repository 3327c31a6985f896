# livepack: the two commands a new user runs are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
NODE_DIR := shared/emulator/testdata/node
DYNALITE_DIR := shared/store/dynamostore/testdata/node
BIN := bin/livepack
BUILD_FLAGS := -buildvcs=auto -trimpath -ldflags='-s -w'
# Each cloud artifact carries its own cloud's runtime and state backend only, and no command line.
LAMBDA_TAGS := -tags lambda,lambda.norpc
FC_TAGS := -tags fc
DEMO_SECRET := whsec_bGl2ZXBhY2stZGVtby1zZWNyZXQtMDEyMzQ1Njc4OWFi

.PHONY: demo test deps lint unit soak bench fuzz build build-LivepackFunction build-ReconcileFunction clean

## demo: the sample events through `livepack invoke`, then adopting the result with export, plan
## and apply, then probing what players get before and after the ingest restarts, and `livepack
## status` tracking which streams restarted, against an emulator; V=1 prints the full JSON documents
V ?= 0
demo: $(BIN)
	@tmp=$$(mktemp -d); trap 'kill $$emu 2>/dev/null || true; rm -rf "$$tmp"' EXIT; \
	$(BIN) emulator -addr 127.0.0.1:0 >"$$tmp/url" 2>"$$tmp/emulator.log" & emu=$$!; \
	for i in $$(seq 100); do [ "$$(wc -l <"$$tmp/url")" -ge 2 ] && break; sleep 0.05; done; \
	export LIVEPACK_ENDPOINT=$$(sed -n 1p "$$tmp/url") LIVEPACK_STATE="file:$$tmp/state.db" \
	  LIVEPACK_POLICIES=events/default-policies.json LIVEPACK_WEBHOOK_SECRET=$(DEMO_SECRET) LIVEPACK_NOTIFY=stdout; \
	fmt=text; [ "$(V)" = 1 ] && fmt=json; \
	step() { [ -z "$$1" ] || printf '\n\033[1m== %s\033[0m\n' "$$1"; printf '$$ livepack %s\n' "$${*:2}"; \
	  $(BIN) "$${@:2}" -o $$fmt 2>>"$$tmp/livepack.log" || echo "(exit $$?)"; }; \
	echo "Live OpenAPI emulator at $$LIVEPACK_ENDPOINT; $$(sed -n 2p "$$tmp/url")"; \
	step "A new play domain gets the default packaging (EventBridge: AddLiveDomain)" invoke -event events/domain-created.json; \
	if command -v curl >/dev/null; then \
	  start='{"action":"start","DomainName":"play.example.com","AppName":"sports","StreamName":"highlights"}'; \
	  printf '\n\033[1m== %s\033[0m\n$$ curl -d %s %s\n' "A second encoder starts pushing sports/highlights" "'$$start'" "$$LIVEPACK_ENDPOINT/_emulator/streams"; \
	  curl -sf -d "$$start" "$$LIVEPACK_ENDPOINT/_emulator/streams" >/dev/null; sleep 1; fi; \
	step "The CMS posts a stream policy: applied, with its restart-ingest notice" invoke -sign -event events/fc-http-webhook.json; \
	step "The same webhook delivered again: a replay, no API call, no notice" invoke -sign -event events/fc-http-webhook.json; \
	step "An invalid policy is refused with the API's error codes, before any call" invoke -event events/policies-invalid.json; \
	step "A new ingest domain is skipped" invoke -event events/domain-created-ingest.json; \
	step "The scheduled reconcile reports drift from the default policies" invoke -event events/fc-timer-report.json; \
	printf '\n\033[1m== %s\033[0m\n$$ livepack export -domain play.example.com -out adopt.json\n' "Adopting what is there: every config as a policy document"; \
	$(BIN) export -domain play.example.com -out "$$tmp/adopt.json" 2>>"$$tmp/livepack.log"; \
	if [ "$(V)" = 1 ]; then cat "$$tmp/adopt.json"; else n=$$(grep -c '"DomainName"' "$$tmp/adopt.json"); echo "$$n polic$$([ "$$n" = 1 ] && echo y || echo ies) exported"; fi; \
	step "Its plan shows no change" plan -f "$$tmp/adopt.json" -prune; \
	sed '0,/"SegmentNum": 3/s//"SegmentNum": 4/' "$$tmp/adopt.json" >"$$tmp/edited.json"; \
	step "One edit (SegmentNum 3 -> 4 in the first policy), planned, then applied" plan -f "$$tmp/edited.json"; \
	step "" apply -f "$$tmp/edited.json"; \
	probe="probe -domain play.example.com -app sports -stream final"; \
	step "What players get: the old packaging until the ingest restarts (a mismatch)" $$probe; \
	if command -v curl >/dev/null; then \
	  restart='{"action":"restart","DomainName":"play.example.com","AppName":"sports","StreamName":"final"}'; \
	  printf '\n\033[1m== %s\033[0m\n$$ curl -d %s %s\n' "The encoder restarts its push; players get the new packaging" "'$$restart'" "$$LIVEPACK_ENDPOINT/_emulator/streams"; \
	  curl -sf -d "$$restart" "$$LIVEPACK_ENDPOINT/_emulator/streams" >/dev/null; \
	  step "" $$probe; \
	  step "Restart tracking: the change's notice named two streams; one restarted, one still awaits" status -domain play.example.com; fi; \
	if command -v curl >/dev/null; then printf '\nLive API calls the emulator served in all: %s\n' \
	  "$$(curl -s "$$LIVEPACK_ENDPOINT/_emulator/calls" | { grep -o '"action"' || true; } | wc -l)"; fi

$(BIN): $(shell find functions shared -name '*.go' -not -name '*_test.go') go.mod go.sum
	@mkdir -p bin
	$(GO) build -buildvcs=auto -o $@ ./functions/livepack

## test: everything CI runs; installs what the tests need first
test: deps lint unit

## deps: a C compiler (for -race) and redis-server from Debian, cfn-lint from pip, from npm the Node
## SDK used by the conformance test and dynalite (an in-memory DynamoDB) for the DynamoDB store's tests
deps:
	@for p in gcc redis-server; do command -v $$p >/dev/null || { echo "installing $$p"; $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p >/dev/null; }; done
	@command -v cfn-lint >/dev/null || { echo "installing cfn-lint"; pip install --quiet cfn-lint; }
	@[ -d $(NODE_DIR)/node_modules ] || npm ci --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error
	@[ -d $(DYNALITE_DIR)/node_modules ] || npm ci --prefix $(DYNALITE_DIR) --no-audit --no-fund --loglevel=error
	@$(GO) mod download

lint:
	@out=$$(gofmt -l functions shared); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) vet ./...
	$(GO) vet $(LAMBDA_TAGS) ./...
	$(GO) vet $(FC_TAGS) ./...
	$(GO) tool staticcheck ./...

unit:
	LIVEPACK_REQUIRE_REDIS=1 LIVEPACK_REQUIRE_NODE=1 LIVEPACK_REQUIRE_DYNALITE=1 LIVEPACK_REQUIRE_CFNLINT=1 $(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -count=1 $(LAMBDA_TAGS) ./shared/store/stores/ ./shared/host/
	$(GO) test -count=1 $(FC_TAGS) ./shared/store/stores/ ./shared/host/

## soak: the fault campaign, long (its short run is part of `make unit`); one line per scenario
soak:
	LIVEPACK_SOAK=1 LIVEPACK_REQUIRE_REDIS=1 $(GO) test -race -count=1 -timeout 120m -v ./shared/campaign/ | \
	  { grep -E '^(campaign |\s+\S+_test\.go:|--- FAIL|FAIL|ok)' || true; }

## bench: every benchmark, one run
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./... >/dev/null
	@out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	$(GO) test -run '^$$' -bench . -benchmem ./... | tee "$$out"; \
	printf '\nRatios measured in this run (livepack ÷ hello-world aws-lambda-go):\n'; \
	awk '$$1 ~ /^Benchmark(ColdStart|Invoke|StartToMain)\/(hello|livepack)/ { split($$1, p, "/"); sub(/-[0-9]+$$/, "", p[2]); t[p[1] "/" p[2]] = $$3 } \
	  END { for (b in t) if (b ~ /\/livepack$$/) { base = b; sub(/livepack$$/, "hello", base); name = b; sub(/\/livepack$$/, "", name); \
	    if (t[base] > 0) printf "  %-22s %.2fx (%.1f ms vs %.1f ms)\n", name, t[b] / t[base], t[b] / 1e6, t[base] / 1e6 } }' "$$out" | sort; \
	awk '$$1 ~ /^BenchmarkColdStart\/(hello|livepack)/ { who = ($$1 ~ /livepack/) ? "livepack" : "hello"; for (i = 3; i < NF; i += 2) m[who, $$(i + 1)] = $$i } \
	  END { for (k = 1; k <= 2; k++) { u = (k == 1) ? "init-ms" : "first-invoke-ms"; l = (k == 1) ? "ColdStart init" : "ColdStart init→answer"; \
	    if (m["hello", u] > 0) printf "  %-22s %.2fx (%.1f ms vs %.1f ms, as the RIE reports them)\n", l, m["livepack", u] / m["hello", u], m["livepack", u], m["hello", u] } }' "$$out"; \
	printf '\nRatios measured in this run (livepack ÷ a naive per-policy script on the official Node SDK):\n'; \
	awk '$$1 ~ /^Benchmark(Document|Sustained)VsNode/ { for (i = 3; i < NF; i += 2) m[$$(i + 1)] = $$i } \
	  END { if ("wall-ratio" in m) printf "  %-22s wall %.2fx (%.0f ms vs %.0f ms), calls %.2fx (%d vs %d)\n", "100 policies", m["wall-ratio"], m["livepack-ms"], m["node-ms"], m["calls-ratio"], m["livepack-calls"], m["node-calls"]; \
	    if ("throughput-ratio" in m) printf "  %-22s %.2fx (%.1f vs %.1f policies per quota window), throttles %d vs %d\n", "sustained throughput", m["throughput-ratio"], m["livepack-policies/window"], m["node-policies/window"], m["livepack-throttles"], m["node-throttles"]; \
	    if (!("wall-ratio" in m) && !("throughput-ratio" in m)) print "  (skipped: node or its npm packages missing; make deps installs them)" }' "$$out"; \
	printf '\nLatency measured in this run (one document through a proxy adding 50 ms each way):\n'; \
	awk '$$1 ~ /^BenchmarkDocumentLatency/ { for (i = 3; i < NF; i += 2) m[$$(i + 1)] = $$i } \
	  END { if ("ms/doc" in m) printf "  %-22s %.0f ms per document, %d calls (minimum %d)\n", "document latency", m["ms/doc"], m["calls/doc"], m["min-calls"] }' "$$out"; \
	printf '\nStore operations per event and the latency each backend adds over memory, measured in this run (BenchmarkStoreOps):\n'; \
	awk '$$1 ~ /^BenchmarkStoreOps\/[^\/]+\/[^\/]+$$/ { split($$1, p, "/"); sub(/-[0-9]+$$/, "", p[3]); k = p[2] "/" p[3]; seen[k] = 1; \
	    for (i = 3; i < NF; i += 2) m[k, $$(i + 1)] = $$i } \
	  END { nw = split("first replay doc10", w, " "); nb = split("memory file redis dynamodb tablestore", bk, " "); \
	    name["first"] = "first delivery"; name["replay"] = "replay"; name["doc10"] = "10 policies"; \
	    for (i = 1; i <= nw; i++) for (j = 1; j <= nb; j++) { k = w[i] "/" bk[j]; if (!(k in seen)) continue; \
	      printf "  %-15s %-11s %5.1f reads %5.1f writes %9.2f ms", name[w[i]], bk[j], m[k, "reads/event"], m[k, "writes/event"], m[k, "ns/event"] / 1e6; \
	      if ((k, "added-ms/event") in m) printf "  %+8.2f ms over memory", m[k, "added-ms/event"]; print "" } \
	    if (("doc10/dynamodb", "x-redis") in m) printf "  %-15s DynamoDB ÷ Redis %.2fx (%.1f ms vs %.1f ms)\n", "10 policies", m["doc10/dynamodb", "x-redis"], \
	      m["doc10/dynamodb", "ns/event"] / 1e6, m["doc10/redis", "ns/event"] / 1e6 }' "$$out"

## fuzz: each fuzz target for a short while (FUZZTIME=30s)
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "$$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; done; done

## build: the cloud artifacts (Lambda arm64 with DynamoDB, FC amd64 with Tablestore)
build:
	@mkdir -p dist/lambda dist/fc
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) $(LAMBDA_TAGS) -o dist/lambda/bootstrap ./functions/livepack
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build $(BUILD_FLAGS) $(FC_TAGS) -o dist/fc/bootstrap ./functions/livepack

# sam build (Metadata BuildMethod: makefile) calls these with ARTIFACTS_DIR set: the webhook's
# function and the scheduled reconcile's run the same binary.
build-LivepackFunction build-ReconcileFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) $(LAMBDA_TAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/livepack

clean:
	rm -rf bin dist
