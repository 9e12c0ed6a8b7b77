#!/usr/bin/python3
"""Generate the PyTorch reference fixtures for `mtlrun train` (issue 6).

For each recipe this trains, in PyTorch, a small multi-task model from fixed
initial weights and writes testdata/train/<recipe>/:

  model.onnx     the INITIAL model (torch.onnx.export, opset 14, dynamic batch
                 and time axes, named inputs/outputs), exported before training:
                 the Go trainer starts from it;
  train.npz      training arrays keyed by the ONNX input name(s) and by the
                 task (output) names: float32 (N, units) targets for mse/mae/bce,
                 int64 (N,) labels for sparse_cce; a NaN in a float target row
                 marks a missing label for that task;
  probe.npz      a probe batch of inputs, keyed by input name;
  expected.npz   the trained PyTorch model's float32 outputs on the probe batch,
                 keyed by output name;
  trained.onnx   the trained PyTorch model, exported the same way;
  recipe.json    exactly the settings used.

Training (all recipes): no shuffling, batches taken in order (N = 72 rows with
batch 16, so the last batch has 8 rows); per step: forward the batch,
total = sum_i weight_i * task_loss_i, backward, optional
torch.nn.utils.clip_grad_norm_(trainable params, clip_norm), optimizer.step(),
optimizer.zero_grad().

Task losses (masked rows, i.e. rows whose float target has a NaN, are dropped
before the mean):
  mse        mean over labelled rows x units of (p - y)^2
  mae        mean over labelled rows x units of |p - y|
  bce        torch.nn.BCELoss (log clamped at -100), mean
  sparse_cce on probabilities as Keras: p = probs / probs.sum(-1);
             p = clamp(p, 1e-7, 1 - 1e-7); mean of -log(p[label])

Validation done here: onnx.checker on every exported model; expected.npz is
recomputed from the trained PyTorch model and compared bit for bit; the
weights inside trained.onnx (and model.onnx) are read back, mapped to
PyTorch's layout (LSTM gates iofc -> ifgo, GRU zrh -> rzn) and the probe
outputs recomputed from them; optionally (--mtlrun BIN) the mtlrun CLI runs
trained.onnx on the probe batch as a further cross-check.

Run with /usr/bin/python3 (torch 1.13, onnx 1.12, numpy):
    /usr/bin/python3 scripts/gen_train_fixtures.py [--mtlrun /path/to/mtlrun]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "train")
N = 72
OPSET = 14

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float32)


# ------------------------------------------------------------------ models

class LSTMTwoHeads(nn.Module):
    """The seed model: (batch, time, 1) -> LSTM(64) -> last step -> two heads."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(1, 64, batch_first=True)
        self.head1 = nn.Linear(64, 1)
        self.head2 = nn.Linear(64, 1)

    def forward(self, x):
        y, _ = self.lstm(x)
        h = y[:, -1, :]
        return self.head1(h), self.head2(h)

    outputs = ["output1", "output2"]
    inputs = ["input"]
    trunk = ["lstm."]


class GRUThreeHeads(nn.Module):
    """(batch, time, 8) -> GRU(32) -> last step -> regression, class_probs, is_positive."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 32, batch_first=True)
        self.regression = nn.Linear(32, 1)
        self.classes = nn.Linear(32, 4)
        self.positive = nn.Linear(32, 1)

    def forward(self, x):
        y, _ = self.gru(x)
        h = y[:, -1, :]
        return (self.regression(h), torch.softmax(self.classes(h), dim=-1),
                torch.sigmoid(self.positive(h)))

    outputs = ["regression", "class_probs", "is_positive"]
    inputs = ["input"]
    trunk = ["gru."]


class MLPFourHeads(nn.Module):
    """features (batch, 20) -> 128 ReLU -> 64 ReLU -> price, category, churn, embedding."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 128)
        self.fc2 = nn.Linear(128, 64)
        self.price = nn.Linear(64, 1)
        self.category = nn.Linear(64, 5)
        self.churn = nn.Linear(64, 1)
        self.embedding = nn.Linear(64, 8)

    def forward(self, x):
        h = torch.relu(self.fc2(torch.relu(self.fc1(x))))
        return (self.price(h), torch.softmax(self.category(h), dim=-1),
                torch.sigmoid(self.churn(h)), torch.tanh(self.embedding(h)))

    outputs = ["price", "category", "churn", "embedding"]
    inputs = ["features"]
    trunk = ["fc1.", "fc2."]


class ReluRNNTwoHeads(nn.Module):
    """(batch, time, 8) -> RNN(24, ReLU) -> last step -> level, spread (ONNX RNN
    with activations=["Relu"]: training differentiates the function's own
    derivative, not tanh's)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(8, 24, nonlinearity="relu", batch_first=True)
        self.level = nn.Linear(24, 1)
        self.spread = nn.Linear(24, 2)

    def forward(self, x):
        y, _ = self.rnn(x)
        h = y[:, -1, :]
        return self.level(h), self.spread(h)

    outputs = ["level", "spread"]
    inputs = ["input"]
    trunk = ["rnn."]


# ------------------------------------------------------------------ data

def seq_data(rng, n, t):
    """Noisy sine windows (n, t, 1); output1 = next value, output2 = window mean."""
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    freq = rng.uniform(0.3, 0.9, size=(n, 1))
    amp = rng.uniform(0.5, 1.5, size=(n, 1))
    steps = np.arange(t + 1)[None, :]
    s = amp * np.sin(freq * steps + phase) + 0.05 * rng.standard_normal((n, t + 1))
    x = s[:, :t, None].astype(np.float32)
    y1 = s[:, t:t + 1].astype(np.float32)
    y2 = s[:, :t].mean(axis=1, keepdims=True).astype(np.float32)
    return x, y1, y2


def data_lstm():
    rng = np.random.default_rng(1)
    x, y1, y2 = seq_data(rng, N, 12)
    # Missing labels: rows without a target for one task (never a whole batch).
    y1[[5, 30, 61]] = np.nan
    y2[[12, 47, 70]] = np.nan
    px, _, _ = seq_data(np.random.default_rng(2), 8, 12)
    return {"input": x, "output1": y1, "output2": y2}, {"input": px}


def data_gru():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, 10, 8)).astype(np.float32)
    proj = rng.standard_normal((8, 4))
    mean = x.mean(axis=1)                       # (N, 8)
    reg = (mean @ rng.standard_normal((8, 1)) + 0.1 * x[:, -1, :1]).astype(np.float32)
    labels = np.argmax(mean @ proj + 0.3 * rng.standard_normal((N, 4)), axis=1).astype(np.int64)
    pos = (x[:, -3:, 0].sum(axis=1, keepdims=True) > 0).astype(np.float32)
    pos[[9, 40]] = np.nan                       # two rows without a bce label
    px = np.random.default_rng(4).standard_normal((8, 10, 8)).astype(np.float32)
    return ({"input": x, "regression": reg, "class_probs": labels, "is_positive": pos},
            {"input": px})


def data_rnn():
    rng = np.random.default_rng(7)
    x = (0.5 * rng.standard_normal((N, 10, 8))).astype(np.float32)
    level = x[:, -4:, :2].mean(axis=(1, 2))[:, None].astype(np.float32)
    spread = np.stack([x[:, :, 3].std(axis=1), np.abs(x[:, -1, 4])], axis=1).astype(np.float32)
    px = (0.5 * np.random.default_rng(8).standard_normal((8, 10, 8))).astype(np.float32)
    return {"input": x, "level": level, "spread": spread}, {"input": px}


def data_mlp():
    rng = np.random.default_rng(5)
    f = rng.standard_normal((N, 20)).astype(np.float32)
    w = rng.standard_normal((20, 1)) / np.sqrt(20)
    price = (f @ w + 0.1 * rng.standard_normal((N, 1))).astype(np.float32)
    logit = f[:, :3].sum(axis=1, keepdims=True) - 0.5 * f[:, 3:4]
    churn = (rng.uniform(size=(N, 1)) < 1 / (1 + np.exp(-2 * logit))).astype(np.float32)
    pf = np.random.default_rng(6).standard_normal((8, 20)).astype(np.float32)
    return {"features": f, "price": price, "churn": churn}, {"features": pf}


# ------------------------------------------------------------------ losses

def task_loss(kind, pred, target):
    if kind == "sparse_cce":
        p = pred / pred.sum(dim=-1, keepdim=True)
        p = torch.clamp(p, 1e-7, 1 - 1e-7)
        return -torch.log(p.gather(1, target.view(-1, 1))).mean()
    keep = ~torch.isnan(target).any(dim=1)
    p, y = pred[keep], target[keep]
    if kind == "mse":
        return ((p - y) ** 2).mean()
    if kind == "mae":
        return (p - y).abs().mean()
    if kind == "bce":
        return nn.functional.binary_cross_entropy(p, y)
    raise ValueError(kind)


# ------------------------------------------------------------------ export

def export(model, path, example):
    names = model.inputs + model.outputs
    axes = {}
    for n in model.inputs:
        axes[n] = {0: "batch", 1: "time"} if example.dim() == 3 else {0: "batch"}
    for n in model.outputs:
        axes[n] = {0: "batch"}
    model.eval()
    with torch.no_grad():
        torch.onnx.export(model, (example,), path, opset_version=OPSET,
                          input_names=model.inputs, output_names=model.outputs,
                          dynamic_axes=axes, do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    got = [o.name for o in m.graph.output]
    assert got == model.outputs, (got, names)
    return m


def reorder(w, kind):
    """ONNX gate blocks (axis 0) -> PyTorch's order."""
    if kind == "RNN":
        return w
    if kind == "LSTM":   # ONNX i o f c -> torch i f g o
        i, o, f, c = np.split(w, 4, axis=0)
        return np.concatenate([i, f, c, o], axis=0)
    z, r, h = np.split(w, 3, axis=0)   # ONNX z r h -> torch r z n
    return np.concatenate([r, z, h], axis=0)


def load_onnx_weights(model_cls, m):
    """A PyTorch model whose weights are read back from ONNX model m."""
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    net = model_cls()
    sd = {}
    for node in m.graph.node:
        if node.op_type in ("LSTM", "GRU", "RNN"):
            mod = node.op_type.lower()
            W, R, B = (inits[node.input[k]][0] for k in (1, 2, 3))
            hid = R.shape[1]
            g = {"LSTM": 4, "GRU": 3, "RNN": 1}[node.op_type]
            sd[mod + ".weight_ih_l0"] = reorder(W, node.op_type)
            sd[mod + ".weight_hh_l0"] = reorder(R, node.op_type)
            sd[mod + ".bias_ih_l0"] = reorder(B[:g * hid], node.op_type)
            sd[mod + ".bias_hh_l0"] = reorder(B[g * hid:], node.op_type)
    for k in net.state_dict():
        if k not in sd:
            sd[k] = inits[k]
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd.items()})
    return net


# ------------------------------------------------------------------ recipes

def make_optimizer(rec, params):
    if rec["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=rec["lr"], momentum=rec["momentum"],
                               weight_decay=rec["weight_decay"])
    if rec["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=rec["lr"], weight_decay=rec["weight_decay"])
    if rec["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=rec["lr"], weight_decay=rec["weight_decay"])
    raise ValueError(rec["optimizer"])


def recipe(losses, weights, opt, lr, momentum=0.0, wd=0.0, epochs=2, freeze="none", clip=0.0, **extra):
    r = {"losses": losses, "loss_weights": weights, "optimizer": opt, "lr": lr,
         "momentum": momentum, "weight_decay": wd, "batch": 16, "epochs": epochs,
         "shuffle": False, "freeze": freeze, "clip_norm": clip, "seed": 0}
    r.update(extra)
    return r


def initial_state(model_cls, seed):
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in model_cls().state_dict().items()}


def train(model, rec, data):
    if rec["freeze"] == "trunk":
        for name, p in model.named_parameters():
            if any(name.startswith(t) for t in model.trunk):
                p.requires_grad_(False)
    elif rec["freeze"] != "none":
        raise ValueError(rec["freeze"])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(rec, params)
    tensors = {k: torch.from_numpy(v) for k, v in data.items()}
    bs = rec["batch"]
    log = []
    model.train()
    for epoch in range(rec["epochs"]):
        for start in range(0, N, bs):
            sl = slice(start, min(start + bs, N))
            outs = dict(zip(model.outputs, model(*(tensors[n][sl] for n in model.inputs))))
            total = 0.0
            for task, kind in rec["losses"].items():
                total = total + rec["loss_weights"][task] * task_loss(kind, outs[task], tensors[task][sl])
            total.backward()
            if rec["clip_norm"] > 0:
                torch.nn.utils.clip_grad_norm_(params, rec["clip_norm"])
            opt.step()
            opt.zero_grad()
            log.append(float(total))
        print(f"    epoch {epoch + 1}: last batch loss {log[-1]:.6f}")
    return log


def run(model, probe):
    model.eval()
    with torch.no_grad():
        outs = model(*(torch.from_numpy(probe[n]) for n in model.inputs))
    return {n: o.numpy().astype(np.float32) for n, o in zip(model.outputs, outs)}


RECIPES = [
    ("a_lstm_sgd", LSTMTwoHeads, data_lstm,
     recipe({"output1": "mse", "output2": "mse"}, {"output1": 1.0, "output2": 0.5}, "sgd", 0.05)),
    ("b_lstm_adam_frozen_trunk", LSTMTwoHeads, data_lstm,
     recipe({"output1": "mse", "output2": "mae"}, {"output1": 1.0, "output2": 1.0}, "adam", 0.01,
            freeze="trunk")),
    ("c_lstm_sgd_momentum_clip", LSTMTwoHeads, data_lstm,
     recipe({"output1": "mse", "output2": "mse"}, {"output1": 1.0, "output2": 1.0}, "sgd", 0.05,
            momentum=0.9, clip=0.5)),
    ("d_gru_three_tasks", GRUThreeHeads, data_gru,
     recipe({"regression": "mse", "class_probs": "sparse_cce", "is_positive": "bce"},
            {"regression": 1.0, "class_probs": 0.5, "is_positive": 2.0}, "adam", 0.005)),
    ("e_mlp_adamw_two_of_four", MLPFourHeads, data_mlp,
     recipe({"price": "mse", "churn": "bce"}, {"price": 1.0, "churn": 1.0}, "adamw", 0.01,
            wd=0.05, epochs=3, decay_params_without_grad=False)),
    ("f_rnn_relu_adam", ReluRNNTwoHeads, data_rnn,
     recipe({"level": "mse", "spread": "mae"}, {"level": 1.0, "spread": 0.5}, "adam", 0.01, epochs=3)),
]

# All three LSTM recipes start from the same initial weights.
INIT_SEED = {LSTMTwoHeads: 0, GRUThreeHeads: 10, MLPFourHeads: 20, ReluRNNTwoHeads: 30}


def max_diff(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mtlrun", help="mtlrun binary for an extra cross-check of trained.onnx")
    args = ap.parse_args()
    if os.path.isdir(ROOT):
        for d in os.listdir(ROOT):
            if os.path.isdir(os.path.join(ROOT, d)):
                shutil.rmtree(os.path.join(ROOT, d))
    os.makedirs(ROOT, exist_ok=True)
    for name, cls, data_fn, rec in RECIPES:
        print(name)
        out = os.path.join(ROOT, name)
        os.makedirs(out)
        init = initial_state(cls, INIT_SEED[cls])
        data, probe = data_fn()
        example = torch.from_numpy(probe[cls.inputs[0]])

        model = cls()
        model.load_state_dict(init)
        before = run(model, probe)
        m0 = export(model, os.path.join(out, "model.onnx"), example)
        back0 = run(load_onnx_weights(cls, m0), probe)
        assert max_diff(before, back0) < 1e-6, "model.onnx weights do not read back"

        frozen_before = {k: v.clone() for k, v in model.state_dict().items()}
        log = train(model, rec, data)
        assert all(np.isfinite(log)), log
        if rec["freeze"] == "trunk":
            for k, v in model.state_dict().items():
                if any(k.startswith(t) for t in cls.trunk):
                    assert torch.equal(v, frozen_before[k]), k
        # Heads without a loss keep their weights (AdamW skips params without grad).
        for k, v in model.state_dict().items():
            head = k.split(".")[0]
            if cls is MLPFourHeads and head in ("category", "embedding"):
                assert torch.equal(v, frozen_before[k]), k

        expected = run(model, probe)
        m1 = export(model, os.path.join(out, "trained.onnx"), example)
        np.savez(os.path.join(out, "train.npz"), **data)
        np.savez(os.path.join(out, "probe.npz"), **probe)
        np.savez(os.path.join(out, "expected.npz"), **expected)
        with open(os.path.join(out, "recipe.json"), "w") as fh:
            json.dump(rec, fh, indent=2)
            fh.write("\n")

        # Validation.
        onnx.checker.check_model(onnx.load(os.path.join(out, "trained.onnx")))
        again = run(model, probe)
        stored = dict(np.load(os.path.join(out, "expected.npz")))
        for k in expected:
            assert stored[k].dtype == np.float32 and np.array_equal(stored[k], again[k]), k
        back1 = run(load_onnx_weights(cls, m1), probe)
        d1 = max_diff(expected, back1)
        assert d1 < 1e-6, f"trained.onnx weights disagree with PyTorch by {d1}"
        moved = max_diff(before, expected)
        print(f"    probe outputs moved by up to {moved:.4g} in training; trained.onnx read back: {d1:.3g}")
        if args.mtlrun:
            with tempfile.TemporaryDirectory() as td:
                res = os.path.join(td, "out.npz")
                proc = subprocess.run([args.mtlrun, "run", os.path.join(out, "trained.onnx"),
                                       "--input", os.path.join(out, "probe.npz"), "--out", res],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if proc.returncode != 0:
                    print("    mtlrun run failed (cross-check skipped):", proc.stderr.strip().splitlines()[:1])
                    continue
                got = dict(np.load(res))
                d2 = max_diff(expected, {k: got[k] for k in expected})
                print(f"    mtlrun run trained.onnx vs PyTorch: {d2:.3g}")
                assert d2 < 1e-5, d2


if __name__ == "__main__":
    main()
