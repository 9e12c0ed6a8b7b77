#!/bin/sh
# Benchmark grid of issue 16 (docs/PERFORMANCE.md, "Larger models" and
# "Cost against size"): mtlrun against onnxruntime, interleaved, one thread,
# one JSON object per line on stdout (model, batch, time, kernel set, p50s,
# their ratio, the median of the run-by-run ratios, "paired_p50", and the
# ratio of the fastest runs, "ratio_min", what quiet moments allow). Needs
# the models of scripts/gen_bench_models.py and
# ONNXRUNTIME_LIB (scripts/install-onnxruntime.sh).
#
#   sh scripts/bench_models.sh main   > main.jsonl   # every issue-16 row (seed LSTM, GRU3, MLP4, the larger models), avx512 and avx2
#   sh scripts/bench_models.sh avx2   > avx2.jsonl   # avx2 against onnxruntime's AVX-512 and its AVX2 kernels
#   sh scripts/bench_models.sh grid   > grid.jsonl   # sequence length, batch and hidden size axes
#   /usr/bin/python3 scripts/bench_table.py main.jsonl grid.jsonl
#
# Run counts are chosen so each point takes a few seconds on one core; the
# kernel set is forced with MTLRUN_KERNELS (a set the CPU lacks is refused).
# onnxruntime picks its own kernels (AVX-512 where the CPU has it); "avx2"
# also runs it from the copy scripts/ortavx2 makes, whose dispatch skips
# AVX-512: both sides then run what an AVX2-only server runs. Each line
# says which onnxruntime ran ("ort": "native" or "avx2").
set -e
cd "$(dirname "$0")/.."
M=${MTLRUN:-./mtlrun}
[ -x "$M" ] || go build -o "$M" ./cmd/mtlrun
[ -f bench/models/lstm2x256/model.onnx ] || /usr/bin/python3 scripts/gen_bench_models.py >&2
one() { # kernels model batch time runs
	MTLRUN_KERNELS=$1 "$M" bench "$2" --batch "$3" --time "$4" --runs "$5" --threads 1 --vs-ort --json </dev/null |
		/usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); r=d["results"]; print(json.dumps({"model": d["model"], "batch": d["batch"], "time": '"$4"', "kernels": d["kernel_set"], "ort": "'"${ORT:-native}"'", "mtlrun_p50_ms": r[0]["p50_ms"], "ort_p50_ms": r[1]["p50_ms"], "ratio_p50": d["ratio"]["p50"], "paired_p50": d["ratio"]["paired_p50"], "ratio_min": d["ratio"]["min"], "runs": '"$5"'}))'
}
main_rows() { # model batch time runs, one row each
	cat <<-EOF
	models/seed_lstm/model.onnx 1 50 1000
	models/seed_lstm/model.onnx 64 50 200
	testdata/pytorch/gru3/model.onnx 1 50 2000
	testdata/pytorch/gru3/model.onnx 64 50 300
	models/mlp4/model.onnx 1 1 20000
	models/mlp4/model.onnx 64 1 5000
	bench/models/lstm2x256/model.onnx 1 100 200
	bench/models/lstm2x256/model.onnx 64 100 40
	bench/models/bigru128/model.onnx 1 100 400
	bench/models/bigru128/model.onnx 64 100 40
	bench/models/mlp_gelu/model.onnx 1 1 1000
	bench/models/mlp_gelu/model.onnx 64 1 100
	EOF
}
case "$1" in
main)
	for k in avx512 avx2; do
		main_rows | while read -r model batch time runs; do one $k "$model" "$batch" "$time" "$runs"; done
	done ;;
avx2)
	# onnxruntime's AVX2 kernels (the tool refuses a build it does not know)
	lib=$(go run ./scripts/ortavx2)
	main_rows | while read -r model batch time runs; do
		one avx2 "$model" "$batch" "$time" "$runs"
		ONNXRUNTIME_LIB=$lib ORT=avx2 one avx2 "$model" "$batch" "$time" "$runs"
	done ;;
grid)
	k=${KERNELS:-avx2}
	for t in 1 10 100 1000; do one $k bench/models/lstm_h128/model.onnx 1 $t $((20000 / t + 10)); done
	for b in 1 16 64 256 1024; do one $k bench/models/lstm_h128/model.onnx $b 50 $((2000 / b + 5)); done
	for h in 32 64 128 256 512; do
		one $k bench/models/lstm_h$h/model.onnx 1 50 $((40000 / h))
		one $k bench/models/lstm_h$h/model.onnx 64 50 $((2000 / h + 5))
	done ;;
*) echo "usage: $0 main|avx2|grid" >&2; exit 2 ;;
esac
