# Easel: `make dev` runs the whole product, `make test` runs every test.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/.bin
export PATH := $(BIN):$(PATH)

# Tool versions, shared with the Go code that launches them.
include internal/devstack/tools.env

.PHONY: dev test bench lint build web lighthouse tools services clean

## dev: start Postgres and Redis if needed, then run API, workers, embedded Temporal + UI and local S3
dev: services tools web
	$(GO) run ./cmd/easel dev

## test: every test against real Postgres, Redis, versitygw and an embedded Temporal server
test: services tools web
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

## bench: the benchmarks recorded in docs/benchmarks.md
bench: services tools
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./...

## lint: formatting, vet and staticcheck
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## build: the easel binary into bin/
build: web
	$(GO) build -o bin/easel ./cmd/easel

## web: the web app (web/, Node >= 20.19) into web/dist/app, which the easel binary embeds
web: web/node_modules/.package-lock.json
	cd web && npm run build

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci

## lighthouse: Lighthouse scores of the sign-in, Generate and Gallery pages, against a real
## easel dev in Debian's chromium (docs/benchmarks.md); reports in web/test-results/lighthouse
lighthouse: services tools build web/lighthouse/node_modules/.package-lock.json
	cd web/lighthouse && EASEL_BIN=$(CURDIR)/bin/easel CHROME_PATH=$${CHROME_PATH:-/usr/bin/chromium} node audit.mjs

# Lighthouse and puppeteer-core (about 190 MB) have their own package, so
# the app's `npm ci` stays small.
web/lighthouse/node_modules/.package-lock.json: web/lighthouse/package-lock.json
	cd web/lighthouse && npm ci --no-audit --no-fund

tools: $(BIN)/versitygw $(BIN)/stripe-mock

$(BIN)/versitygw:
	GOBIN=$(BIN) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

# stripe-mock answers the Stripe API from its OpenAPI spec for the billing tests
# (testenv.StripeMock).
$(BIN)/stripe-mock:
	GOBIN=$(BIN) $(GO) install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)

services:
	./internal/devstack/services.sh

clean:
	rm -rf bin .state web/dist/app web/node_modules web/lighthouse/node_modules
