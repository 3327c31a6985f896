package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// Output formats of -o.
const (
	formatText = "text"
	formatJSON = "json"
)

// output is where and how a command prints its result: aligned text for a person at a
// terminal, JSON for a script reading a pipe.
type output struct {
	w     io.Writer
	json  bool
	color bool
	// headers puts column names over a result's rows (apply's table).
	headers bool
}

// formatFlag registers -o on a command whose result has a text and a JSON form.
func formatFlag(fs *flag.FlagSet) *string {
	return fs.String("o", "", "output `FORMAT`: text or json (default: text on a terminal, json otherwise)")
}

// newOutput resolves -o against stdout: text on a terminal, JSON otherwise. Colour is used only
// on a terminal, and never with NO_COLOR set (https://no-color.org) or TERM=dumb.
func newOutput(format string, sio IO) (output, error) {
	tty := sio.terminal()
	o := output{w: sio.Stdout}
	switch format {
	case "":
		o.json = !tty
	case formatJSON:
		o.json = true
	case formatText:
	default:
		return o, fmt.Errorf("-o %q: want text or json", format)
	}
	o.color = !o.json && tty && sio.getenv("NO_COLOR") == "" && sio.getenv("TERM") != "dumb"
	return o, nil
}

// terminal reports whether stdout is a terminal (a character device).
func (sio IO) terminal() bool {
	if sio.IsTerminal != nil {
		return sio.IsTerminal()
	}
	f, ok := sio.Stdout.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (sio IO) getenv(k string) string {
	if sio.Getenv == nil {
		return ""
	}
	return sio.Getenv(k)
}

// ANSI styles of the text output.
const (
	styleNone   = ""
	styleGreen  = "32"
	styleYellow = "33"
	styleRed    = "31"
	styleBold   = "1"
	styleDim    = "2"
)

func (o output) paint(style, s string) string {
	if !o.color || style == styleNone || s == "" {
		return s
	}
	return "\x1b[" + style + "m" + s + "\x1b[0m"
}

func (o output) printf(format string, args ...any) {
	fmt.Fprintf(o.w, format, args...)
}

func (o output) printJSON(v any) {
	printJSON(o.w, v)
}

func printJSON(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	_, _ = w.Write(append(b, '\n'))
}

// cell is one table cell: its text and the style it is painted with.
type cell struct {
	text  string
	style string
}

// table prints rows aligned in columns, two spaces apart, each line indented by indent. Widths
// are measured on the text before painting, so colour never breaks the alignment; the last
// column is not padded. A row of one cell is a line of its own (a detail of the row above)
// and does not widen the columns.
func (o output) table(indent string, header []string, rows [][]cell) {
	cols := len(header)
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	width := make([]int, cols)
	for i, h := range header {
		width[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		if len(r) == 1 {
			continue // a line of its own under the row above
		}
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c.text))
		}
	}
	line := func(cells []cell) {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range cells {
			b.WriteString(o.paint(c.style, c.text))
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c.text)+2))
			}
		}
		o.printf("%s\n", strings.TrimRight(b.String(), " "))
	}
	if len(header) > 0 {
		hs := make([]cell, len(header))
		for i, h := range header {
			hs[i] = cell{h, styleBold}
		}
		line(hs)
	}
	for _, r := range rows {
		line(r)
	}
}

// outcomeStyle colours an outcome or an action as infrastructure tools do: green adds, yellow
// changes, red removes or fails, dim leaves alone.
func outcomeStyle(word string) string {
	switch word {
	case "created", "create", "delivered", "valid":
		return styleGreen
	case "updated", "update", "pending", "deferred":
		return styleYellow
	case "deleted", "delete", "invalid", "failed", "error":
		return styleRed
	case "unchanged", "no change", "skipped", "skip":
		return styleDim
	}
	return styleNone
}
