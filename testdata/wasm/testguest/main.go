//go:build wasip1

// Command testguest is a stand-in for the m3ae plugin that the host tests
// build with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared ./testdata/wasm/testguest
//
// It speaks the plugin ABI (docs/PLUGIN_ABI.md), but m3ae_embed reads its
// request's caption as a command and misbehaves on purpose:
//
//	probe:ADDR  tries the host's files, environment and arguments, dials
//	            the TCP address ADDR, and fails with a JSON report of what
//	            happened
//	spin      loops forever
//	exit      calls os.Exit(3)
//	panic     panics without recovering
//	grow:N    allocates and touches N bytes
//	anything  returns the embedding [1, 2, 3]
package main

import (
	"encoding/json"
	"net"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/abi"
)

func main() {}

var (
	allocations = map[uint32][]byte{}
	response    []byte
	lastError   []byte
	lastHandle  int32
	sink        []byte // keeps grow's allocation live
)

//go:wasmexport m3ae_abi_version
func abiVersion() uint32 { return abi.Version }

//go:wasmexport m3ae_alloc
func alloc(size uint32) uint32 {
	buf := make([]byte, size)
	ptr := addressOf(buf)
	allocations[ptr] = buf
	return ptr
}

//go:wasmexport m3ae_free
func free(ptr uint32) { delete(allocations, ptr) }

//go:wasmexport m3ae_load
func load(ptr, size uint32) int32 {
	lastHandle++
	return lastHandle
}

//go:wasmexport m3ae_release
func release(handle int32) uint32 { return 0 }

//go:wasmexport m3ae_config
func config(handle int32) uint64 {
	cfg, _ := core.Preset("micro")
	return respond(abi.EncodeConfig(cfg))
}

//go:wasmexport m3ae_reconstruct
func reconstruct(handle int32, ptr, size uint32) uint64 {
	return fail(abi.CodeInvalidInput, "reconstruct is not implemented by the test guest")
}

//go:wasmexport m3ae_embed
func embed(handle int32, ptr, size uint32) uint64 {
	req, err := abi.DecodeEmbedRequest(allocations[ptr][:size])
	if err != nil {
		return fail(abi.CodeInvalidRequest, err.Error())
	}
	command := req.Text
	switch {
	case strings.HasPrefix(command, "probe:"):
		report, _ := json.Marshal(probe(strings.TrimPrefix(command, "probe:")))
		return fail(abi.CodeInvalidInput, string(report))
	case command == "spin":
		for {
		}
	case command == "exit":
		os.Exit(3)
	case command == "panic":
		panic("test guest panics on request")
	case strings.HasPrefix(command, "grow:"):
		n, err := strconv.Atoi(strings.TrimPrefix(command, "grow:"))
		if err != nil {
			return fail(abi.CodeInvalidInput, err.Error())
		}
		sink = make([]byte, n)
		for i := range sink {
			sink[i] = byte(i)
		}
	}
	return respond(abi.EncodeEmbedding([]float32{1, 2, 3}))
}

//go:wasmexport m3ae_last_error
func lastErrorMessage() uint64 {
	if len(lastError) == 0 {
		return 0
	}
	return abi.Pack(addressOf(lastError), uint32(len(lastError)))
}

// probe tries every way out of the sandbox and records the outcome.
func probe(address string) map[string]any {
	report := map[string]any{
		"environ": os.Environ(),
		"args":    os.Args,
	}
	outcome := func(err error) string {
		if err != nil {
			return "error: " + err.Error()
		}
		return "ok"
	}
	data, err := os.ReadFile("/etc/hostname")
	report["readFile"] = outcome(err)
	report["readFileBytes"] = len(data)
	_, err = os.ReadDir("/")
	report["readDir"] = outcome(err)
	_, err = os.ReadDir(".")
	report["readDirDot"] = outcome(err)
	err = os.WriteFile("/tmp/m3ae-testguest", []byte("x"), 0o600)
	report["writeFile"] = outcome(err)
	conn, err := net.Dial("tcp", address)
	if conn != nil {
		conn.Close()
	}
	report["dial"] = outcome(err)
	return report
}

func respond(out []byte) uint64 {
	response = out
	return abi.Pack(addressOf(out), uint32(len(out)))
}

func fail(code abi.Code, message string) uint64 {
	lastError = []byte(message)
	return abi.PackError(code)
}

func addressOf(buf []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
}
