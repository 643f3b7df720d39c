package core

import "testing"

// TestNewModelKeepsInt8Weights checks that an int8 model packs the file's
// int8 kernels as int8 and binds its int8 embedding table in place, instead
// of dequantizing them.
func TestNewModelKeepsInt8Weights(t *testing.T) {
	cfg := microConfig(t)
	mf := int8ModelFile(cfg, 5)
	m, err := NewModel(mf)
	if err != nil {
		t.Fatalf("NewModel(int8 micro) error: %v", err)
	}
	qkv := m.w.encoder.blocks[0].qkv
	if qkv.panels != nil {
		t.Errorf("NewModel(int8 micro): qkv kernel has %d float32 panel rows, want none", len(qkv.panels))
	}
	stored := mf.Tensors[qkvKernel].I8
	in, out := cfg.EmbedDim, 3*cfg.EmbedDim
	if want := numPanels(out) * in * panelWidth; len(qkv.q) != want {
		t.Fatalf("NewModel(int8 micro): qkv has %d int8 panel values, want %d", len(qkv.q), want)
	}
	for k := range in {
		for j := range out {
			if got, want := qkv.q[((j/panelWidth)*in+k)*panelWidth+j%panelWidth], stored[k*out+j]; got != want {
				t.Fatalf("NewModel(int8 micro): packed qkv (%d, %d) = %d, want the file's %d", k, j, got, want)
			}
		}
	}
	table := m.w.textEmbedding
	if table.values != nil || &table.q[0] != &mf.Tensors["text_embedding.embedding"].I8[0] {
		t.Errorf("NewModel(int8 micro): text embedding is not the file's int8 table")
	}

	c := oracleCases(t, cfg, 1)[0]
	if _, err := m.Embed(c.in, PoolCLS); err != nil {
		t.Fatal(err)
	}
	if want := 2 * 4 * cfg.EmbedDim; len(m.s.matMul.tiles) != want {
		t.Errorf("int8 micro Embed: tiles have %d panel rows, want %d (two panels of the fc2 input 4*32)", len(m.s.matMul.tiles), want)
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
