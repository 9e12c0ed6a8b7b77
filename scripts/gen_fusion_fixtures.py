#!/usr/bin/python3
"""Real PyTorch exports of the patterns the runtime's fusion pass rewrites.

A small MLP, Linear(32,64) -> GELU (erf form) -> LayerNorm(64) ->
Linear(64,48) -> GELU(approximate="tanh") -> Linear(48,3), seed 0,
exported by torch.onnx.export at opset 16 (LayerNorm decomposed into
ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add) and opset 17
(LayerNormalization), with the GELU scalars as Constant nodes, exactly as
PyTorch writes them. Writes testdata/fusion/gelu_ln{16,17}/model.onnx and
test_data_set_0 (input_0.pb: x [5, 32]; output_0.pb: PyTorch's eval-mode
float32 result). runtime/fuse_torch_test.go checks that the fused ops
appear and that results match the unfused graph bit for bit and PyTorch.

    /usr/bin/python3 scripts/gen_fusion_fixtures.py   # torch 1.13 (Debian python3-torch), onnx
"""
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


class GeluLN(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.g1, self.ln = nn.Linear(32, 64), nn.GELU(), nn.LayerNorm(64)
        self.l2, self.g2, self.h = nn.Linear(64, 48), nn.GELU(approximate="tanh"), nn.Linear(48, 3)

    def forward(self, x):
        return self.h(self.g2(self.l2(self.ln(self.g1(self.l1(x))))))


def main():
    torch.manual_seed(0)
    m = GeluLN().eval()
    with torch.no_grad():
        # LayerNorm's affine parameters away from 1 and 0, so they matter
        m.ln.weight.uniform_(0.5, 1.5)
        m.ln.bias.uniform_(-0.5, 0.5)
    x = torch.randn(5, 32)
    with torch.no_grad():
        y = m(x)
    for opset in (16, 17):
        d = os.path.join(ROOT, "testdata", "fusion", "gelu_ln%d" % opset)
        os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
        path = os.path.join(d, "model.onnx")
        torch.onnx.export(m, torch.randn(2, 32), path, opset_version=opset, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        onnx.checker.check_model(onnx.load(path))
        for name, t in (("input_0.pb", x), ("output_0.pb", y)):
            p = numpy_helper.from_array(t.numpy().astype(np.float32), "x" if name.startswith("input") else "y")
            with open(os.path.join(d, "test_data_set_0", name), "wb") as f:
                f.write(p.SerializeToString())
        print(opset, [n.op_type for n in onnx.load(path).graph.node])


if __name__ == "__main__":
    main()
