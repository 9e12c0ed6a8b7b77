package train

import (
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/tensorio"
)

// Dataset holds aligned arrays keyed by model input and output names (as
// Keras' fit(x={...}, y={...})): every array has the same number of rows
// along axis 0.
type Dataset struct {
	Arrays map[string]*tensor.Tensor
	Rows   int
	// Source names where the rows came from (a file path), for messages.
	Source string
	// firstRow is the file row of row 0 (a validation split starts past
	// the training rows); csv makes RowName count CSV lines.
	firstRow int
	csv      bool
	// mismatch is set when the arrays disagree on their row count (LoadNPZ
	// keeps them until Select picks the arrays in use).
	mismatch error
}

// RowName names row r as its file position: "data.npz row 17" (rows count
// from 0, as in NumPy) or "data.csv line 19" (lines count from 1, the
// header being line 1).
func (d *Dataset) RowName(r int) string {
	src := d.Source
	if src == "" {
		src = "data"
	}
	if d.csv {
		return fmt.Sprintf("%s line %d", src, d.firstRow+r+2)
	}
	return fmt.Sprintf("%s row %d", src, d.firstRow+r)
}

// Select returns the data set of the named arrays only, and the names of
// the arrays it leaves out (sorted). Every named array must exist.
func (d *Dataset) Select(names []string) (*Dataset, []string, error) {
	keep := map[string]*tensor.Tensor{}
	for _, n := range names {
		t, ok := d.Arrays[n]
		if !ok {
			return nil, nil, fmt.Errorf("no array %q (arrays: %s)", n, strings.Join(d.Names(), ", "))
		}
		keep[n] = t
	}
	var ignored []string
	for _, n := range d.Names() {
		if _, ok := keep[n]; !ok {
			ignored = append(ignored, n)
		}
	}
	out, err := NewDataset(keep)
	if err != nil {
		return nil, nil, err
	}
	out.Source, out.firstRow, out.csv = d.Source, d.firstRow, d.csv
	return out, ignored, nil
}

// Names lists the arrays, sorted.
func (d *Dataset) Names() []string {
	names := make([]string, 0, len(d.Arrays))
	for k := range d.Arrays {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// NewDataset checks that all arrays agree on their row count.
func NewDataset(arrays map[string]*tensor.Tensor) (*Dataset, error) {
	d := &Dataset{Arrays: arrays, Rows: -1}
	names := make([]string, 0, len(arrays))
	for k := range arrays {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		t := arrays[k]
		if t.Rank() == 0 {
			return nil, fmt.Errorf("array %q is a scalar; arrays need a row axis", k)
		}
		if d.Rows >= 0 && t.Shape[0] != d.Rows {
			return nil, fmt.Errorf("array %q has %d rows, others have %d", k, t.Shape[0], d.Rows)
		}
		d.Rows = t.Shape[0]
	}
	if d.Rows < 0 {
		return nil, fmt.Errorf("the data set has no arrays")
	}
	return d, nil
}

// LoadNPZ reads a .npz file of arrays keyed by input/output names.
func LoadNPZ(path string) (*Dataset, error) {
	arrays, err := tensorio.ReadNPZ(path)
	if err != nil {
		return nil, err
	}
	// float64 arrays become float32, the compute type of training
	for k, t := range arrays {
		if t.DType == tensor.Float64 {
			arrays[k] = toFloat32(t)
		}
	}
	if len(arrays) == 0 {
		return nil, fmt.Errorf("%s: the file holds no arrays", path)
	}
	d, err := NewDataset(arrays)
	if err != nil {
		// an unrelated array (other row count, a scalar) is no reason to
		// refuse the file: Select decides once the arrays in use are known
		d = &Dataset{Arrays: arrays, Rows: -1, mismatch: fmt.Errorf("%s: %w", path, err)}
	}
	d.Source = path
	return d, nil
}

func toFloat32(t *tensor.Tensor) *tensor.Tensor {
	v, _ := tensor.AsFloat64(t)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return tensor.From(t.Shape, out)
}

// LoadCSV reads a CSV file with a header row. mapping names, for each
// array, the columns that form it, e.g. {"features": ["a","b"], "price": ["y"]};
// each array is (rows, len(columns)) float32. Empty cells and "nan" are NaN
// (a missing label when the column is a target).
func LoadCSV(r io.Reader, mapping map[string][]string) (*Dataset, error) {
	rd := csv.NewReader(r)
	header, err := rd.Read()
	if err != nil {
		return nil, fmt.Errorf("csv header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	cols := map[string][]int{}
	for name, names := range mapping {
		for _, n := range names {
			i, ok := col[n]
			if !ok {
				return nil, fmt.Errorf("csv: no column %q (columns are %s)", n, strings.Join(header, ", "))
			}
			cols[name] = append(cols[name], i)
		}
	}
	values := map[string][]float32{}
	rows := 0
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("csv line %d: %w", rows+2, err)
		}
		for name, idx := range cols {
			for _, i := range idx {
				if i >= len(rec) {
					return nil, fmt.Errorf("csv line %d: %d fields, column %q is field %d", rows+2, len(rec), header[i], i+1)
				}
				s := strings.TrimSpace(rec[i])
				v := math.NaN()
				if s != "" && !strings.EqualFold(s, "nan") {
					f, err := strconv.ParseFloat(s, 64)
					if err != nil {
						return nil, fmt.Errorf("csv line %d column %q: %q is not a number", rows+2, header[i], s)
					}
					v = f
				}
				values[name] = append(values[name], float32(v))
			}
		}
		rows++
	}
	arrays := map[string]*tensor.Tensor{}
	for name, v := range values {
		arrays[name] = tensor.From([]int{rows, len(cols[name])}, v)
	}
	if rows == 0 {
		for name, c := range cols {
			arrays[name] = tensor.From([]int{0, len(c)}, []float32{})
		}
	}
	d, err := NewDataset(arrays)
	if err != nil {
		return nil, err
	}
	d.csv = true
	return d, nil
}

// LoadCSVFile is LoadCSV on a file.
func LoadCSVFile(path string, mapping map[string][]string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := LoadCSV(f, mapping)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.Source = path
	return d, nil
}

// Take returns a new Dataset of the given rows (copied).
func (d *Dataset) Take(rows []int) *Dataset {
	out := &Dataset{Arrays: map[string]*tensor.Tensor{}, Rows: len(rows), Source: d.Source, csv: d.csv}
	for k, t := range d.Arrays {
		out.Arrays[k] = takeRows(t, rows)
	}
	return out
}

func takeRows(t *tensor.Tensor, rows []int) *tensor.Tensor {
	per := 1
	for _, s := range t.Shape[1:] {
		per *= s
	}
	shape := append([]int{len(rows)}, t.Shape[1:]...)
	out, _ := tensor.New(t.DType, shape)
	src, dst := reflect.ValueOf(t.Data), reflect.ValueOf(out.Data)
	for i, r := range rows {
		reflect.Copy(dst.Slice(i*per, (i+1)*per), src.Slice(r*per, (r+1)*per))
	}
	return out
}

// Split holds out the last fraction of rows as a validation set, as Keras'
// validation_split takes the tail. The fraction must leave at least one row
// on each side.
func (d *Dataset) Split(fraction float64) (train, val *Dataset, err error) {
	if d.mismatch != nil {
		return nil, nil, d.mismatch
	}
	if !(fraction > 0 && fraction < 1) {
		return nil, nil, fmt.Errorf("--val-split %v: want a fraction between 0 and 1 (exclusive), e.g. 0.2 holds out the last 20%% of the rows", fraction)
	}
	nVal := int(math.Round(float64(d.Rows) * fraction))
	if nVal < 1 || nVal >= d.Rows {
		return nil, nil, fmt.Errorf("--val-split %v of %d rows leaves %d training and %d validation rows; both need at least one", fraction, d.Rows, d.Rows-nVal, nVal)
	}
	idx := make([]int, d.Rows)
	for i := range idx {
		idx[i] = i
	}
	train, val = d.Take(idx[:d.Rows-nVal]), d.Take(idx[d.Rows-nVal:])
	train.firstRow, val.firstRow = d.firstRow, d.firstRow+d.Rows-nVal
	return train, val, nil
}

// Batches returns the row indices of each batch of an epoch: in order when
// shuffle is false (the last batch may be smaller), else a permutation drawn
// from (seed, epoch) so that a resumed run sees the same batches.
func (d *Dataset) Batches(size int, shuffle bool, seed uint64, epoch int) [][]int {
	if d.Rows <= 0 || size <= 0 {
		return nil
	}
	idx := make([]int, d.Rows)
	for i := range idx {
		idx[i] = i
	}
	if shuffle {
		rng := rand.New(rand.NewPCG(seed, uint64(epoch)+0x5348))
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	}
	var out [][]int
	for s := 0; s < len(idx); s += size {
		out = append(out, idx[s:min(s+size, len(idx))])
	}
	return out
}

// Fingerprint is a short hash of the data (FNV-1a over names and values),
// recorded in a trained model's provenance metadata.
func (d *Dataset) Fingerprint() string {
	h := fnv.New64a()
	names := make([]string, 0, len(d.Arrays))
	for k := range d.Arrays {
		names = append(names, k)
	}
	sort.Strings(names)
	var buf [8]byte
	for _, k := range names {
		h.Write([]byte(k))
		v, err := tensor.AsFloat64(d.Arrays[k])
		if err != nil {
			continue
		}
		for _, x := range v {
			binary.LittleEndian.PutUint64(buf[:], math.Float64bits(x))
			h.Write(buf[:])
		}
	}
	return fmt.Sprintf("fnv1a64:%016x/%d rows", h.Sum64(), d.Rows)
}
