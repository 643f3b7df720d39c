package host_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/abi"
	"github.com/m3ae-edge/m3ae-edge/wasm/host"
)

// TestLoadModelRejectsOverMaxModelBytes loads a zero-filled model one byte
// over abi.MaxModelBytes. The host must reject it by its length before it
// copies anything into the guest, whose memory limit is far smaller here.
// The buffer's pages are never touched, so the test uses no real memory.
func TestLoadModelRejectsOverMaxModelBytes(t *testing.T) {
	p := openPlugin(t, pluginWasm, host.WithPoolSize(1), host.WithMemoryLimitBytes(64<<20))
	big := make([]byte, abi.MaxModelBytes+1)
	_, err := p.LoadModel(context.Background(), big)
	if !errors.Is(err, core.ErrInvalidModelFile) {
		t.Fatalf("LoadModel(%d bytes) = %v, want core.ErrInvalidModelFile", len(big), err)
	}
	if want := "over the limit of 1073741824 (abi.MaxModelBytes)"; !strings.Contains(err.Error(), want) {
		t.Errorf("LoadModel(%d bytes) error = %q, want it to contain %q", len(big), err, want)
	}
	var guestErr *host.GuestError
	if errors.As(err, &guestErr) {
		t.Errorf("LoadModel(%d bytes) reached the guest: %v", len(big), err)
	}
}
