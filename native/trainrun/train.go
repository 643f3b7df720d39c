package trainrun

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"time"

	"github.com/m3ae-edge/m3ae-edge/native"
	"github.com/m3ae-edge/m3ae-edge/native/data"
)

// Result describes how Train ended.
type Result struct {
	// Step is the trainer's step at the end.
	Step int64
	// Interrupted is set when the context was cancelled before the last
	// step; the run saved a checkpoint at Step and may be resumed.
	Interrupted bool
	// Checkpoint is the newest checkpoint's folder.
	Checkpoint string
	// LastTrain and LastEval are the last records written to
	// metrics.jsonl by this call, nil when it wrote none.
	LastTrain *TrainRecord
	LastEval  *EvalRecord
	// Elapsed is the wall time of the call.
	Elapsed time.Duration
}

// interval accumulates the steps between two log lines.
type interval struct {
	steps                               int
	examples                            int
	imageLoss, textLoss, loss, gradNorm float64
	wall                                time.Duration
	learningRate                        float64
}

func (iv *interval) add(m native.StepMetrics, wall time.Duration) {
	iv.steps++
	iv.examples += m.Examples
	iv.imageLoss += float64(m.ImageLoss)
	iv.textLoss += float64(m.TextLoss)
	iv.loss += float64(m.Loss)
	iv.gradNorm += float64(m.GradNorm)
	iv.wall += wall
	iv.learningRate = m.LearningRate
}

// Train runs steps until the run's total, evaluating, logging and saving
// checkpoints at the set intervals and at the end. When ctx is cancelled
// it finishes the current step, saves a checkpoint and returns with
// Result.Interrupted set and a nil error. A non-finite loss stops the run
// with an error wrapping native.ErrNonFiniteLoss that names the newest
// checkpoint; nothing is saved after it.
func (r *Run) Train(ctx context.Context) (Result, error) {
	started := time.Now()
	total := int64(r.opts.Steps)
	res := Result{Step: r.trainer.GlobalStep(), Checkpoint: r.lastCheckpoint}
	if res.Step >= total {
		r.logger.Warn("the run has reached its last step; raise --steps to train further", "step", res.Step, "steps", total)
		return res, nil
	}

	// The batcher's context is not ctx: a signal must let the current
	// step finish, not cut off its batch.
	batcher, err := data.NewBatcher(context.WithoutCancel(ctx), r.mixer, r.position, r.batcherCfg)
	if err != nil {
		return res, err
	}
	defer batcher.Close()

	r.logger.Info("training", "from_step", res.Step, "to_step", total, "dir", r.dir)
	var (
		iv        interval
		trainTime time.Duration
		trained   int64
	)
	for res.Step < total {
		if ctx.Err() != nil {
			res.Interrupted = true
			break
		}
		stepStart := time.Now()
		batch, err := batcher.Next()
		if err != nil {
			return res, fmt.Errorf("training data: %w", err)
		}
		m, err := r.trainer.StepWithMetrics(batchExamples(batch))
		if errors.Is(err, native.ErrNonFiniteLoss) {
			return res, r.nonFiniteError(err)
		}
		if err != nil {
			return res, err
		}
		res.Step = m.Step
		r.position = batch.Next
		wall := time.Since(stepStart)
		iv.add(m, wall)
		trainTime += wall
		trained++
		if r.hooks.Progress != nil {
			r.hooks.Progress(res.Step, total)
		}

		if res.Step%int64(r.opts.LogEvery) == 0 || res.Step == total {
			eta := time.Duration(float64(trainTime) / float64(trained) * float64(total-res.Step))
			if res.LastTrain, err = r.logInterval(res.Step, &iv, eta); err != nil {
				return res, err
			}
		}
		if r.due(r.opts.EvalEvery, res.Step, total) {
			if res.LastEval, err = r.evaluate(res.Step); err != nil {
				return res, err
			}
		}
		if r.due(r.opts.CheckpointEvery, res.Step, total) {
			if res.Checkpoint, err = r.save(res.Step); err != nil {
				return res, err
			}
		}
	}

	if res.Interrupted {
		r.logger.Warn("interrupted: saving a checkpoint", "step", res.Step)
		if iv.steps > 0 {
			if res.LastTrain, err = r.logInterval(res.Step, &iv, 0); err != nil {
				return res, err
			}
		}
		if res.Checkpoint, err = r.save(res.Step); err != nil {
			return res, err
		}
	}
	res.Elapsed = time.Since(started)
	return res, nil
}

// due reports whether an action set to run every `every` steps runs at
// step: at its multiples, and at the last step whatever every is.
func (r *Run) due(every int, step, total int64) bool {
	return step == total || (every > 0 && step%int64(every) == 0)
}

// logInterval writes the means of iv as a log line and a metrics record,
// then resets iv.
func (r *Run) logInterval(step int64, iv *interval, eta time.Duration) (*TrainRecord, error) {
	n := float64(iv.steps)
	rec := &TrainRecord{
		Kind:             KindTrain,
		Step:             step,
		Steps:            iv.steps,
		Epoch:            float64(r.position.Draw) / float64(r.mixer.EpochLength()),
		ImageLoss:        Float(iv.imageLoss / n),
		TextLoss:         Float(iv.textLoss / n),
		Loss:             Float(iv.loss / n),
		GradNorm:         Float(iv.gradNorm / n),
		LearningRate:     iv.learningRate,
		MsPerStep:        float64(iv.wall.Microseconds()) / 1000 / n,
		ExamplesPerSec:   float64(iv.examples) / iv.wall.Seconds(),
		Time:             time.Now().UTC(),
		SecondsRemaining: eta.Seconds(),
	}
	*iv = interval{}
	r.logger.Info("train",
		"step", step,
		"image_loss", round4(float64(rec.ImageLoss)),
		"text_loss", round4(float64(rec.TextLoss)),
		"learning_rate", round4(rec.LearningRate),
		"ms_per_step", math.Round(rec.MsPerStep),
		"examples_per_s", round4(rec.ExamplesPerSec),
		"epoch", round4(rec.Epoch),
		"eta", eta.Round(time.Second).String())
	return rec, r.metrics.append(rec)
}

// evaluate scores the held-out split, appends the record and redraws
// loss.png and recon-STEP.png. Without a held-out split it only redraws
// loss.png.
func (r *Run) evaluate(step int64) (*EvalRecord, error) {
	if r.eval == nil {
		return nil, r.writeLossPlot()
	}
	if r.evalModel == nil {
		m, err := r.trainer.Model()
		if err != nil {
			return nil, err
		}
		r.evalModel = m
	}
	metrics, items, err := r.eval.evaluate(r.evalModel, r.cfg, r.opts.ReconExamples)
	if err != nil {
		return nil, err
	}
	rec := &EvalRecord{Kind: KindEval, Step: step, EvalMetrics: metrics, Time: time.Now().UTC()}
	if err := r.metrics.append(rec); err != nil {
		return nil, err
	}
	r.lastEvalStep = step
	r.logger.Info("eval",
		"step", step,
		"image_mse", round4(float64(metrics.ImageMSE)),
		"text_loss", round4(float64(metrics.TextLoss)),
		"token_accuracy", round4(float64(metrics.TokenAccuracy)),
		"examples", metrics.Examples,
		"seconds", round4(metrics.Seconds))
	if err := r.writeLossPlot(); err != nil {
		return nil, err
	}
	if len(items) > 0 {
		title := fmt.Sprintf("step %d: held-out MSE %.4f, token accuracy %.3f (%d examples)",
			step, float64(metrics.ImageMSE), float64(metrics.TokenAccuracy), metrics.Examples)
		png, err := renderRecon(items, r.cfg, r.trainer.Norm(), r.tokenizer, title)
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(filepath.Join(r.dir, fmt.Sprintf("recon-%09d.png", step)), png); err != nil {
			return nil, fmt.Errorf("reconstruction grid: %w", err)
		}
	}
	return rec, nil
}

// writeLossPlot redraws loss.png from the metrics history.
func (r *Run) writeLossPlot() error {
	png, err := renderLossPlot(r.metrics.history)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(r.dir, lossPlotName), png); err != nil {
		return fmt.Errorf("loss plot: %w", err)
	}
	return nil
}

// save writes a checkpoint at step with the data position of the next
// batch, and redraws loss.png when no evaluation does.
func (r *Run) save(step int64) (string, error) {
	if step == r.savedStep {
		return r.lastCheckpoint, nil // an interruption right after a scheduled save
	}
	state := runState{Step: step, Position: r.position, Options: r.opts, Saved: time.Now().UTC()}
	path, err := saveCheckpoint(r.trainer, CheckpointsDir(r.dir), state, r.opts.Keep)
	if err != nil {
		return "", err
	}
	r.lastCheckpoint, r.savedStep = path, step
	r.logger.Info("checkpoint saved", "step", step, "dir", path)
	if r.eval == nil {
		if err := r.writeLossPlot(); err != nil {
			return path, err
		}
	}
	return path, nil
}

// nonFiniteError explains a non-finite loss and names the checkpoint to
// resume from.
func (r *Run) nonFiniteError(err error) error {
	if r.lastCheckpoint == "" {
		return fmt.Errorf("%w; no checkpoint was saved yet: start again with a lower --lr or with --grad-clip 1", err)
	}
	return fmt.Errorf("%w; the newest checkpoint is %s: resume it with --resume and a lower --lr or --grad-clip 1 (nothing was saved after the bad step)",
		err, r.lastCheckpoint)
}

// round4 rounds x to 4 significant digits for log lines.
func round4(x float64) float64 {
	rounded, err := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 4, 64), 64)
	if err != nil {
		return x
	}
	return rounded
}
