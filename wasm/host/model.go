package host

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/abi"
)

// Request and result types, shared with the guest through package abi.
type (
	// EmbedRequest is an image, a caption or both, and the pooling.
	EmbedRequest = abi.EmbedRequest
	// ReconstructRequest is an image, a caption or both, and the masking
	// options.
	ReconstructRequest = abi.ReconstructRequest
	// Image is encoded PNG or JPEG bytes, or straight-alpha RGBA pixels.
	Image = abi.Image
	// Reconstruction is the images, masks and word predictions of a
	// masked reconstruction.
	Reconstruction = abi.Reconstruction
)

// Model is a model file loaded into a Plugin. It is safe for concurrent
// use: each call runs on a free instance of the pool.
type Model struct {
	plugin *Plugin
	// data is a copy of the model file, loaded into each instance the
	// first time that instance runs a call for this model.
	data   []byte
	config core.Config
	closed atomic.Bool
}

// LoadModel copies a model file into the Plugin and loads it into one
// instance, which validates it. Other instances load their own copy the
// first time they run a call for the model, so that call takes longer.
// Each instance holds a full copy of the model's weights.
//
// A corrupt file returns a *GuestError that matches
// core.ErrInvalidModelFile. The caller may reuse data after the call.
func (p *Plugin) LoadModel(ctx context.Context, data []byte) (*Model, error) {
	if len(data) > abi.MaxModelBytes {
		return nil, fmt.Errorf("m3ae plugin: load: %w: model file is %d bytes, over the limit of %d (abi.MaxModelBytes)",
			core.ErrInvalidModelFile, len(data), abi.MaxModelBytes)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("m3ae plugin: load: %w: model file is empty", core.ErrInvalidModelFile)
	}
	m := &Model{plugin: p, data: bytes.Clone(data)}
	err := p.run(ctx, m, "load", func(ctx context.Context, inst *instance, handle int32) error {
		return inst.configOf(ctx, handle, func(response []byte) error {
			cfg, err := abi.DecodeConfig(response)
			m.config = cfg
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Config returns the model's architecture.
func (m *Model) Config() core.Config { return m.config }

// Embed returns the representation of req's image, caption or both, as
// core.Pipeline.Embed computes it. The returned [D] slice is the caller's.
func (m *Model) Embed(ctx context.Context, req EmbedRequest) ([]float32, error) {
	request, err := abi.EncodeEmbedRequest(req)
	if err != nil {
		return nil, fmt.Errorf("m3ae plugin: embed: %w", err)
	}
	var embedding []float32
	err = m.plugin.run(ctx, m, "embed", func(ctx context.Context, inst *instance, handle int32) error {
		return inst.infer(ctx, "embed", inst.embed, handle, request, func(response []byte) (err error) {
			embedding, err = abi.DecodeEmbedding(response)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return embedding, nil
}

// Reconstruct hides part of req's image and caption and predicts what was
// hidden, as core.Pipeline.Reconstruct computes it. Every slice and image
// of the result is new and the caller's.
func (m *Model) Reconstruct(ctx context.Context, req ReconstructRequest) (*Reconstruction, error) {
	request, err := abi.EncodeReconstructRequest(req)
	if err != nil {
		return nil, fmt.Errorf("m3ae plugin: reconstruct: %w", err)
	}
	var result *Reconstruction
	err = m.plugin.run(ctx, m, "reconstruct", func(ctx context.Context, inst *instance, handle int32) error {
		return inst.infer(ctx, "reconstruct", inst.reconstruct, handle, request, func(response []byte) (err error) {
			result, err = abi.DecodeReconstruction(response)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// Close marks the model closed, so later calls return ErrClosed. Each
// instance releases its copy the next time it runs a call. Closing twice is
// a no-op, and ctx is unused.
func (m *Model) Close(ctx context.Context) error {
	m.closed.Store(true)
	return nil
}
