"""A user's own model and data, referenced from presets as "tests.user_parts:NAME"."""

import numpy as np
import torch
from torch import nn


def small_net(in_features: int, out_features: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_features, 8), nn.Tanh(), nn.Linear(8, out_features))


def broken_model(in_features: int, out_features: int) -> nn.Module:
    raise RuntimeError("this model cannot be built")


def moons_arrays():
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=200, noise=0.1, random_state=0)
    return x, y.astype(np.int64)


def line_datasets():
    x = torch.linspace(-1, 1, 100).reshape(-1, 1)
    y = 3 * x + 1
    train = torch.utils.data.TensorDataset(x[:80], y[:80])
    val = torch.utils.data.TensorDataset(x[80:], y[80:])
    return train, val


class _SlowsDown(nn.Module):
    """small_net whose training steps take 20 ms each (a stall: a slow disk, a busy core) after the 600th."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.net = small_net(in_features, out_features)
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls > 600:
                import time

                time.sleep(0.02)
        return self.net(x)


def slows_down(in_features: int, out_features: int) -> nn.Module:
    return _SlowsDown(in_features, out_features)
