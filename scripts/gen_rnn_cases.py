#!/usr/bin/python3
"""Generate ONNX LSTM/GRU/RNN test cases the official node tests never cover.

Each case is a single-node model (opset 14) written in the model-zoo layout
testdata/rnn/<case>/{model.onnx,test_data_set_0/input_N.pb,output_N.pb}.
Expected outputs come from an independent reference: PyTorch's nn.LSTM /
nn.GRU / nn.RNN with the weights reordered to PyTorch's gate order (packed
sequences for sequence_lens), or, where PyTorch cannot express the case (GRU
linear_before_reset=0, peepholes, clip, input_forget, other activations), a
plain numpy transcription of the ONNX formulas. Where both apply the two are
cross-checked.

Run with /usr/bin/python3 (torch 1.13, onnx 1.12, numpy).
"""
import os
import shutil

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "rnn")
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
torch.set_default_dtype(torch.float64)


# ---------------------------------------------------------------- numpy ONNX

def act(name, alpha=None, beta=None):
    n = name.lower()
    if n == "sigmoid":
        return lambda x: 1 / (1 + np.exp(-x))
    if n == "tanh":
        return np.tanh
    if n == "relu":
        return lambda x: np.maximum(x, 0)
    if n == "affine":
        return lambda x: alpha * x + beta
    if n == "leakyrelu":
        return lambda x: np.where(x >= 0, x, alpha * x)
    if n == "thresholdedrelu":
        return lambda x: np.where(x >= alpha, x, 0)
    if n == "scaledtanh":
        return lambda x: alpha * np.tanh(beta * x)
    if n == "hardsigmoid":
        return lambda x: np.clip(alpha * x + beta, 0, 1)
    if n == "elu":
        return lambda x: np.where(x >= 0, x, alpha * (np.exp(x) - 1))
    if n == "softsign":
        return lambda x: x / (1 + np.abs(x))
    if n == "softplus":
        return lambda x: np.log1p(np.exp(x))
    raise ValueError(name)


USES = {"affine": (True, True), "leakyrelu": (True, False), "thresholdedrelu": (True, False),
        "scaledtanh": (True, True), "hardsigmoid": (True, True), "elu": (True, False)}
DEF_AB = {"affine": (1.0, 0.0), "leakyrelu": (0.01, 0.0), "thresholdedrelu": (1.0, 0.0),
          "scaledtanh": (1.0, 1.0), "hardsigmoid": (0.2, 0.5), "elu": (1.0, 0.0)}


def acts_for(op, attrs, nd):
    defs = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}[op]
    names = attrs.get("activations", defs * nd)
    alphas = list(attrs.get("activation_alpha", []))
    betas = list(attrs.get("activation_beta", []))
    fs = []
    for n in names:
        ua, ub = USES.get(n.lower(), (False, False))
        a, b = DEF_AB.get(n.lower(), (0.0, 0.0))
        if ua and alphas:
            a = alphas.pop(0)
        if ub and betas:
            b = betas.pop(0)
        fs.append(act(n, a, b))
    per = len(defs)
    return [fs[d * per:(d + 1) * per] for d in range(nd)]


def np_ref(op, attrs, X, W, R, B=None, lens=None, h0=None, c0=None, P=None):
    """ONNX formulas, one row and one step at a time, in float64."""
    X, W, R = (np.asarray(a, np.float64) for a in (X, W, R))
    layout = attrs.get("layout", 0)
    if layout == 1:
        X = X.transpose(1, 0, 2)
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    T, N, _ = X.shape
    nd = W.shape[0]
    H = R.shape[2]
    G = GATES[op]
    if B is None:
        B = np.zeros((nd, 2 * G * H))
    if lens is None:
        lens = np.full(N, T)
    clip = attrs.get("clip")
    cl = (lambda v: np.clip(v, -clip, clip)) if clip is not None else (lambda v: v)
    fsets = acts_for(op, attrs, nd)
    Y = np.zeros((T, nd, N, H))
    Yh = np.zeros((nd, N, H))
    Yc = np.zeros((nd, N, H))
    for d in range(nd):
        rev = attrs.get("direction", "forward") == "reverse" or d == 1
        Wd, Rd = W[d], R[d]
        Wb, Rb = B[d, :G * H], B[d, G * H:]
        fs = fsets[d]
        for n in range(N):
            h = np.zeros(H) if h0 is None else np.asarray(h0[d, n], np.float64).copy()
            c = np.zeros(H) if c0 is None else np.asarray(c0[d, n], np.float64).copy()
            L = int(lens[n])
            steps = range(L - 1, -1, -1) if rev else range(L)
            for t in steps:
                x = X[t, n]
                if op == "RNN":
                    h = fs[0](cl(x @ Wd.T + h @ Rd.T + Wb + Rb))
                elif op == "GRU":
                    Wz, Wr, Wh = np.split(Wd, 3)
                    Rz, Rr, Rh = np.split(Rd, 3)
                    Wbz, Wbr, Wbh = np.split(Wb, 3)
                    Rbz, Rbr, Rbh = np.split(Rb, 3)
                    z = fs[0](cl(x @ Wz.T + h @ Rz.T + Wbz + Rbz))
                    r = fs[0](cl(x @ Wr.T + h @ Rr.T + Wbr + Rbr))
                    if attrs.get("linear_before_reset", 0):
                        hh = fs[1](cl(x @ Wh.T + r * (h @ Rh.T + Rbh) + Wbh))
                    else:
                        hh = fs[1](cl(x @ Wh.T + (r * h) @ Rh.T + Rbh + Wbh))
                    h = (1 - z) * hh + z * h
                else:
                    Wi, Wo, Wf, Wc = np.split(Wd, 4)
                    Ri, Ro, Rf, Rc = np.split(Rd, 4)
                    Wbi, Wbo, Wbf, Wbc = np.split(Wb, 4)
                    Rbi, Rbo, Rbf, Rbc = np.split(Rb, 4)
                    if P is None:
                        Pi = Po = Pf = np.zeros(H)
                    else:
                        Pi, Po, Pf = np.split(np.asarray(P[d], np.float64), 3)
                    i = fs[0](cl(x @ Wi.T + h @ Ri.T + Pi * c + Wbi + Rbi))
                    if attrs.get("input_forget", 0):
                        f = 1 - i
                    else:
                        f = fs[0](cl(x @ Wf.T + h @ Rf.T + Pf * c + Wbf + Rbf))
                    ct = fs[1](cl(x @ Wc.T + h @ Rc.T + Wbc + Rbc))
                    c = f * c + i * ct
                    o = fs[0](cl(x @ Wo.T + h @ Ro.T + Po * c + Wbo + Rbo))
                    h = o * fs[2](c)
                Y[t, d, n] = h
            Yh[d, n] = h
            Yc[d, n] = c
    if layout == 1:
        Y = Y.transpose(2, 0, 1, 3)
        Yh = Yh.transpose(1, 0, 2)
        Yc = Yc.transpose(1, 0, 2)
    outs = [Y, Yh]
    if op == "LSTM":
        outs.append(Yc)
    return outs


# ---------------------------------------------------------------- PyTorch

def torch_ref(op, attrs, X, W, R, B=None, lens=None, h0=None, c0=None):
    """PyTorch nn.LSTM/GRU/RNN with ONNX weights reordered to its gate order."""
    layout = attrs.get("layout", 0)
    direction = attrs.get("direction", "forward")
    X = np.asarray(X, np.float64)
    if layout == 1:
        X = X.transpose(1, 0, 2)
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    T, N, I = X.shape
    nd, _, H = R.shape
    G = GATES[op]
    if B is None:
        B = np.zeros((nd, 2 * G * H))
    if op == "LSTM":
        order = [0, 2, 3, 1]  # torch i f g o from onnx i o f c
    elif op == "GRU":
        order = [1, 0, 2]  # torch r z n from onnx z r h
        assert attrs.get("linear_before_reset", 0) == 1
    else:
        order = [0]

    def reorder(m):
        return np.concatenate([np.split(np.asarray(m, np.float64), G)[k] for k in order])

    bidi = direction == "bidirectional"
    rev_only = direction == "reverse"
    cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[op]
    kw = {}
    if op == "RNN":
        kw["nonlinearity"] = attrs.get("activations", ["Tanh"])[0].lower()
    mod = cls(I, H, bidirectional=bidi, **kw)
    with torch.no_grad():
        for d in range(nd):
            sfx = "_reverse" if d == 1 else ""
            getattr(mod, "weight_ih_l0" + sfx).copy_(torch.tensor(reorder(W[d])))
            getattr(mod, "weight_hh_l0" + sfx).copy_(torch.tensor(reorder(R[d])))
            getattr(mod, "bias_ih_l0" + sfx).copy_(torch.tensor(reorder(B[d, :G * H])))
            getattr(mod, "bias_hh_l0" + sfx).copy_(torch.tensor(reorder(B[d, G * H:])))
    if lens is None:
        lens = np.full(N, T)
    x = torch.tensor(X)
    if rev_only:  # reverse each row within its own length
        x = x.clone()
        for n in range(N):
            x[:lens[n], n] = x[:lens[n], n].flip(0)
    hx = None
    if h0 is not None:
        h = torch.tensor(np.asarray(h0, np.float64))
        hx = (h, torch.tensor(np.asarray(c0, np.float64)) if c0 is not None else torch.zeros_like(h)) if op == "LSTM" else h
    elif op == "LSTM" and c0 is not None:
        hx = (torch.zeros(nd, N, H), torch.tensor(np.asarray(c0, np.float64)))
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lens), enforce_sorted=False)
    with torch.no_grad():
        out, hn = mod(packed, hx)
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    y = y.numpy().reshape(T, N, nd, H)
    if rev_only:
        for n in range(N):
            y[:lens[n], n] = y[:lens[n], n][::-1].copy()
    Y = y.transpose(0, 2, 1, 3)
    if op == "LSTM":
        Yh, Yc = hn[0].numpy(), hn[1].numpy()
    else:
        Yh, Yc = hn.numpy(), None
    if layout == 1:
        Y = Y.transpose(2, 0, 1, 3)
        Yh = Yh.transpose(1, 0, 2)
        Yc = None if Yc is None else Yc.transpose(1, 0, 2)
    outs = [Y, Yh]
    if op == "LSTM":
        outs.append(Yc)
    return outs


# ---------------------------------------------------------------- writer

INPUT_NAMES = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]


def write_case(name, op, attrs, inputs, outputs, dtype=np.float32):
    """inputs: dict by ONNX input name; outputs: list of arrays (Y, Y_h[, Y_c])."""
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    last = max(i for i, n in enumerate(INPUT_NAMES) if n in inputs)
    node_in = [n if n in inputs else "" for n in INPUT_NAMES[:last + 1]]
    out_names = ["Y", "Y_h", "Y_c"][:len(outputs)]
    node = helper.make_node(op, node_in, out_names, **attrs)
    g_in, arrays = [], []
    for n in INPUT_NAMES:
        if n not in inputs:
            continue
        a = inputs[n]
        a = a.astype(np.int32) if n == "sequence_lens" else a.astype(dtype)
        arrays.append(a)
        et = TensorProto.INT32 if n == "sequence_lens" else elem
        g_in.append(helper.make_tensor_value_info(n, et, list(a.shape)))
    g_out = [helper.make_tensor_value_info(n, elem, list(o.shape)) for n, o in zip(out_names, outputs)]
    graph = helper.make_graph([node], name, g_in, g_out)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)],
                              producer_name="mtlrun-gen_rnn_cases")
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for i, a in enumerate(arrays):
        t = numpy_helper.from_array(a, INPUT_NAMES[INPUT_NAMES.index(g_in[i].name)])
        with open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb") as f:
            f.write(t.SerializeToString())
    for i, (n, o) in enumerate(zip(out_names, outputs)):
        t = numpy_helper.from_array(np.asarray(o).astype(dtype), n)
        with open(os.path.join(d, "test_data_set_0", f"output_{i}.pb"), "wb") as f:
            f.write(t.SerializeToString())


def make(rng, op, attrs, T, N, I, H, bias=True, lens=None, init_h=False, init_c=False, peep=False, scale=0.5):
    nd = 2 if attrs.get("direction") == "bidirectional" else 1
    G = GATES[op]
    layout = attrs.get("layout", 0)
    xs = (N, T, I) if layout == 1 else (T, N, I)
    ss = (N, nd, H) if layout == 1 else (nd, N, H)
    f32 = lambda *s: (rng.standard_normal(s) * scale).astype(np.float32)
    inp = {"X": f32(*xs) * 2, "W": f32(nd, G * H, I), "R": f32(nd, G * H, H)}
    if bias:
        inp["B"] = f32(nd, 2 * G * H)
    if lens is not None:
        inp["sequence_lens"] = np.array(lens, np.int32)
    if init_h:
        inp["initial_h"] = f32(*ss)
    if init_c:
        inp["initial_c"] = f32(*ss)
    if peep:
        inp["P"] = f32(nd, 3 * H)
    return inp


def ref_args(inp):
    return dict(B=inp.get("B"), lens=inp.get("sequence_lens"), h0=inp.get("initial_h"),
                c0=inp.get("initial_c"), P=inp.get("P"))


def check_same(name, a, b, tol=1e-9):
    for x, y in zip(a, b):
        if x is None or y is None:
            continue
        err = np.max(np.abs(np.asarray(x) - np.asarray(y))) if np.size(x) else 0.0
        assert err < tol, f"{name}: torch and numpy references disagree by {err}"


def main():
    rng = np.random.default_rng(20240531)
    shutil.rmtree(ROOT, ignore_errors=True)
    cases = []

    def torch_case(name, op, attrs, **kw):
        inp = make(rng, op, attrs, **kw)
        args = ref_args(inp)
        P = args.pop("P")
        assert P is None
        tref = torch_ref(op, attrs, inp["X"].astype(np.float64), inp["W"], inp["R"], **args)
        nref = np_ref(op, attrs, inp["X"], inp["W"], inp["R"], P=None, **args)
        check_same(name, tref, nref)
        write_case(name, op, attrs, inp, tref)
        cases.append((name, "torch"))

    def np_case(name, op, attrs, dtype=np.float32, **kw):
        inp = make(rng, op, attrs, **kw)
        write_case(name, op, attrs, inp, np_ref(op, attrs, inp["X"], inp["W"], inp["R"], **ref_args(inp)), dtype)
        cases.append((name, "numpy"))

    # PyTorch references (GRU here is always linear_before_reset=1).
    torch_case("lstm_bidirectional", "LSTM", dict(hidden_size=6, direction="bidirectional"),
               T=5, N=3, I=4, H=6, init_h=True, init_c=True)
    torch_case("lstm_reverse", "LSTM", dict(hidden_size=5, direction="reverse"), T=4, N=2, I=3, H=5)
    torch_case("lstm_layout1_seqlens", "LSTM", dict(hidden_size=4, layout=1),
               T=6, N=3, I=3, H=4, lens=[6, 3, 1], init_h=True, init_c=True)
    torch_case("lstm_bidirectional_seqlens", "LSTM", dict(hidden_size=5, direction="bidirectional"),
               T=5, N=3, I=2, H=5, lens=[2, 5, 4])
    torch_case("lstm_layout1_bidirectional_seqlens", "LSTM",
               dict(hidden_size=3, direction="bidirectional", layout=1),
               T=4, N=3, I=2, H=3, lens=[4, 1, 3], init_h=True, init_c=True)
    torch_case("lstm_reverse_seqlens", "LSTM", dict(hidden_size=4, direction="reverse"),
               T=5, N=3, I=3, H=4, lens=[3, 5, 2], init_h=True, init_c=True)
    torch_case("gru_lbr1", "GRU", dict(hidden_size=5, linear_before_reset=1), T=5, N=2, I=3, H=5)
    torch_case("gru_lbr1_bidirectional", "GRU",
               dict(hidden_size=6, linear_before_reset=1, direction="bidirectional"),
               T=4, N=3, I=4, H=6, init_h=True)
    torch_case("gru_lbr1_reverse_seqlens", "GRU",
               dict(hidden_size=4, linear_before_reset=1, direction="reverse"),
               T=5, N=3, I=2, H=4, lens=[1, 5, 3], init_h=True)
    torch_case("gru_lbr1_layout1_bidirectional_seqlens", "GRU",
               dict(hidden_size=5, linear_before_reset=1, direction="bidirectional", layout=1),
               T=6, N=3, I=3, H=5, lens=[6, 2, 4], init_h=True)
    torch_case("rnn_bidirectional_seqlens", "RNN", dict(hidden_size=4, direction="bidirectional"),
               T=5, N=3, I=3, H=4, lens=[5, 2, 3], init_h=True)
    torch_case("rnn_relu_reverse", "RNN", dict(hidden_size=4, direction="reverse", activations=["Relu"]),
               T=4, N=2, I=3, H=4)

    # numpy references for what PyTorch cannot express.
    np_case("gru_lbr0_bidirectional", "GRU", dict(hidden_size=5, direction="bidirectional"),
            T=5, N=3, I=3, H=5, init_h=True)
    np_case("gru_lbr0_reverse_seqlens", "GRU", dict(hidden_size=4, direction="reverse"),
            T=6, N=3, I=2, H=4, lens=[2, 6, 4])
    np_case("gru_lbr0_layout1_bidirectional_seqlens", "GRU",
            dict(hidden_size=3, direction="bidirectional", layout=1),
            T=5, N=3, I=4, H=3, lens=[5, 3, 1], init_h=True)
    np_case("lstm_peepholes_bidirectional_seqlens", "LSTM", dict(hidden_size=4, direction="bidirectional"),
            T=5, N=3, I=3, H=4, lens=[5, 2, 4], init_h=True, init_c=True, peep=True)
    np_case("lstm_clip_input_forget", "LSTM", dict(hidden_size=5, clip=0.7, input_forget=1),
            T=4, N=2, I=3, H=5, init_h=True, init_c=True, peep=True, scale=1.5)
    np_case("lstm_activations_bidirectional", "LSTM",
            dict(hidden_size=4, direction="bidirectional",
                 activations=["HardSigmoid", "ScaledTanh", "Softsign", "Sigmoid", "Elu", "Affine"],
                 activation_alpha=[0.3, 0.8, 0.9, 0.7], activation_beta=[0.4, 1.2, 0.1]),
            T=4, N=2, I=3, H=4)
    np_case("gru_activations_clip", "GRU",
            dict(hidden_size=4, activations=["HardSigmoid", "LeakyRelu"], activation_alpha=[0.25, 0.1],
                 activation_beta=[0.45], clip=1.1),
            T=5, N=2, I=3, H=4, init_h=True, scale=1.2)
    np_case("gru_lbr1_activations_clip", "GRU",
            dict(hidden_size=4, linear_before_reset=1, activations=["Sigmoid", "Softplus"], clip=0.9),
            T=4, N=2, I=3, H=4, scale=1.2)
    np_case("rnn_activations_bidirectional", "RNN",
            dict(hidden_size=3, direction="bidirectional", activations=["ThresholdedRelu", "Softsign"],
                 activation_alpha=[0.2]),
            T=4, N=2, I=3, H=3, init_h=True)
    np_case("rnn_layout1_seqlens_clip", "RNN", dict(hidden_size=5, layout=1, clip=0.5),
            T=6, N=3, I=2, H=5, lens=[4, 6, 1], scale=1.2)
    np_case("lstm_float64_bidirectional_seqlens", "LSTM", dict(hidden_size=3, direction="bidirectional"),
            dtype=np.float64, T=4, N=3, I=2, H=3, lens=[4, 2, 3], init_h=True, init_c=True, peep=True)
    np_case("gru_float64_lbr1", "GRU", dict(hidden_size=3, linear_before_reset=1), dtype=np.float64,
            T=3, N=2, I=2, H=3, init_h=True)
    for name, ref in cases:
        print(f"{name:45s} {ref}")
    print(f"{len(cases)} cases written under {os.path.normpath(ROOT)}")


if __name__ == "__main__":
    main()
