package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/livepack/livepack/shared/apply"
)

// stderrTerminal reports whether stderr is a terminal, where a progress bar may redraw.
func (sio IO) stderrTerminal() bool {
	if sio.StderrIsTerminal != nil {
		return sio.StderrIsTerminal()
	}
	f, ok := sio.Stderr.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// withProgressBar returns ctx on which a scheduled reconcile draws its pass's progress on
// stderr when stderr is a terminal (stdout carries only the result). The bar appears with the
// reconcile's first report, so other events draw nothing; done ends it.
func withProgressBar(ctx context.Context, sio IO) (context.Context, func()) {
	if !sio.stderrTerminal() {
		return ctx, func() {}
	}
	b := &bar{w: sio.Stderr}
	return apply.WithProgress(ctx, b.update), b.done
}

// bar draws apply.Progress reports with schollz/progressbar.
type bar struct {
	w  io.Writer
	mu sync.Mutex
	pb *progressbar.ProgressBar
	// drawn is when the bar was last redrawn.
	drawn time.Time
}

const redrawEvery = 100 * time.Millisecond

func (b *bar) update(p apply.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb == nil {
		b.pb = progressbar.NewOptions(max(p.Domains, 1), progressbar.OptionSetWriter(b.w), progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("domains"), progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetRenderBlankState(true))
	}
	// A redraw per domain would cost more than the domain at a fast pace: ten a second at most,
	// and always the last.
	now := time.Now()
	if !p.Done && now.Sub(b.drawn) < redrawEvery {
		return
	}
	b.drawn = now
	if b.pb.GetMax() != p.Domains && p.Domains > 0 {
		b.pb.ChangeMax(p.Domains)
	}
	b.pb.Describe(describe(p))
	_ = b.pb.Set(p.PassChecked)
}

// describe is the bar's label: the pass, this run's pace and the pass's estimated end.
func describe(p apply.Progress) string {
	s := fmt.Sprintf("reconcile pass %d", p.Pass)
	if p.Rate > 0 {
		s += fmt.Sprintf(", %.0f domains/min", p.Rate)
	}
	if !p.ETA.IsZero() {
		s += ", done ~" + p.ETA.Local().Format("15:04")
	}
	return s
}

func (b *bar) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb != nil {
		_ = b.pb.Exit()
		fmt.Fprintln(b.w)
	}
}
