package train

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtlrun/mtlrun/tensor"
)

// killTrainer is the trainer both sides of the kill loop use: a model
// whose checkpoint is a few hundred kilobytes (so that a write takes a
// while), Adam (two moment buffers) and DWA (a loss history).
func killTrainer(t testing.TB) *Trainer {
	m := tinyModel(2, 16, 128, "Tanh", 3)
	tr, err := NewTrainer(m, Config{Losses: tinyLosses(2), Optimizer: OptimizerConfig{Kind: Adam, LR: 0.01},
		Weighting: WeightingConfig{Kind: DWA}})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// setGeneration makes every saved number of the trainer's state equal k,
// so that any mix of two checkpoints shows.
func setGeneration(tr *Trainer, k int) {
	v := float32(k)
	slots1, slots2 := map[string][]float32{}, map[string][]float32{}
	for _, p := range tr.params {
		w := tr.model.Graph.Initializers[p]
		vals := make([]float32, w.Len())
		for i := range vals {
			vals[i] = v
		}
		tr.model.Graph.Initializers[p] = tensor.From(w.Shape, vals)
		slots1[p] = append([]float32(nil), vals...)
		slots2[p] = append([]float32(nil), vals...)
	}
	tr.opt.Restore(OptimizerState{Kind: Adam, Step: k, LR: 0.01, Slots1: slots1, Slots2: slots2})
	tr.weighting.Restore([]byte(fmt.Sprintf(`{"history":[[%d,%d]],"w":[%d,%d]}`, k, k, k, k)))
	tr.run.Epoch, tr.run.Step = k, k
}

// generation reads back the generation of a loaded trainer, or reports
// the first number that disagrees (a mixed state).
func generation(tr *Trainer) (int, error) {
	k := tr.run.Epoch
	v := float32(k)
	if tr.run.Step != k {
		return k, fmt.Errorf("epoch %d but step %d", k, tr.run.Step)
	}
	st := tr.opt.State()
	if st.Step != k {
		return k, fmt.Errorf("epoch %d but optimiser step %d", k, st.Step)
	}
	for _, p := range tr.params {
		for _, m := range []map[string][]float32{{p: tr.model.Graph.Initializers[p].Float32s()}, st.Slots1, st.Slots2} {
			for i, x := range m[p] {
				if x != v {
					return k, fmt.Errorf("epoch %d but %s[%d] = %v", k, p, i, x)
				}
			}
		}
	}
	d := tr.weighting.(*dwa)
	if len(d.history) != 1 || d.history[0][0] != float64(k) || d.w[1] != float64(k) {
		return k, fmt.Errorf("epoch %d but DWA state %v %v", k, d.history, d.w)
	}
	return k, nil
}

// TestCheckpointKillHelper is the process the kill loop kills: it resumes
// from the checkpoint (if any) and then writes checkpoints of increasing
// generation until it is killed.
func TestCheckpointKillHelper(t *testing.T) {
	dir := os.Getenv("MTLRUN_KILL_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process of TestCheckpointSurvivesKills")
	}
	tr := killTrainer(t)
	k := 0
	if _, err := os.Stat(dir); err == nil || fileExists(dir+".old") {
		if err := tr.loadCheckpoint(dir); err != nil {
			fmt.Println("refused:", err)
			os.Exit(3)
		}
		k = tr.run.Epoch
	}
	fmt.Println("ready")
	for {
		k++
		setGeneration(tr, k)
		if err := tr.saveCheckpoint(dir); err != nil {
			fmt.Println("save:", err)
			os.Exit(4)
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestCheckpointSurvivesKills: SIGKILL at random moments while checkpoints
// are being written; after every kill the checkpoint loads as one
// consistent generation, never older than the last one seen, or is
// refused with a clear error. It never mixes two generations.
func TestCheckpointSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kill loop: -short")
	}
	trials := 200
	if s := os.Getenv("MTLRUN_KILL_TRIALS"); s != "" {
		trials, _ = strconv.Atoi(s)
	}
	dir := filepath.Join(t.TempDir(), "ck")
	rng := rand.New(rand.NewPCG(13, 13))
	last, consistent, refused, midWrite, fromOld := 0, 0, 0, 0, 0
	for i := 0; i < trials; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCheckpointKillHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), "MTLRUN_KILL_HELPER_DIR="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("trial %d: helper said %q", i, line)
		}
		time.Sleep(time.Duration(rng.IntN(40000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if fileExists(dir+".tmp") || fileExists(dir+".old") {
			midWrite++
		}
		if !fileExists(filepath.Join(dir, stateFile)) {
			fromOld++
		}
		if last == 0 && !fileExists(filepath.Join(dir, stateFile)) && !fileExists(filepath.Join(dir+".old", stateFile)) {
			continue // killed before the first checkpoint was complete
		}
		tr := killTrainer(t)
		err = tr.loadCheckpoint(dir)
		if err != nil {
			var ce *CheckpointError
			if !errors.As(err, &ce) {
				t.Fatalf("trial %d: resume failed without a clear error: %v", i, err)
			}
			refused++
			t.Logf("trial %d: refused: %v", i, err)
			continue
		}
		k, err := generation(tr)
		if err != nil {
			t.Fatalf("trial %d: MIXED STATE: %v", i, err)
		}
		if k < last {
			t.Fatalf("trial %d: resumed generation %d after having seen %d", i, k, last)
		}
		last = k
		consistent++
	}
	t.Logf("%d kills: %d consistent resumes (last generation %d), %d refused, 0 mixed; %d kills left a write in progress, %d resumed from the .old copy",
		trials, consistent, last, refused, midWrite, fromOld)
	if refused > 0 {
		t.Errorf("%d of %d resumes refused; the swap should always leave one complete checkpoint", refused, trials)
	}
}

func BenchmarkSaveCheckpoint(b *testing.B) {
	tr := killTrainer(b)
	dir := filepath.Join(b.TempDir(), "ck")
	for i := 0; i < b.N; i++ {
		setGeneration(tr, i+1)
		if err := tr.saveCheckpoint(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCheckpointRecoveryAndRefusals: the states a crash or a user can leave
// behind. Between the two renames of a save only DIR.old exists: resume
// takes it and the next save cleans up. Weights from another save beside
// state.json (the torn checkpoint of issue 13), a truncated state.json or a
// folder of other files are refused with a clear error.
func TestCheckpointRecoveryAndRefusals(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "ck")
	tr := killTrainer(t)
	setGeneration(tr, 5)
	if err := tr.saveCheckpoint(dir); err != nil {
		t.Fatal(err)
	}
	// a crash between "DIR → DIR.old" and "DIR.tmp → DIR"
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir+".tmp", 0o755)
	os.WriteFile(filepath.Join(dir+".tmp", weightsFile), []byte("half"), 0o644)
	back := killTrainer(t)
	if err := back.loadCheckpoint(dir); err != nil {
		t.Fatalf("resume from DIR.old: %v", err)
	}
	if k, err := generation(back); err != nil || k != 5 {
		t.Fatalf("resumed generation %d: %v", k, err)
	}
	setGeneration(back, 6)
	if err := back.saveCheckpoint(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir + ".old", dir + ".tmp"} {
		if fileExists(p) {
			t.Errorf("%s left behind after a save", p)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, stateFile)); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("state.json: %v %v", err, st)
	}

	// torn: weights.npz of generation 7 beside state.json of generation 6
	other := filepath.Join(root, "other")
	setGeneration(back, 7)
	if err := back.saveCheckpoint(other); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(other, weightsFile))
	os.WriteFile(filepath.Join(dir, weightsFile), data, 0o644)
	err := killTrainer(t).loadCheckpoint(dir)
	var ce *CheckpointError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "weights.npz does not match state.json") {
		t.Errorf("torn checkpoint: got %v", err)
	}
	// truncated state.json
	st, _ := os.ReadFile(filepath.Join(other, stateFile))
	os.WriteFile(filepath.Join(other, stateFile), st[:len(st)/2], 0o644)
	if err := killTrainer(t).loadCheckpoint(other); !errors.As(err, &ce) || !strings.Contains(err.Error(), "state.json is damaged") {
		t.Errorf("truncated state: got %v", err)
	}
	// a folder holding other files is not replaced
	foreign := filepath.Join(root, "mine")
	os.MkdirAll(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("keep"), 0o644)
	if err := back.saveCheckpoint(foreign); err == nil || !strings.Contains(err.Error(), "notes.txt, which is not part of a checkpoint") {
		t.Errorf("foreign folder: got %v", err)
	}
	if !fileExists(filepath.Join(foreign, "notes.txt")) {
		t.Errorf("a user's file was removed")
	}
}
