# Native builds use GOEXPERIMENT=simd so GoMLX's matmul runs its AVX2 and
# AVX-512 kernels; without it everything still builds, only slower.
export GOEXPERIMENT ?= simd
# GoMLX's parallel scheduler hung on 2-core machines; the sequential one
# did not and was no slower there.
export GOMLX_BACKEND ?= go:ops_sequential

GO ?= go
# FUZZTIME bounds each fuzz target's run in `make fuzz`.
FUZZTIME ?= 10s
# Each entry is PACKAGE:TARGET.
FUZZ_TARGETS := ./core:FuzzReadModelFile ./core:FuzzTokenizer ./core:FuzzDecodeImage \
	./core:FuzzImagePipeline \
	./wasm/abi:FuzzDecodeRequests ./wasm/abi:FuzzDecodeResponses ./export:FuzzReadPickle \
	./wasm/host:FuzzPluginRequest \
	./native/data:FuzzOpenCaptionsJSONL ./native/data:FuzzOpenCaptionsCSV ./native/data:FuzzOpenShards

.PHONY: all build test unit unit-wasm fuzz vet bench wasm bench-wasm

all: build

build:
	$(GO) build ./...

## test: vet, unit tests (core against live PyTorch where installed), the
## core's tests in WebAssembly, short fuzz runs
test: vet unit unit-wasm fuzz

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...

## unit-wasm: the core's tests built for wasip1 and run in wazero, once
## with scalar kernels (the go on PATH) and once with the SIMD128 kernels
## ($(SIMD_GOTOOLCHAIN) with GOEXPERIMENT=simd), so both wasm flavors'
## kernels are checked against the scalar ones directly. build/wazero is
## wazero's command at the version go.mod requires. A wasip1 program cannot
## start processes, so the PyTorch oracle test skips there: `unit` runs it.
WASIP1_TEST_ENV = PATH="$(CURDIR)/build:$$PATH" GOWASIRUNTIME=wazero M3AE_REQUIRE_TORCH= GOOS=wasip1 GOARCH=wasm
unit-wasm: build/wazero
	$(WASIP1_TEST_ENV) $(SCALAR_WASM_ENV) \
		$(GO) test -count=1 -exec "$$($(SCALAR_WASM_ENV) $(GO) env GOROOT)/lib/wasm/go_wasip1_wasm_exec" ./core
	$(WASIP1_TEST_ENV) $(SIMD_WASM_ENV) \
		$(GO) test -count=1 -exec "$$($(SIMD_WASM_ENV) $(GO) env GOROOT)/lib/wasm/go_wasip1_wasm_exec" ./core

build/wazero: go.mod go.sum
	mkdir -p build
	GOEXPERIMENT= $(GO) build -o $@ github.com/tetratelabs/wazero/cmd/wazero

fuzz:
	@for entry in $(FUZZ_TARGETS); do \
		pkg=$${entry%%:*}; target=$${entry##*:}; \
		echo "fuzz $$pkg $$target for $(FUZZTIME)"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

## model: build the emoji data, train the default model, export it, quantize
## it to int8 with a fidelity report on the test split and copy it into
## defaultmodel/, where the CLI and the browser demo embed it. A stopped run
## resumes from its newest checkpoint.
MODEL_RUN ?= runs/default
MODEL_STEPS ?= 600
MODEL_SEED ?= 1
MODEL_TRAIN_FLAGS = --preset mini --batch 64 --steps $(MODEL_STEPS) --lr 1e-3 \
	--warmup-steps 100 --grad-clip 1 --seed $(MODEL_SEED) \
	--captions data/emoji/train.jsonl --eval-captions data/emoji/test.jsonl \
	--checkpoint-every 50 --eval-every 200 --keep 2
.PHONY: model
model:
	$(GO) build -o bin/m3ae-edge ./cmd/m3ae-edge
	test -f data/emoji/train.jsonl || bin/m3ae-edge data emoji --out data/emoji
	if [ -f $(MODEL_RUN)/run.json ]; then \
		bin/m3ae-edge train --out $(MODEL_RUN) --resume; \
	else \
		bin/m3ae-edge train --out $(MODEL_RUN) $(MODEL_TRAIN_FLAGS); \
	fi
	bin/m3ae-edge export --checkpoint $(MODEL_RUN) --out $(MODEL_RUN)/model.safetensors
	bin/m3ae-edge quantize --in $(MODEL_RUN)/model.safetensors \
		--out $(MODEL_RUN)/model.int8.safetensors \
		--captions data/emoji/test.jsonl --report $(MODEL_RUN)/quantize.json
	mkdir -p defaultmodel
	cp $(MODEL_RUN)/model.int8.safetensors defaultmodel/emoji-mini.int8.safetensors

## model-card: measure the default model for docs/MODEL.md on the emoji
## test split: reconstruction PSNR and masked-token accuracy with a grid of
## reconstructions, the linear probe (CLS and mean pooling) of the model and
## of a randomly initialised one of the same architecture, and the run's loss curves and
## int8 fidelity report. Needs data/emoji and the run folder of make model.
MODEL_FILE ?= defaultmodel/emoji-mini.int8.safetensors
.PHONY: model-card
model-card:
	$(GO) build -o bin/m3ae-edge ./cmd/m3ae-edge
	mkdir -p docs/model
	bin/m3ae-edge evaluate --model $(MODEL_FILE) \
		--captions data/emoji/test.jsonl --train-captions data/emoji/train.jsonl \
		--json docs/model/evaluate.json --grid docs/model/reconstructions.png \
		> docs/model/evaluate.txt
	bin/m3ae-edge probe --model $(MODEL_FILE) \
		--train data/emoji/train.jsonl --test data/emoji/test.jsonl \
		--json docs/model/probe.json > docs/model/probe.txt
	bin/m3ae-edge probe --model $(MODEL_FILE) --random-init \
		--train data/emoji/train.jsonl --test data/emoji/test.jsonl \
		--json docs/model/probe-random.json > docs/model/probe-random.txt
	bin/m3ae-edge probe --model $(MODEL_FILE) --pooling mean \
		--train data/emoji/train.jsonl --test data/emoji/test.jsonl \
		--json docs/model/probe-mean.json > docs/model/probe-mean.txt
	bin/m3ae-edge probe --model $(MODEL_FILE) --random-init --pooling mean \
		--train data/emoji/train.jsonl --test data/emoji/test.jsonl \
		--json docs/model/probe-random-mean.json > docs/model/probe-random-mean.txt
	cp $(MODEL_RUN)/loss.png $(MODEL_RUN)/quantize.json docs/model/

## build-xla: compile everything with GoMLX's XLA backend registered
## (needs cgo and a C compiler; compiles only, downloads no plugin)
.PHONY: build-xla
build-xla:
	CGO_ENABLED=1 $(GO) build -tags xla ./...

## bench: install the peers (.ci/peers: PyTorch, Chromium, ONNX Runtime),
## build the wasm modules and run every group of cmd/m3ae-bench, which
## rewrites the generated sections of docs/BENCHMARKS.md.
bench: wasm
	.ci/peers
	$(GO) run ./cmd/m3ae-bench -browser build/m3ae.wasm -plugin build/m3ae-plugin.wasm -browser-simd build/m3ae-simd.wasm -plugin-simd build/m3ae-plugin-simd.wasm

## wasm: the browser module (GOOS=js) and the wazero plugin (GOOS=wasip1
## reactor) in two flavors with the same outputs: build/m3ae.wasm and
## build/m3ae-plugin.wasm with scalar kernels (the go on PATH, Go 1.26), and
## build/m3ae-simd.wasm and build/m3ae-plugin-simd.wasm with WebAssembly
## SIMD kernels ($(SIMD_GOTOOLCHAIN) with GOEXPERIMENT=simd, which the go
## command fetches from the module proxy on first use), plus the
## wasm_exec.js that both browser modules need. The name sections stay in,
## so traps show function names.
SIMD_GOTOOLCHAIN ?= go1.27.3
SCALAR_WASM_ENV = GOTOOLCHAIN=local GOEXPERIMENT=
SIMD_WASM_ENV = GOTOOLCHAIN=$(SIMD_GOTOOLCHAIN) GOEXPERIMENT=simd
wasm:
	mkdir -p build
	$(SCALAR_WASM_ENV) GOOS=js GOARCH=wasm $(GO) build -trimpath -o build/m3ae.wasm ./wasm/browser
	$(SCALAR_WASM_ENV) GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildmode=c-shared -o build/m3ae-plugin.wasm ./wasm/plugin
	$(SIMD_WASM_ENV) GOOS=js GOARCH=wasm $(GO) build -trimpath -o build/m3ae-simd.wasm ./wasm/browser
	$(SIMD_WASM_ENV) GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildmode=c-shared -o build/m3ae-plugin-simd.wasm ./wasm/plugin
	$(MAKE) --no-print-directory wasm-exec-js WASM_EXEC_DIR=build

# wasm-exec-js copies the go on PATH's wasm_exec.js into $(WASM_EXEC_DIR)
# and fails when $(SIMD_GOTOOLCHAIN) ships a different one, because the page
# loads one wasm_exec.js for either module.
.PHONY: wasm-exec-js
wasm-exec-js:
	cp "$$($(SCALAR_WASM_ENV) $(GO) env GOROOT)/lib/wasm/wasm_exec.js" $(WASM_EXEC_DIR)/wasm_exec.js
	@cmp -s $(WASM_EXEC_DIR)/wasm_exec.js "$$($(SIMD_WASM_ENV) $(GO) env GOROOT)/lib/wasm/wasm_exec.js" || \
		{ echo "wasm_exec.js of $(SIMD_GOTOOLCHAIN) differs from the one of $$($(SCALAR_WASM_ENV) $(GO) env GOVERSION): serve each module with its own" >&2; exit 1; }

## bench-wasm: the wasm group of cmd/m3ae-bench alone: module sizes, plugin
## start-up, and embed and reconstruct latency natively, in wazero and in
## headless Chromium (micro and tiny). It rewrites its section of
## docs/BENCHMARKS.md and leaves the Chromium rows out without Chromium.
bench-wasm: wasm
	$(GO) run ./cmd/m3ae-bench -groups wasm -browser build/m3ae.wasm -plugin build/m3ae-plugin.wasm -browser-simd build/m3ae-simd.wasm -plugin-simd build/m3ae-plugin-simd.wasm

## demo: build both flavors of the browser module (see wasm) and their
## wasm_exec.js into www/static, build bin/m3ae-edge with the page, the
## modules and the default model embedded, and serve the demo at
## http://$(DEMO_ADDR)/ until Ctrl-C. The page loads m3ae-simd.wasm where
## the browser supports WebAssembly SIMD and m3ae.wasm elsewhere.
DEMO_ADDR ?= 127.0.0.1:8080
.PHONY: demo
demo:
	$(SCALAR_WASM_ENV) GOOS=js GOARCH=wasm $(GO) build -trimpath -o www/static/m3ae.wasm ./wasm/browser
	$(SIMD_WASM_ENV) GOOS=js GOARCH=wasm $(GO) build -trimpath -o www/static/m3ae-simd.wasm ./wasm/browser
	$(MAKE) --no-print-directory wasm-exec-js WASM_EXEC_DIR=www/static
	$(GO) build -o bin/m3ae-edge ./cmd/m3ae-edge
	bin/m3ae-edge serve --addr $(DEMO_ADDR)

## screenshot: rewrite docs/demo.png, the README's picture of the demo, from
## the browser test, which builds its own module and serves the default
## model. It needs Chromium (Debian's chromium) and fails without it.
.PHONY: screenshot
screenshot:
	M3AE_REQUIRE_BROWSER=1 M3AE_SCREENSHOT=$(CURDIR)/docs/demo.png \
		$(GO) test -count=1 -run '^TestServeDemoInBrowser$$' ./cmd/m3ae-edge
