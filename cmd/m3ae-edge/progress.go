package main

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressBar draws a progress bar on a terminal while long work runs. On
// other writers, such as log files and test buffers, it draws nothing.
type progressBar struct {
	w           io.Writer
	description string
	unit        string
	terminal    bool
	bar         *progressbar.ProgressBar
}

// newProgressBar returns a bar labelled description for w that counts
// images. It appears at the first Update, which sets the total.
func newProgressBar(w io.Writer, description string) *progressBar {
	return newProgressBarOf(w, description, "images")
}

// newProgressBarOf returns a bar like newProgressBar that counts unit, such
// as "iterations", in its rate.
func newProgressBarOf(w io.Writer, description, unit string) *progressBar {
	p := &progressBar{w: w, description: description, unit: unit}
	if f, ok := w.(*os.File); ok {
		info, err := f.Stat()
		p.terminal = err == nil && info.Mode()&os.ModeCharDevice != 0
	}
	return p
}

// Update moves the bar to done of total. It has the signature of the
// progress callbacks of package data, which call it from one goroutine.
func (p *progressBar) Update(done, total int) {
	if !p.terminal {
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(p.description),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(p.unit),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish(),
		)
	}
	p.bar.Set(done)
}

// Finish completes and clears the bar.
func (p *progressBar) Finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
