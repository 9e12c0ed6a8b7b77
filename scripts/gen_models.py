#!/usr/bin/python3
"""Generate mtlrun's sample models and PyTorch fixtures.

Every model is a small multi-task network built in PyTorch, randomly
initialised from a fixed seed, exported with torch.onnx.export (opset 17,
symbolic batch and time axes, one named output per task) and written in the
ONNX model-zoo layout:

    DIR/model.onnx
    DIR/test_data_set_K/input_N.pb, output_N.pb

The reference outputs are computed by the PyTorch model itself (eval mode,
float32) on inputs whose batch size and sequence length differ from the ones
used for export, so a runtime that baked the export shapes in would fail.

Run from anywhere with /usr/bin/python3 (torch 1.13, onnx 1.12, numpy):

    /usr/bin/python3 scripts/gen_models.py

It rewrites models/seed_lstm, models/mlp4 and testdata/pytorch/* and prints
a summary of each exported graph (opset, op types, inputs and outputs with
their dims). The output is byte-for-byte reproducible.
"""
import collections
import io
import os
import shutil
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OPSET = 17

# Shapes used for export and for the test sets: (batch, time). The export
# shape appears in none of the test sets.
EXPORT_BT = (2, 5)
TEST_BT = [(1, 7), (5, 13), (3, 1)]


# ----------------------------------------------------------------- models

class SeedLSTM(nn.Module):
    """input (B, T, 1) -> LSTM(64) -> last hidden -> output1, output2 (Linear 1)."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(1, 64, batch_first=True)
        self.head1 = nn.Linear(64, 1)
        self.head2 = nn.Linear(64, 1)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        h = h[-1]
        return self.head1(h), self.head2(h)


class GRU3(nn.Module):
    """input (B, T, 8) -> GRU(32) -> last hidden -> regression, class_probs, is_positive."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 32, batch_first=True)
        self.regression = nn.Linear(32, 1)
        self.classes = nn.Linear(32, 4)
        self.positive = nn.Linear(32, 1)

    def forward(self, x):
        _, h = self.gru(x)
        h = h[-1]
        return (self.regression(h),
                torch.softmax(self.classes(h), dim=-1),
                torch.sigmoid(self.positive(h)))


class BiLSTM2MeanPool(nn.Module):
    """input (B, T, 6) -> 2-layer bidirectional LSTM(16) -> mean over time -> score, label_logits."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 16, num_layers=2, bidirectional=True, batch_first=True)
        self.score = nn.Linear(32, 1)
        self.label = nn.Linear(32, 3)

    def forward(self, x):
        y, _ = self.lstm(x)
        m = y.mean(dim=1)
        return self.score(m), self.label(m)


class MLP4(nn.Module):
    """features (B, 20) -> 128 -> 64 -> price, category, churn, embedding."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.price = nn.Linear(64, 1)
        self.category = nn.Linear(64, 5)
        self.churn = nn.Linear(64, 1)
        self.embedding = nn.Linear(64, 8)

    def forward(self, x):
        h = self.trunk(x)
        return (self.price(h),
                torch.softmax(self.category(h), dim=-1),
                torch.sigmoid(self.churn(h)),
                torch.tanh(self.embedding(h)))


class EmbedLSTM(nn.Module):
    """tokens int64 (B, T) -> Embedding(50, 16) -> LSTM(32) -> last hidden -> intent, sentiment."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 32, batch_first=True)
        self.intent = nn.Linear(32, 6)
        self.sentiment = nn.Linear(32, 3)

    def forward(self, tokens):
        _, (h, _) = self.lstm(self.embed(tokens))
        h = h[-1]
        return (torch.log_softmax(self.intent(h), dim=-1),
                torch.log_softmax(self.sentiment(h), dim=-1))


class Conv1dGAP(nn.Module):
    """input (B, T, 4) -> NCW -> Conv1d(4->16,k3,p1) -> ReLU -> Conv1d(16->16,k3) -> ReLU -> mean over time."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(4, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(16, 16, kernel_size=3)
        self.level = nn.Linear(16, 1)
        self.trend = nn.Linear(16, 3)

    def forward(self, x):
        h = x.transpose(1, 2)
        h = torch.relu(self.conv1(h))
        h = torch.relu(self.conv2(h))
        h = h.mean(dim=2)
        return self.level(h), torch.softmax(self.trend(h), dim=-1)


# Each spec: folder, model class, seed, input name, feature count (None for
# token input, 0 for no time axis), output names, test (batch, time) shapes.
SPECS = [
    dict(dir="models/seed_lstm", cls=SeedLSTM, seed=1, input="input", features=1,
         outputs=["output1", "output2"], tests=TEST_BT),
    dict(dir="models/mlp4", cls=MLP4, seed=4, input="features", features=20, no_time=True,
         outputs=["price", "category", "churn", "embedding"], tests=[(1, None), (5, None), (3, None)]),
    dict(dir="testdata/pytorch/gru3", cls=GRU3, seed=2, input="input", features=8,
         outputs=["regression", "class_probs", "is_positive"], tests=TEST_BT),
    dict(dir="testdata/pytorch/bilstm2_meanpool", cls=BiLSTM2MeanPool, seed=3, input="input", features=6,
         outputs=["score", "label_logits"], tests=TEST_BT),
    dict(dir="testdata/pytorch/embed_lstm", cls=EmbedLSTM, seed=5, input="tokens", features=None, vocab=50,
         outputs=["intent", "sentiment"], tests=TEST_BT),
    # The unpadded second convolution needs T >= 3, so the third set uses T=3.
    dict(dir="testdata/pytorch/conv1d_gap", cls=Conv1dGAP, seed=6, input="input", features=4,
         outputs=["level", "trend"], tests=[(1, 7), (5, 13), (3, 3)]),
]


# ----------------------------------------------------------------- helpers

def make_input(spec, rng, batch, time):
    if spec.get("vocab"):
        return rng.randint(0, spec["vocab"], size=(batch, time)).astype(np.int64)
    if spec.get("no_time"):
        return rng.standard_normal((batch, spec["features"])).astype(np.float32)
    return rng.standard_normal((batch, time, spec["features"])).astype(np.float32)


def write_pb(path, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array).SerializeToString())


def dims(value_info):
    out = []
    for d in value_info.type.tensor_type.shape.dim:
        out.append(d.dim_param if d.HasField("dim_param") else d.dim_value)
    return out


def summarize(path, spec):
    model = onnx.load(path)
    onnx.checker.check_model(model)
    g = model.graph
    ops = collections.Counter(n.op_type for n in g.node)
    init = {i.name for i in g.initializer}
    feeds = [i for i in g.input if i.name not in init]
    params = sum(int(np.prod(i.dims)) for i in g.initializer)
    print("%s: opset %s, %d nodes, %d parameters, %d bytes" % (
        spec["dir"], [(o.domain or "ai.onnx", o.version) for o in model.opset_import],
        len(g.node), params, os.path.getsize(path)))
    print("  ops:", ", ".join("%s×%d" % kv for kv in sorted(ops.items())))
    for v in feeds:
        print("  input  %-14s %s %s" % (v.name, onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type), dims(v)))
    for v in g.output:
        print("  output %-14s %s %s" % (v.name, onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type), dims(v)))

    # The checks the brief asks for: names as required, batch (and time) symbolic.
    assert [v.name for v in feeds] == [spec["input"]], [v.name for v in feeds]
    assert [v.name for v in g.output] == spec["outputs"], [v.name for v in g.output]
    d = dims(feeds[0])
    assert d[0] == "batch", d
    if not spec.get("no_time"):
        assert d[1] == "time", d
    for v in g.output:
        assert dims(v)[0] == "batch", (v.name, dims(v))
        assert all(isinstance(x, str) or x > 0 for x in dims(v)[1:]), (v.name, dims(v))
    # A recurrent state initializer of shape [dirs, batch, hidden] would be
    # the export batch baked in (the numpy check below would also catch it).
    for t in g.initializer:
        if len(t.dims) == 3 and t.dims[1] == EXPORT_BT[0]:
            raise AssertionError("initializer %s has the export batch baked in: %s" % (t.name, list(t.dims)))


# ------------------------------------------- independent numpy check
#
# A deliberately plain interpreter for exactly the ops these exports use,
# written from the ONNX operator spec. Every test set is run through the
# exported graph with it and compared to the PyTorch reference, so a fixture
# whose ONNX graph disagrees with PyTorch at the test shapes (e.g. an export
# that baked in the example's batch size or length) is never written silently.

def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _lstm(x, w, r, b, h0, c0, direction):
    t_len, batch, _ = x.shape
    dirs, hid = w.shape[0], r.shape[-1]
    y = np.zeros((t_len, dirs, batch, hid), x.dtype)
    yh = np.zeros((dirs, batch, hid), x.dtype)
    yc = np.zeros((dirs, batch, hid), x.dtype)
    for d in range(dirs):
        h = np.zeros((batch, hid), x.dtype) if h0 is None else h0[d]
        c = np.zeros((batch, hid), x.dtype) if c0 is None else c0[d]
        bias = np.zeros(8 * hid, x.dtype) if b is None else b[d]
        steps = range(t_len) if (direction == "forward" or d == 0) and direction != "reverse" else range(t_len - 1, -1, -1)
        for t in steps:
            g = x[t] @ w[d].T + h @ r[d].T + bias[:4 * hid] + bias[4 * hid:]
            i, o, f, cc = np.split(g, 4, axis=1)  # ONNX gate order i, o, f, c
            c = _sig(f) * c + _sig(i) * np.tanh(cc)
            h = _sig(o) * np.tanh(c)
            y[t, d] = h
        yh[d], yc[d] = h, c
    return y, yh, yc


def _gru(x, w, r, b, h0, linear_before_reset):
    t_len, batch, _ = x.shape
    hid = r.shape[-1]
    assert w.shape[0] == 1 and linear_before_reset == 1
    h = np.zeros((batch, hid), x.dtype) if h0 is None else h0[0]
    wb, rb = (np.zeros(3 * hid, x.dtype),) * 2 if b is None else (b[0][:3 * hid], b[0][3 * hid:])
    y = np.zeros((t_len, 1, batch, hid), x.dtype)
    for t in range(t_len):
        gx = x[t] @ w[0].T + wb  # gate order z, r, h
        gh = h @ r[0].T + rb
        z = _sig(gx[:, :hid] + gh[:, :hid])
        rr = _sig(gx[:, hid:2 * hid] + gh[:, hid:2 * hid])
        hh = np.tanh(gx[:, 2 * hid:] + rr * gh[:, 2 * hid:])
        h = (1 - z) * hh + z * h
        y[t, 0] = h
    return y, h[None]


def _conv1d(x, w, b, pads, strides, dilations, group):
    assert group == 1 and strides == [1] and dilations == [1]
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1])))
    k = w.shape[2]
    out_w = x.shape[2] - k + 1
    y = np.zeros((x.shape[0], w.shape[0], out_w), np.float64)
    for j in range(k):
        y += np.einsum("bcw,oc->bow", x[:, :, j:j + out_w], w[:, :, j])
    if b is not None:
        y += b[None, :, None]
    return y.astype(x.dtype)


def run_numpy(model, feeds):
    env = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    env.update(feeds)
    env[""] = None
    for n in model.graph.node:
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        ins = [env[i] for i in n.input]
        op = n.op_type
        if op == "Constant":
            outs = [numpy_helper.to_array(a["value"])]
        elif op == "Shape":
            outs = [np.array(ins[0].shape, np.int64)]
        elif op == "Gather":
            outs = [np.take(ins[0], ins[1], axis=a.get("axis", 0))]
        elif op == "Unsqueeze":
            outs = [np.expand_dims(ins[0], tuple(int(v) for v in ins[1]))]
        elif op == "Concat":
            outs = [np.concatenate(ins, axis=a["axis"])]
        elif op == "ConstantOfShape":
            v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
            outs = [np.full(tuple(ins[0]), v.reshape(-1)[0], v.dtype)]
        elif op == "Transpose":
            outs = [np.transpose(ins[0], a.get("perm"))]
        elif op == "Reshape":
            shape = [ins[0].shape[i] if v == 0 else v for i, v in enumerate(ins[1])]
            outs = [ins[0].reshape(shape)]
        elif op == "Slice":
            data, starts, ends = ins[0], ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
            idx = [slice(None)] * data.ndim
            for ax, s0, e0, st in zip(axes, starts, ends, steps):
                idx[ax] = slice(*slice(int(s0), int(e0), int(st)).indices(data.shape[ax]))
            outs = [data[tuple(idx)]]
        elif op == "LSTM":
            x, w, r = ins[:3]
            pad = ins + [None] * (8 - len(ins))
            assert pad[4] is None and a.get("layout", 0) == 0
            outs = list(_lstm(x, w, r, pad[3], pad[5], pad[6], a.get("direction", b"forward").decode()))
        elif op == "GRU":
            pad = ins + [None] * (6 - len(ins))
            assert pad[4] is None and a.get("layout", 0) == 0
            outs = list(_gru(pad[0], pad[1], pad[2], pad[3], pad[5], a.get("linear_before_reset", 0)))
        elif op == "Gemm":
            x, w = ins[0], ins[1]
            if a.get("transA", 0):
                x = x.T
            if a.get("transB", 0):
                w = w.T
            y = a.get("alpha", 1.0) * (x @ w)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
            outs = [y.astype(np.float32)]
        elif op == "Relu":
            outs = [np.maximum(ins[0], 0)]
        elif op == "Sigmoid":
            outs = [_sig(ins[0])]
        elif op == "Tanh":
            outs = [np.tanh(ins[0])]
        elif op in ("Softmax", "LogSoftmax"):
            x = ins[0] - ins[0].max(axis=a.get("axis", -1), keepdims=True)
            lse = np.log(np.exp(x).sum(axis=a.get("axis", -1), keepdims=True))
            outs = [np.exp(x - lse) if op == "Softmax" else x - lse]
        elif op == "ReduceMean":
            outs = [ins[0].mean(axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))]
        elif op == "Conv":
            assert ins[0].ndim == 3
            outs = [_conv1d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get("pads", [0, 0]),
                            a.get("strides", [1]), a.get("dilations", [1]), a.get("group", 1))]
        else:
            raise NotImplementedError("numpy check: op %s" % op)
        for name, v in zip(n.output, outs):
            if name:
                env[name] = v
    return [env[o.name] for o in model.graph.output]


def check_with_numpy(out_dir):
    model = onnx.load(os.path.join(out_dir, "model.onnx"))
    feed = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    worst = 0.0
    for set_dir in sorted(d for d in os.listdir(out_dir) if d.startswith("test_data_set_")):
        p = os.path.join(out_dir, set_dir)
        x = numpy_helper.to_array(onnx.load_tensor(os.path.join(p, "input_0.pb")))
        got = run_numpy(model, {feed[0]: x.astype(np.float64) if x.dtype == np.float32 else x})
        for i, g in enumerate(got):
            want = numpy_helper.to_array(onnx.load_tensor(os.path.join(p, "output_%d.pb" % i)))
            assert g.shape == want.shape, (set_dir, i, g.shape, want.shape)
            err = float(np.max(np.abs(g - want)))
            assert np.allclose(g, want, rtol=1e-5, atol=1e-6), (out_dir, set_dir, i, err)
            worst = max(worst, err)
    print("  numpy interpretation of model.onnx matches every test set (max abs err %.1e)" % worst)


def generate(spec):
    out_dir = os.path.join(ROOT, spec["dir"])
    if os.path.isdir(out_dir):
        # Keep a hand-written README.md; everything else is regenerated.
        for name in os.listdir(out_dir):
            p = os.path.join(out_dir, name)
            if name == "README.md":
                continue
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    os.makedirs(out_dir, exist_ok=True)

    torch.manual_seed(spec["seed"])
    model = spec["cls"]().float().eval()
    rng = np.random.RandomState(1000 + spec["seed"])

    in_name = spec["input"]
    axes = {0: "batch"} if spec.get("no_time") else {0: "batch", 1: "time"}
    dynamic = {in_name: axes}
    for o in spec["outputs"]:
        dynamic[o] = {0: "batch"}
    example = torch.from_numpy(make_input(spec, rng, *EXPORT_BT))
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (example,), buf, opset_version=OPSET,
                          input_names=[in_name], output_names=spec["outputs"],
                          dynamic_axes=dynamic, do_constant_folding=True)
    path = os.path.join(out_dir, "model.onnx")
    with open(path, "wb") as f:
        f.write(buf.getvalue())

    for k, (batch, time) in enumerate(spec["tests"]):
        x = make_input(spec, rng, batch, time)
        with torch.no_grad():
            ys = model(torch.from_numpy(x))
        if not isinstance(ys, tuple):
            ys = (ys,)
        assert len(ys) == len(spec["outputs"])
        set_dir = os.path.join(out_dir, "test_data_set_%d" % k)
        os.makedirs(set_dir)
        write_pb(os.path.join(set_dir, "input_0.pb"), x)
        for i, y in enumerate(ys):
            y = y.numpy().astype(np.float32)
            assert y.shape[0] == batch and np.all(np.isfinite(y))
            write_pb(os.path.join(set_dir, "output_%d.pb" % i), y)

    summarize(path, spec)
    print("  test sets (batch, time):", [(b, t) if t is not None else (b,) for b, t in spec["tests"]])
    check_with_numpy(out_dir)


def main():
    torch.set_num_threads(1)  # bit-identical references from run to run
    torch.use_deterministic_algorithms(True)
    only = set(sys.argv[1:])
    for spec in SPECS:
        if only and os.path.basename(spec["dir"]) not in only:
            continue
        generate(spec)


if __name__ == "__main__":
    main()
