package experiment

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Markdown renders r as the content of results.md: the settings, the
// per-arm summary, the plot and one table row per run.
func (r *Results) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Study %s\n\n", r.Study)
	fmt.Fprintf(&b, "Arms: %s. Every arm trains with the same budget once per seed, is exported, and a linear probe scores its image embeddings on the test split.\n\n", r.Description)

	b.WriteString("| setting | value |\n|---|---|\n")
	if r.Command != "" {
		fmt.Fprintf(&b, "| command | `%s` |\n", r.Command)
	}
	fmt.Fprintf(&b, "| budget | %s |\n", budgetText(r))
	fmt.Fprintf(&b, "| training data | `%s`, %s pairs |\n", r.Captions, groupThousands(r.Pairs))
	heldOut := "none"
	if r.Budget.EvalCaptions != "" {
		heldOut = fmt.Sprintf("`%s`, up to %d examples, evaluated after the last step", r.Budget.EvalCaptions, r.Budget.EvalExamples)
	}
	fmt.Fprintf(&b, "| held-out | %s |\n", heldOut)
	fmt.Fprintf(&b, "| probe | %s |\n", probeText(r.Probe))
	fmt.Fprintf(&b, "| seeds | %s |\n", joinSeeds(r.Seeds))
	fmt.Fprintf(&b, "| versions | %s |\n", versionsText(r.Versions))
	status := "complete"
	if !r.Complete {
		status = fmt.Sprintf("unfinished: %d of %d runs done", len(r.Runs), len(r.Arms)*len(r.Seeds))
	}
	fmt.Fprintf(&b, "| wall time | %s, the sum over the runs (%s) |\n", formatSeconds(r.WallSeconds), status)

	b.WriteString("\n## Probe accuracy per arm\n\n")
	b.WriteString("Mean over the seeds, with the lowest and highest seed in brackets.\n\n")
	b.WriteString("| arm | seeds | test accuracy | balanced accuracy | wall time per run |\n|---|---|---|---|---|\n")
	for _, s := range r.Summary {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", s.Label, s.Runs,
			spreadText(s.Accuracy), spreadText(s.BalancedAccuracy), formatSeconds(s.MeanWallSeconds))
	}
	if len(r.RandomInit) > 0 {
		var accuracy, balanced []float64
		for _, run := range r.RandomInit {
			accuracy = append(accuracy, run.ProbeAccuracy)
			balanced = append(balanced, run.ProbeBalancedAccuracy)
		}
		fmt.Fprintf(&b, "| baseline: untrained model | %d | %s | %s | |\n", len(r.RandomInit), spreadText(spreadOf(accuracy)), spreadText(spreadOf(balanced)))
	}
	if r.Probe.Classes > 0 {
		fmt.Fprintf(&b, "| baseline: always %q | | %s | %s | |\n", r.Probe.MajorityClass, percent(r.Probe.MajorityAccuracy), percent(r.Probe.MajorityBalancedAccuracy))
	}
	fmt.Fprintf(&b, "\n![Probe accuracy per arm, one mark per seed](%s)\n", resultsPNGName)

	b.WriteString("\n## Runs\n\n")
	b.WriteString("Final losses are the train means over the last logged steps; held-out figures are at the last step.\n\n")
	b.WriteString("| arm | seed | probe accuracy | balanced accuracy | final image loss | final text loss | held-out image MSE | held-out token accuracy | wall time |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, run := range append(append([]RunResult(nil), r.Runs...), r.RandomInit...) {
		wall := formatSeconds(run.WallSeconds)
		if run.ResumedFromStep > 0 {
			wall += fmt.Sprintf(" (resumed at step %d)", run.ResumedFromStep)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", run.Label, run.Seed,
			percent(run.ProbeAccuracy), percent(run.ProbeBalancedAccuracy),
			number(float64(run.ImageLoss)), number(float64(run.TextLoss)),
			number(float64(run.EvalImageMSE)), percentOrDash(float64(run.EvalTokenAccuracy)), wall)
	}
	return b.String()
}

// budgetText describes the shared training settings in one line.
func budgetText(r *Results) string {
	o := r.Budget
	lr := fmt.Sprintf("peak learning rate %g", o.PeakLearningRate())
	parts := []string{
		fmt.Sprintf("preset %s", o.Preset),
		fmt.Sprintf("%d steps of batch %d", o.Steps, o.BatchSize),
		fmt.Sprintf("%s, %d warmup steps, cosine to 0", lr, o.Warmup()),
		fmt.Sprintf("image mask ratio %g", o.ImageMaskRatio),
	}
	if r.Study != StudyTextMaskRatio {
		parts = append(parts, fmt.Sprintf("text mask ratio %g", o.TextMaskRatio))
	}
	parts = append(parts, fmt.Sprintf("loss weights image %g, text %g", o.ImageLossWeight, o.TextLossWeight))
	if o.MaxGradNorm > 0 {
		parts = append(parts, fmt.Sprintf("gradient clipped at norm %g", o.MaxGradNorm))
	}
	if o.Augment {
		parts = append(parts, fmt.Sprintf("random resized crops (area %g to 1) and flips (%g)", o.CropMinScale, o.FlipProb))
	}
	return strings.Join(parts, "; ")
}

// probeText describes the probe's data and fit in one line.
func probeText(p ProbeSummary) string {
	labels := "class subfolders"
	if p.LabelField != "" {
		labels = fmt.Sprintf("field %q", p.LabelField)
	}
	return fmt.Sprintf("softmax classifier (L2 %g, L-BFGS) on %s-pooled image embeddings; %s training and %s test examples of `%s` and `%s`, %d classes from %s",
		p.Classifier.L2, p.Pooling, groupThousands(p.TrainExamples), groupThousands(p.TestExamples), p.Train, p.Test, p.Classes, labels)
}

// versionsText lists the versions in one line.
func versionsText(v Versions) string {
	module := "m3ae-edge " + v.Module
	if v.Revision != "" {
		revision := v.Revision[:min(12, len(v.Revision))]
		if v.Modified {
			revision += ", modified"
		}
		module += fmt.Sprintf(" (revision %s)", revision)
	}
	parts := []string{module, v.Go}
	// A Go version such as go1.26.8-X:simd already names the experiments.
	if v.Experiments != "" && !strings.Contains(v.Go, "X:") {
		parts = append(parts, "GOEXPERIMENT="+v.Experiments)
	}
	if v.GoMLX != "" {
		parts = append(parts, "GoMLX "+v.GoMLX)
	}
	if v.Compute != "" {
		parts = append(parts, "compute "+v.Compute)
	}
	backend := v.Backend
	if backend == "" {
		backend = "default"
	}
	parts = append(parts, "backend "+backend, fmt.Sprintf("%s, %d CPUs", v.Platform, v.CPUs))
	return strings.Join(parts, ", ")
}

func joinSeeds(seeds []uint64) string {
	parts := make([]string, len(seeds))
	for i, seed := range seeds {
		parts[i] = fmt.Sprint(seed)
	}
	return strings.Join(parts, ", ")
}

// spreadText writes a spread of fractions as "mean % (min to max)".
func spreadText(s Spread) string {
	if s.Min == s.Max {
		return percent(s.Mean)
	}
	return fmt.Sprintf("%s (%s to %s)", percent(s.Mean), percent(s.Min), percent(s.Max))
}

func percent(fraction float64) string {
	return fmt.Sprintf("%.2f %%", 100*fraction)
}

func percentOrDash(fraction float64) string {
	if math.IsNaN(fraction) {
		return "-"
	}
	return percent(fraction)
}

// number writes a loss with 4 decimals, or "-" for a missing one.
func number(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.4f", v)
}

// formatSeconds writes a duration in seconds as "1m23s".
func formatSeconds(seconds float64) string {
	return (time.Duration(seconds * float64(time.Second))).Round(time.Second).String()
}

// groupThousands writes n with commas between groups of three digits.
func groupThousands(n int) string {
	if n < 0 {
		return "-" + groupThousands(-n)
	}
	digits := fmt.Sprint(n)
	var b strings.Builder
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}
