package core

import "testing"

// TestNewModelKeepsInt8Weights checks that an int8 model binds the file's
// int8 tensors in place instead of dequantizing them.
func TestNewModelKeepsInt8Weights(t *testing.T) {
	mf := int8ModelFile(microConfig(t), 5)
	m, err := NewModel(mf)
	if err != nil {
		t.Fatalf("NewModel(int8 micro) error: %v", err)
	}
	qkv := m.w.encoder.blocks[0].qkv
	if qkv.kernel != nil {
		t.Errorf("NewModel(int8 micro): qkv kernel has %d float32 values, want none", len(qkv.kernel))
	}
	if stored := mf.Tensors[qkvKernel].I8; len(qkv.q) != len(stored) || &qkv.q[0] != &stored[0] {
		t.Errorf("NewModel(int8 micro): qkv int8 values do not alias the file's tensor %q", qkvKernel)
	}
	table := m.w.textEmbedding
	if table.values != nil || &table.q[0] != &mf.Tensors["text_embedding.embedding"].I8[0] {
		t.Errorf("NewModel(int8 micro): text embedding is not the file's int8 table")
	}
	if want := 4 * 4 * 32; len(m.s.tile) != want {
		t.Errorf("NewModel(int8 micro): tile has %d values, want %d (4 columns of the fc2 input 4*32)", len(m.s.tile), want)
	}
}

func TestForwardAllocationsInt8(t *testing.T) {
	cfg := microConfig(t)
	m, err := NewModel(int8ModelFile(cfg, 7))
	if err != nil {
		t.Fatalf("NewModel(int8 micro) error: %v", err)
	}
	c := oracleCases(t, cfg, 1)[0]
	embedAllocs := testing.AllocsPerRun(5, func() {
		if _, err := m.Embed(c.in, PoolMean); err != nil {
			t.Fatal(err)
		}
	})
	if embedAllocs != 1 {
		t.Errorf("Embed(int8) allocations = %v, want 1 (the result)", embedAllocs)
	}
	reconstructAllocs := testing.AllocsPerRun(5, func() {
		if _, err := m.Reconstruct(c.in, c.masks); err != nil {
			t.Fatal(err)
		}
	})
	if reconstructAllocs > maxReconstructAllocs {
		t.Errorf("Reconstruct(int8) allocations = %v, want at most %d (the outputs)", reconstructAllocs, maxReconstructAllocs)
	}
}
