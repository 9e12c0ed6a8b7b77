#!/usr/bin/python3
"""Markdown tables from the JSON lines of scripts/bench_models.sh.

    /usr/bin/python3 scripts/bench_table.py main.jsonl [grid.jsonl ...]

Prints one row per (model, batch, time, kernel set, onnxruntime's
kernels): p50 of mtlrun and of onnxruntime in ms, the ratio, and each runtime's GFLOP/s counting only the
multiply-adds of the products (2 flops each; gate and activation
arithmetic not counted), so rows of different sizes compare.
"""
import json
import os
import re
import sys


def flops_per_row(model, T):
    """Multiply-add flops of one batch row of one run."""
    name = os.path.basename(os.path.dirname(model))
    m = re.match(r"lstm_h(\d+)$", name)
    if m:
        h = int(m.group(1))
        return T * 2 * 4 * h * (16 + h) + 2 * h
    if name == "seed_lstm":
        return T * 2 * 4 * 64 * (1 + 64) + 2 * 2 * 64
    if name == "lstm2x256":
        return T * 2 * 4 * 256 * ((16 + 256) + (256 + 256)) + 3 * 2 * 256
    if name == "bigru128":
        return 2 * T * 2 * 3 * 128 * (32 + 128) + 2 * 6 * 256
    if name == "mlp_gelu":
        return 2 * (256 * 1024 + 1024 * 512 + 512 * (1 + 10 + 1 + 16 + 3))
    return None


def main():
    print("| model | kernels | onnxruntime | batch | T | mtlrun p50 ms | onnxruntime p50 ms | ratio | mtlrun GFLOP/s | ort GFLOP/s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for path in sys.argv[1:]:
        for line in open(path):
            d = json.loads(line)
            f = flops_per_row(d["model"], d["time"])
            g1 = g2 = "-"
            if f:
                work = f * d["batch"]
                g1 = "%.1f" % (work / d["mtlrun_p50_ms"] / 1e6)
                g2 = "%.1f" % (work / d["ort_p50_ms"] / 1e6)
            name = os.path.basename(os.path.dirname(d["model"]))
            t = d["time"] if not name.startswith("mlp") else "-"
            print("| %s | %s | %s | %d | %s | %.3f | %.3f | **%.2f** | %s | %s |" % (
                name, d["kernels"], d.get("ort", "native"), d["batch"], t, d["mtlrun_p50_ms"], d["ort_p50_ms"], d["ratio_p50"], g1, g2))


if __name__ == "__main__":
    main()
