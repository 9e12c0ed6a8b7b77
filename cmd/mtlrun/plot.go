package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/mtlrun/mtlrun/train"
)

// plotCurves draws each task's training (and validation) loss per epoch.
func plotCurves(path string, tasks []string, epochs []train.EpochStats) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("--plot %s: use a .png or .svg file", path)
	}
	p := plot.New()
	p.Title.Text = "mtlrun train: task losses"
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "loss"
	var lines []any
	for _, t := range tasks {
		tr := make(plotter.XYs, len(epochs))
		va := make(plotter.XYs, 0, len(epochs))
		for i, e := range epochs {
			tr[i].X, tr[i].Y = float64(e.Epoch), e.Train[t].Loss
			if e.Val != nil {
				va = append(va, plotter.XY{X: float64(e.Epoch), Y: e.Val[t].Loss})
			}
		}
		lines = append(lines, t+" train", tr)
		if len(va) > 0 {
			lines = append(lines, t+" val", va)
		}
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}
