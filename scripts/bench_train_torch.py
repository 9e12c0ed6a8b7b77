"""Training throughput of the seed architecture in PyTorch, for comparison
with `go test ./train -bench SeedTraining` (docs/TRAINING.md).

LSTM(64) on 1 feature, T=50, batch 32, two Linear(64,1) heads, mse on both,
Adam lr 1e-3, one thread. Prints samples/s over the timed steps.

    /usr/bin/python3 scripts/bench_train_torch.py [--threads 1] [--steps 200]
"""
import argparse
import time

import torch


class Seed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(1, 64, batch_first=True)
        self.head1 = torch.nn.Linear(64, 1)
        self.head2 = torch.nn.Linear(64, 1)

    def forward(self, x):
        y, _ = self.lstm(x)
        h = y[:, -1, :]
        return self.head1(h), self.head2(h)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--time", type=int, default=50)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = Seed()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x = torch.randn(a.batch, a.time, 1)
    y1, y2 = torch.randn(a.batch, 1), torch.randn(a.batch, 1)
    mse = torch.nn.MSELoss()

    def step():
        opt.zero_grad()
        o1, o2 = m(x)
        loss = mse(o1, y1) + mse(o2, y2)
        loss.backward()
        opt.step()

    for _ in range(20):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    if a.steps == 0:  # import and warm-up only: the baseline "--steps 0" run
        print(f"pytorch {torch.__version__} threads={a.threads}: warm-up only")
        return
    print(f"pytorch {torch.__version__} threads={a.threads} batch={a.batch} T={a.time}: "
          f"{a.steps * a.batch / dt:.0f} samples/s ({dt / a.steps * 1e3:.2f} ms/step)")


if __name__ == "__main__":
    main()
