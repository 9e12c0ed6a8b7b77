#!/usr/bin/python3
"""Generate mtlrun's benchmark set of larger models (issue 16, item 4).

The models are built directly with onnx.helper, so the script needs no
torch, in the node layout torch.onnx.export produces at opset 17 (checked
against torch 1.13's export, see scripts/gen_fusion_fixtures.py; torch
writes the GELU scalars as Constant nodes where this script uses
initializers): batch-first input transposed to time-major for the recurrent ops,
PyTorch's gate order already converted to ONNX's, Gemm heads, and GELU in
its exported erf form Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5).
Weights are drawn from fixed numpy seeds (uniform +-1/sqrt(fan), as PyTorch
initialises them), so every file is reproducible byte for byte. They are
untrained; the benchmark only needs their shapes and realistic magnitudes.

    /usr/bin/python3 scripts/gen_bench_models.py [OUTDIR]

writes OUTDIR (default bench/models, git-ignored; the files are ~0.3-5 MB):

    lstm2x256/model.onnx   2-layer LSTM(256) on 16 features, 3 heads
    bigru128/model.onnx    bidirectional GRU(128) on 32 features, 3 heads
    mlp_gelu/model.onnx    MLP 256 -> 1024 -> 512 with GELU, 5 heads
    lstm_h{32,64,128,256,512}/model.onnx
                           1-layer LSTM(H) on 16 features, one head (the
                           hidden-size axis of the cost-vs-size table)

Inputs are [batch, time, features] (batch and time symbolic) or
[batch, features]; check any of them against onnxruntime with
`mtlrun parity DIR/model.onnx --batch 3 --time 17`.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OPSET = 17


class Builder:
    def __init__(self, name, seed):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.outputs = [], [], []
        self.count = 0

    def uniform(self, name, shape, fan):
        b = 1.0 / np.sqrt(fan)
        a = self.rng.uniform(-b, b, size=shape).astype(np.float32)
        self.inits.append(numpy_helper.from_array(a, name))
        return name

    def const(self, name, value):
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op, inputs, n_out=1, **attrs):
        self.count += 1
        outs = ["%s_%d_%d" % (op.lower(), self.count, k) for k in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name="/%s_%d" % (op, self.count), **attrs))
        return outs if n_out > 1 else outs[0]

    def head(self, x, name, fan_in, width, act=None):
        """A Linear head (Gemm, transB=1 as PyTorch exports it) with an
        optional activation, producing graph output `name`."""
        w = self.uniform(name + ".weight", (width, fan_in), fan_in)
        b = self.uniform(name + ".bias", (width,), fan_in)
        y = self.node("Gemm", [x, w, b], alpha=1.0, beta=1.0, transB=1)
        if act == "Softmax":
            y = self.node("Softmax", [y], axis=1)
        elif act is not None:
            y = self.node(act, [y])
        self.nodes[-1].output[0] = name
        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", width]))

    def gelu(self, x):
        """GELU as torch.onnx.export writes nn.GELU() (approximate='none')."""
        s2 = self.const("gelu_sqrt2_%d" % self.count, np.float32(1.4142135381698608))
        one = self.const("gelu_one_%d" % self.count, np.float32(1.0))
        half = self.const("gelu_half_%d" % self.count, np.float32(0.5))
        d = self.node("Div", [x, s2])
        e = self.node("Erf", [d])
        a = self.node("Add", [e, one])
        m = self.node("Mul", [x, a])
        return self.node("Mul", [m, half])

    def model(self, inp):
        g = helper.make_graph(self.nodes, self.name, [inp], self.outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="mtlrun scripts/gen_bench_models.py")
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def lstm_layer(b, x, inp, hidden, prefix):
    """One PyTorch nn.LSTM layer, ONNX gate order iofc, bias Wb+Rb."""
    w = b.uniform(prefix + ".W", (1, 4 * hidden, inp), hidden)
    r = b.uniform(prefix + ".R", (1, 4 * hidden, hidden), hidden)
    bias = b.uniform(prefix + ".B", (1, 8 * hidden), hidden)
    y, yh, _ = b.node("LSTM", [x, w, r, bias], n_out=3, hidden_size=hidden)
    return y, yh


def lstm_model(name, seed, features, hidden, layers, heads):
    b = Builder(name, seed)
    x = b.node("Transpose", ["input"], perm=[1, 0, 2])
    yh = None
    inp = features
    for layer in range(layers):
        y, yh = lstm_layer(b, x, inp, hidden, "lstm.l%d" % layer)
        x = b.node("Squeeze", [y, b.const("axes_%d" % b.count, np.array([1], np.int64))])
        inp = hidden
    h = b.node("Squeeze", [yh, b.const("axes_h", np.array([0], np.int64))])
    for hn, width, act in heads:
        b.head(h, hn, hidden, width, act)
    return b.model(helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", "time", features]))


def bigru_model(name, seed, features, hidden):
    b = Builder(name, seed)
    x = b.node("Transpose", ["input"], perm=[1, 0, 2])
    w = b.uniform("gru.W", (2, 3 * hidden, features), hidden)
    r = b.uniform("gru.R", (2, 3 * hidden, hidden), hidden)
    bias = b.uniform("gru.B", (2, 6 * hidden), hidden)
    _, yh = b.node("GRU", [x, w, r, bias], n_out=2, hidden_size=hidden,
                   direction="bidirectional", linear_before_reset=1)
    t = b.node("Transpose", [yh], perm=[1, 0, 2])  # [batch, 2, hidden]
    h = b.node("Flatten", [t], axis=1)             # [batch, 2*hidden]
    for hn, width, act in [("value", 1, None), ("label", 4, "Softmax"), ("flag", 1, "Sigmoid")]:
        b.head(h, hn, 2 * hidden, width, act)
    return b.model(helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", "time", features]))


def mlp_gelu_model(name, seed):
    b = Builder(name, seed)
    x = "features"
    fan = 256
    for i, width in enumerate([1024, 512]):
        w = b.uniform("trunk.%d.weight" % i, (width, fan), fan)
        bias = b.uniform("trunk.%d.bias" % i, (width,), fan)
        x = b.gelu(b.node("Gemm", [x, w, bias], alpha=1.0, beta=1.0, transB=1))
        fan = width
    for hn, width, act in [("price", 1, None), ("category", 10, "Softmax"), ("churn", 1, "Sigmoid"),
                           ("embedding", 16, "Tanh"), ("score", 3, None)]:
        b.head(x, hn, fan, width, act)
    return b.model(helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 256]))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "bench", "models")
    three = [("output1", 1, None), ("output2", 1, None), ("output3", 1, "Sigmoid")]
    models = {
        "lstm2x256": lstm_model("lstm2x256", 1601, 16, 256, 2, three),
        "bigru128": bigru_model("bigru128", 1602, 32, 128),
        "mlp_gelu": mlp_gelu_model("mlp_gelu", 1603),
    }
    for h in [32, 64, 128, 256, 512]:
        models["lstm_h%d" % h] = lstm_model("lstm_h%d" % h, 1610 + h, 16, h, 1, [("output1", 1, None)])
    for name, m in models.items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "model.onnx")
        onnx.save(m, path)
        params = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
        ops = sorted({n.op_type for n in m.graph.node})
        print("%-10s %9d parameters  %2d nodes  %s" % (name, params, len(m.graph.node), " ".join(ops)))


if __name__ == "__main__":
    main()
