// Package seattle turns the Seattle weather series shipped in models/ into
// a multi-task training set for the seed LSTM architecture: windows of the
// last days' maximum temperature predict the next day's maximum temperature
// (regression) and weather class (classification).
package seattle

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/mtlrun/mtlrun/models"
	"github.com/mtlrun/mtlrun/tensor"
)

// Classes are the weather labels, in label order.
var Classes = []string{"drizzle", "rain", "sun", "snow", "fog"}

// Day is one row of the series.
type Day struct {
	Date    string
	TempMax float64
	Weather int
}

// Load parses the embedded CSV.
func Load() ([]Day, error) {
	data, err := models.FS.ReadFile("seattle_weather/seattle-weather.csv")
	if err != nil {
		return nil, err
	}
	return Parse(bytes.NewReader(data))
}

// Parse reads the CSV layout of seattle-weather.csv.
func Parse(r io.Reader) ([]Day, error) {
	rd := csv.NewReader(r)
	header, err := rd.Read()
	if err != nil {
		return nil, err
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, need := range []string{"date", "temp_max", "weather"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("seattle: no %q column", need)
		}
	}
	label := map[string]int{}
	for i, c := range Classes {
		label[c] = i
	}
	var days []Day
	for line := 2; ; line++ {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		t, err := strconv.ParseFloat(rec[col["temp_max"]], 64)
		if err != nil {
			return nil, fmt.Errorf("seattle: line %d: %w", line, err)
		}
		w, ok := label[rec[col["weather"]]]
		if !ok {
			return nil, fmt.Errorf("seattle: line %d: unknown weather %q", line, rec[col["weather"]])
		}
		days = append(days, Day{rec[col["date"]], t, w})
	}
	return days, nil
}

// Windows are training arrays keyed by model input/output names.
type Windows struct {
	Input   *tensor.Tensor // (n, window, 1) standardised temp_max
	TempMax *tensor.Tensor // (n, 1) next day's standardised temp_max
	Weather *tensor.Tensor // (n,) next day's class
	Mean    float64        // standardisation, to turn predictions back into °C
	Std     float64
}

// MakeWindows slides a window over days[from:to]; mean and std standardise
// temperatures (compute them on the training period only).
func MakeWindows(days []Day, window, from, to int, mean, std float64) Windows {
	n := to - from - window
	if n < 0 {
		n = 0
	}
	x := make([]float32, 0, n*window)
	y := make([]float32, 0, n)
	c := make([]int64, 0, n)
	for i := from; i+window < to; i++ {
		for j := i; j < i+window; j++ {
			x = append(x, float32((days[j].TempMax-mean)/std))
		}
		next := days[i+window]
		y = append(y, float32((next.TempMax-mean)/std))
		c = append(c, int64(next.Weather))
	}
	return Windows{
		Input: tensor.From([]int{n, window, 1}, x), TempMax: tensor.From([]int{n, 1}, y),
		Weather: tensor.From([]int{n}, c), Mean: mean, Std: std,
	}
}

// Stats returns the mean and standard deviation of temp_max over days.
func Stats(days []Day) (mean, std float64) {
	for _, d := range days {
		mean += d.TempMax
	}
	mean /= float64(len(days))
	for _, d := range days {
		std += (d.TempMax - mean) * (d.TempMax - mean)
	}
	std = math.Sqrt(std / float64(len(days)))
	return mean, std
}
