package trainrun

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"time"
)

// Record kinds in metrics.jsonl.
const (
	KindTrain = "train"
	KindEval  = "eval"
)

// TrainRecord is one line of metrics.jsonl per logged interval: the means
// over the Steps steps that end at Step.
type TrainRecord struct {
	Kind string `json:"kind"` // KindTrain
	Step int64  `json:"step"`
	// Steps is the number of steps averaged.
	Steps int `json:"steps"`
	// Epoch is the number of epochs of the data read so far.
	Epoch float64 `json:"epoch"`
	// ImageLoss is the MSE over hidden patches of normalized pixels,
	// TextLoss the cross-entropy in nats over hidden non-pad tokens, and
	// Loss their weighted total.
	ImageLoss Float `json:"image_loss"`
	TextLoss  Float `json:"text_loss"`
	Loss      Float `json:"loss"`
	// GradNorm is the global gradient norm before clipping.
	GradNorm Float `json:"grad_norm"`
	// LearningRate is the rate of the last step.
	LearningRate float64 `json:"learning_rate"`
	// MsPerStep is the wall time per step, batch preparation included.
	MsPerStep        float64   `json:"ms_per_step"`
	ExamplesPerSec   float64   `json:"examples_per_s"`
	Time             time.Time `json:"time"`
	SecondsRemaining float64   `json:"eta_s"`
}

// EvalRecord is one line of metrics.jsonl per evaluation.
type EvalRecord struct {
	Kind string `json:"kind"` // KindEval
	Step int64  `json:"step"`
	EvalMetrics
	Time time.Time `json:"time"`
}

// Float is a float64 that encodes NaN and infinities as JSON null.
type Float float64

// MarshalJSON encodes f as a number, or null when it is not finite.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON decodes a number, or null as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	*f = Float(v)
	return err
}

// historyPoint is the part of a metrics record that the loss plot reads.
type historyPoint struct {
	Kind          string `json:"kind"`
	Step          int64  `json:"step"`
	ImageLoss     *Float `json:"image_loss"`
	TextLoss      *Float `json:"text_loss"`
	ImageMSE      *Float `json:"image_mse"`
	TokenAccuracy *Float `json:"token_accuracy"`
}

// metricsFile appends records to metrics.jsonl and keeps the history the
// loss plot draws.
type metricsFile struct {
	path    string
	history []historyPoint
}

// openMetrics reads the records of path, dropping those after step
// keepThrough: a run resumed from an earlier checkpoint repeats those
// steps. It rewrites the file when it drops any, through a temporary
// file, so an interruption leaves either version whole.
func openMetrics(path string, keepThrough int64) (*metricsFile, error) {
	m := &metricsFile{path: path}
	content, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("metrics file: %w", err)
	}

	var kept bytes.Buffer
	dropped := 0
	scanner := bufio.NewScanner(bytes.NewReader(content))
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		text := scanner.Bytes()
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		var p historyPoint
		if err := json.Unmarshal(text, &p); err != nil {
			// A line cut short by a crash: drop it with the later ones.
			dropped++
			continue
		}
		if p.Step > keepThrough {
			dropped++
			continue
		}
		m.history = append(m.history, p)
		kept.Write(text)
		kept.WriteByte('\n')
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("metrics file %s: %w", path, err)
	}

	if dropped > 0 {
		if err := writeFileAtomic(path, kept.Bytes()); err != nil {
			return nil, fmt.Errorf("metrics file: %w", err)
		}
	}
	return m, nil
}

// append writes one record as a JSON line and adds it to the history.
func (m *metricsFile) append(record any) error {
	line, err := json.Marshal(record)
	if err != nil {
		return fmt.Errorf("metrics record: %w", err)
	}
	var p historyPoint
	if err := json.Unmarshal(line, &p); err != nil {
		return fmt.Errorf("metrics record: %w", err)
	}
	f, err := os.OpenFile(m.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	m.history = append(m.history, p)
	return nil
}

// writeFileAtomic writes content to a temporary file beside path and
// renames it over path, so readers see the old file or the new one whole.
func writeFileAtomic(path string, content []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	if syncErr := f.Sync(); err == nil {
		err = syncErr
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
