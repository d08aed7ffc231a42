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


# Mistakes a user makes in their own parts: each must fail the run with a message naming the callable.
def raising_dataset():
    raise ValueError("cannot find my.csv")


def exiting_dataset():
    raise SystemExit(3)


def ragged_dataset():
    return np.zeros((50, 3)), np.zeros(40)


def not_a_model(in_features: int, out_features: int):
    return "a string"


def wide_model(in_features: int, out_features: int) -> nn.Module:
    return nn.Linear(in_features, out_features + 6)


not_callable = 42
