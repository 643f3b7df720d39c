package native

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// ErrNoCheckpoint marks a checkpoint directory that holds no complete
// checkpoint.
var ErrNoCheckpoint = errors.New("no checkpoint")

const (
	// checkpointPrefix starts the name of each checkpoint's directory,
	// followed by the zero-padded step.
	checkpointPrefix = "step-"
	// checkpointTempPrefix starts the name of a checkpoint being written.
	checkpointTempPrefix = ".tmp-"

	// Store parameters saved with each checkpoint, all JSON-encoded strings
	// except the vocabulary.
	paramModelConfig = "/m3ae/model_config"
	paramTrainConfig = "/m3ae/train_config"
	paramImageNorm   = "/m3ae/image_norm"
	paramVocab       = "/m3ae/vocab"
	// paramMaskRNG is the mask generator's PCG state, hex-encoded
	// (rand.PCG.MarshalBinary).
	paramMaskRNG = "/m3ae/mask_rng"
)

// SaveCheckpoint writes the trainer's state (parameters, AdamW moments, step
// counter and mask generator) with GoMLX's checkpoint package into a new
// directory dir/step-NNNNNNNNN, then deletes all but the newest keep
// checkpoints of dir (keep <= 0 keeps all). It writes into a temporary
// directory of dir and renames it when complete, so a save that fails (a
// full disk) or is killed leaves the earlier checkpoints intact and no
// partial checkpoint under a step-NNNNNNNNN name. It flushes the files to
// stable storage before the rename and dir after it, so that the rename
// cannot outlive the files in a power loss. It returns the new directory.
func (t *Trainer) SaveCheckpoint(dir string, keep int) (string, error) {
	return t.saveCheckpoint(osCheckpointFS{}, dir, keep)
}

func (t *Trainer) saveCheckpoint(fsys checkpointFS, dir string, keep int) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	tmpDir, err := fsys.MkdirTemp(dir, checkpointTempPrefix)
	if err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	defer func() { _ = fsys.RemoveAll(tmpDir) }() // no-op once renamed

	// A separate store that shares the trainer's tensors, so the handler
	// attaches to it instead of becoming the trainer store's loader.
	snapshot := model.NewStore()
	for v := range t.store.IterVariables() {
		value, err := v.Value()
		if err != nil {
			return "", fmt.Errorf("save checkpoint: read %s: %w", v.Path(), err)
		}
		if _, err := snapshot.CreateVariable(v.Path(), value); err != nil {
			return "", fmt.Errorf("save checkpoint: %w", err)
		}
	}
	if err := t.setCheckpointParams(snapshot); err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	if err := fsys.WriteStore(snapshot, tmpDir); err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	if err := syncFolder(fsys, tmpDir); err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}

	final := CheckpointPath(dir, t.step)
	if err := fsys.RemoveAll(final); err != nil {
		return "", fmt.Errorf("save checkpoint: replace %s: %w", final, err)
	}
	if err := fsys.Rename(tmpDir, final); err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	if err := fsys.Sync(dir); err != nil {
		return "", fmt.Errorf("save checkpoint: flush %s: %w", dir, err)
	}
	if keep > 0 {
		if err := pruneCheckpoints(fsys, dir, keep); err != nil {
			return final, err
		}
	}
	t.logger.Info("checkpoint saved", "dir", final, "step", t.step)
	return final, nil
}

func (t *Trainer) setCheckpointParams(store *model.Store) error {
	rngState, err := t.pcg.MarshalBinary()
	if err != nil {
		return err
	}
	for path, value := range map[string]any{paramModelConfig: t.cfg, paramTrainConfig: t.tc, paramImageNorm: t.norm} {
		encoded, err := json.Marshal(value)
		if err != nil {
			return err
		}
		store.SetParam(path, string(encoded))
	}
	store.SetParam(paramVocab, slices.Clone(t.vocab))
	store.SetParam(paramMaskRNG, hex.EncodeToString(rngState))
	return nil
}

// Checkpoints returns the checkpoint directories of dir, oldest first.
func Checkpoints(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	type stepDir struct {
		step int64
		path string
	}
	var found []stepDir
	for _, e := range entries {
		step, err := strconv.ParseInt(strings.TrimPrefix(e.Name(), checkpointPrefix), 10, 64)
		if !e.IsDir() || !strings.HasPrefix(e.Name(), checkpointPrefix) || err != nil {
			continue
		}
		found = append(found, stepDir{step, filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(found, func(a, b stepDir) int { return int(a.step - b.step) })
	paths := make([]string, len(found))
	for i, f := range found {
		paths[i] = f.path
	}
	return paths, nil
}

func pruneCheckpoints(fsys checkpointFS, dir string, keep int) error {
	paths, err := Checkpoints(dir)
	if err != nil {
		return err
	}
	for _, path := range paths[:max(0, len(paths)-keep)] {
		if err := fsys.RemoveAll(path); err != nil {
			return fmt.Errorf("remove old checkpoint: %w", err)
		}
	}
	return nil
}

// ResumeTrainer returns a trainer in the state of the newest checkpoint in
// dir: parameters, AdamW moments, step and mask generator. tc replaces the
// saved training settings, so a resumed run may change its total steps, for
// example. Its Seed is unused because the generator state is restored. It
// fails with ErrNoCheckpoint when dir contains none.
func ResumeTrainer(backend compute.Backend, dir string, tc TrainConfig) (*Trainer, error) {
	paths, err := Checkpoints(dir)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("resume from %s: %w; train from a new model instead", dir, ErrNoCheckpoint)
	}
	path := paths[len(paths)-1]
	store := model.NewStore()
	if _, err := checkpoint.Load(store).Dir(path).Immediate().Done(); err != nil {
		return nil, fmt.Errorf("resume from %s: %w", path, err)
	}

	var cfg core.Config
	var norm core.ImageNorm
	for key, dst := range map[string]any{paramModelConfig: &cfg, paramImageNorm: &norm} {
		if err := decodeParam(store, key, dst); err != nil {
			return nil, fmt.Errorf("resume from %s: %w", path, err)
		}
	}
	vocab, ok := getParam[[]string](store, paramVocab)
	if !ok {
		return nil, fmt.Errorf("resume from %s: %w: parameter %s is missing", path, core.ErrInvalidModelFile, paramVocab)
	}
	rngHex, ok := getParam[string](store, paramMaskRNG)
	rngState, err := hex.DecodeString(rngHex)
	if !ok || err != nil {
		return nil, fmt.Errorf("resume from %s: %w: parameter %s is missing or not hex", path, core.ErrInvalidModelFile, paramMaskRNG)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("resume from %s: %w", path, err)
	}
	if err := tc.Validate(cfg); err != nil {
		return nil, err
	}
	t, err := newTrainer(backend, store, cfg, vocab, norm, tc)
	if err != nil {
		return nil, fmt.Errorf("resume from %s: %w", path, err)
	}
	if err := t.pcg.UnmarshalBinary(rngState); err != nil {
		return nil, fmt.Errorf("resume from %s: mask generator state: %w", path, err)
	}
	t.rng = rand.New(t.pcg)
	t.logger.Info("checkpoint restored", "dir", path, "step", t.step)
	return t, nil
}

func getParam[T any](store *model.Store, key string) (T, bool) {
	value, found := store.GetParam(key)
	typed, ok := value.(T)
	return typed, found && ok
}

func decodeParam(store *model.Store, key string, dst any) error {
	encoded, ok := getParam[string](store, key)
	if !ok {
		return fmt.Errorf("%w: parameter %s is missing", core.ErrInvalidModelFile, key)
	}
	if err := json.Unmarshal([]byte(encoded), dst); err != nil {
		return fmt.Errorf("%w: parameter %s: %w", core.ErrInvalidModelFile, key, err)
	}
	return nil
}
