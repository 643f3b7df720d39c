package native

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// SavedCheckpoint is one checkpoint read back from disk without building a
// trainer, for export and inspection.
type SavedCheckpoint struct {
	// Path is the checkpoint's directory.
	Path string
	// Step is the number of updates applied before the save.
	Step int64
	// Store contains every saved variable: the parameters, the AdamW moments
	// and the step counter.
	Store *model.Store
	// Config, Vocab and Norm are the architecture, the tokenizer vocabulary
	// and the image normalization of the trained model.
	Config core.Config
	Vocab  []string
	Norm   core.ImageNorm
	// TrainConfig is the training settings of the run that saved it, with
	// no Logger or OnStep.
	TrainConfig TrainConfig
}

// ReadCheckpoint reads the checkpoint directory path, one that
// SaveCheckpoint wrote (DIR/step-NNNNNNNNN), into a new store.
func ReadCheckpoint(path string) (*SavedCheckpoint, error) {
	store := model.NewStore()
	if _, err := checkpoint.Load(store).Dir(path).Immediate().Done(); err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	saved := &SavedCheckpoint{Path: path, Store: store}
	decoded := map[string]any{
		paramModelConfig: &saved.Config,
		paramImageNorm:   &saved.Norm,
		paramTrainConfig: &saved.TrainConfig,
	}
	for key, dst := range decoded {
		if err := decodeParam(store, key, dst); err != nil {
			return nil, fmt.Errorf("read checkpoint %s: %w", path, err)
		}
	}
	vocab, ok := getParam[[]string](store, paramVocab)
	if !ok {
		return nil, fmt.Errorf("read checkpoint %s: %w: parameter %s is missing", path, core.ErrInvalidModelFile, paramVocab)
	}
	saved.Vocab = vocab
	if err := saved.Config.Validate(); err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	step := store.GetVariable(globalStepPath)
	if step == nil {
		return nil, fmt.Errorf("read checkpoint %s: %w: variable %s is missing", path, core.ErrInvalidModelFile, globalStepPath)
	}
	if shape := step.Shape(); shape.DType != dtypes.Int64 || shape.Rank() != 0 {
		return nil, fmt.Errorf("read checkpoint %s: %w: variable %s is %s, want a scalar int64",
			path, core.ErrInvalidModelFile, globalStepPath, shape)
	}
	value, err := step.Value()
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: read %s: %w", path, globalStepPath, err)
	}
	saved.Step = tensors.ToScalar[int64](value)
	return saved, nil
}

// CheckpointPath returns the directory that SaveCheckpoint(dir, ...) writes
// for step.
func CheckpointPath(dir string, step int64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%09d", checkpointPrefix, step))
}

// CheckpointStep returns the step in the name of a checkpoint directory
// that SaveCheckpoint wrote, and false for any other name.
func CheckpointStep(path string) (int64, bool) {
	name := filepath.Base(path)
	if !strings.HasPrefix(name, checkpointPrefix) {
		return 0, false
	}
	step, err := strconv.ParseInt(strings.TrimPrefix(name, checkpointPrefix), 10, 64)
	return step, err == nil && step >= 0
}
