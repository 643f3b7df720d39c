# Native builds use GOEXPERIMENT=simd so GoMLX's matmul runs its AVX2 and
# AVX-512 kernels; without it everything still builds, only slower.
export GOEXPERIMENT ?= simd
# GoMLX's parallel scheduler hung on 2-core machines; the sequential one
# did not and was no slower there.
export GOMLX_BACKEND ?= go:ops_sequential

GO ?= go
# FUZZTIME bounds each fuzz target's run in `make fuzz`.
FUZZTIME ?= 10s
FUZZ_TARGETS := FuzzReadModelFile FuzzTokenizer FuzzDecodeImage

.PHONY: all build test unit fuzz vet bench

all: build

build:
	$(GO) build ./...

## test: vet, unit tests (core against live PyTorch where installed), short fuzz runs
test: vet unit fuzz

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...

fuzz:
	@for target in $(FUZZ_TARGETS); do \
		echo "fuzz $$target for $(FUZZTIME)"; \
		$(GO) test ./core -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

## bench: Go benchmarks of the core
bench:
	$(GO) test ./core -run '^$$' -bench . -benchmem
