package main

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// stepBar draws a progress bar of training steps with the remaining time
// on a terminal, below the log lines. On other writers it draws nothing.
type stepBar struct {
	w        io.Writer
	terminal bool

	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	first int64 // the step the bar started from
}

func newStepBar(w io.Writer) *stepBar {
	b := &stepBar{w: w}
	if f, ok := w.(*os.File); ok {
		info, err := f.Stat()
		b.terminal = err == nil && info.Mode()&os.ModeCharDevice != 0
	}
	return b
}

// update moves the bar to step of total. The bar counts the steps of this
// process only, so its rate and remaining time stay right after a resume.
func (b *stepBar) update(step, total int64) {
	if !b.terminal {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar == nil {
		b.first = step - 1
		b.bar = progressbar.NewOptions64(total-b.first,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription("training"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("steps"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish(),
		)
	}
	_ = b.bar.Set64(step - b.first)
}

func (b *stepBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		_ = b.bar.Finish()
	}
}

// logWriter returns a writer for log lines that clears the bar before each
// line, so that lines and bar do not overwrite each other. The next update
// redraws the bar.
func (b *stepBar) logWriter() io.Writer {
	if !b.terminal {
		return b.w
	}
	return writerFunc(func(p []byte) (int, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.bar != nil {
			_ = b.bar.Clear()
		}
		return b.w.Write(p)
	})
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
