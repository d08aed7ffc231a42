"""The default job (presets/cpu-quick.toml) as a PyTorch expert writes it by hand, as one script.

    python benchmarks/expert_loop.py [--epochs 100] [--checkpoint PATH]

The whole-process contestant of the benchmark's `process` section: what `tui-trainer run
presets/cpu-quick.toml --headless` does, without a runner. Diabetes from scikit-learn, an 80/20 split
(seed 0) standardised on the training split, an MLP 10-16-32-1 with ReLU, Adam (lr 0.01, fused),
batch 32, one torch thread (753 parameters x 32 samples: nothing to split across cores), data placed
once, a per-epoch permutation, the validation loss and R^2 at each epoch end, the losses read once
an epoch, a checkpoint at the end. It imports nothing from tui-trainer.
"""

from __future__ import annotations

import argparse
import time

started = time.perf_counter()

import torch  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--checkpoint", default="expert-checkpoint.pt")
    parser.add_argument("--first-step-file", default="", help="touched right after the first optimizer step")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    x, y = load_diabetes(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(x_tr)
    x_tr = torch.as_tensor(scaler.transform(x_tr), dtype=torch.float32)
    x_va = torch.as_tensor(scaler.transform(x_va), dtype=torch.float32)
    y_tr = torch.as_tensor(y_tr, dtype=torch.float32).reshape(-1, 1)
    y_va = torch.as_tensor(y_va, dtype=torch.float32).reshape(-1, 1)
    spread = ((y_va - y_va.mean()) ** 2).sum()

    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, fused=True)
    generator = torch.Generator().manual_seed(0)
    first_step = None
    for epoch in range(args.epochs):
        losses = []
        for idx in torch.randperm(len(x_tr), generator=generator).split(32):
            loss = F.mse_loss(model(x_tr[idx]), y_tr[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
            if first_step is None:
                first_step = time.perf_counter() - started
                if args.first_step_file:
                    open(args.first_step_file, "w").close()
        model.eval()
        with torch.no_grad():
            squared = F.mse_loss(model(x_va), y_va, reduction="sum")
        model.train()
        figures = torch.stack([*losses, squared]).tolist()  # the epoch's one host sync
    train_loss = sum(figures[:-1]) / len(figures[:-1])
    r2 = 1.0 - figures[-1] / float(spread)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": args.epochs},
               args.checkpoint)
    print(f"epochs {args.epochs}  train loss {train_loss:.4g}  val loss {figures[-1] / len(x_va):.4g}  "
          f"r2 {r2:.3f}  first step after {first_step:.2f}s")


if __name__ == "__main__":
    main()
