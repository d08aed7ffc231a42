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


class _FailsAtCall(nn.Module):
    """A user model whose forward raises at its Nth call: a fault injected at one seam, the model."""

    def __init__(self, in_features: int, out_features: int, at: int, error: BaseException):
        super().__init__()
        self.net = small_net(in_features, out_features)
        self.calls, self.at, self.error = 0, at, error

    def forward(self, x):
        self.calls += self.training  # training forwards only (a shape check or a validation pass runs in eval)
        if self.calls == self.at and self.training:
            raise self.error
        return self.net(x)


def gpu_oom_at_step_3(in_features: int, out_features: int) -> nn.Module:
    return _FailsAtCall(in_features, out_features, 3, torch.cuda.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.19 GiB total capacity)"))


def host_oom_at_step_3(in_features: int, out_features: int) -> nn.Module:
    return _FailsAtCall(in_features, out_features, 3, MemoryError())


class _Overflows(nn.Module):
    """A model whose output overflows fp16 on every `every`-th forward (the GradScaler then skips the step)."""

    def __init__(self, in_features: int, out_features: int, every: int):
        super().__init__()
        self.net = small_net(in_features, out_features)
        self.calls, self.every = 0, every

    def forward(self, x):
        self.calls += self.training  # training forwards only (a shape check or a validation pass runs in eval)
        out = self.net(x)
        return out * float("inf") if self.training and self.calls % self.every == 0 else out


def always_overflowing_net(in_features: int, out_features: int) -> nn.Module:
    return _Overflows(in_features, out_features, 1)


def sometimes_overflowing_net(in_features: int, out_features: int) -> nn.Module:
    return _Overflows(in_features, out_features, 3)


def exiting_dataset():
    raise SystemExit(3)


def ragged_dataset():
    return np.zeros((50, 3)), np.zeros(40)


def not_a_model(in_features: int, out_features: int):
    return "a string"


def wide_model(in_features: int, out_features: int) -> nn.Module:
    return nn.Linear(in_features, out_features + 6)


not_callable = 42


def interrupting_dataset():
    raise KeyboardInterrupt


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


class _NanWhenEvaluated(nn.Module):
    """Trains normally, predicts NaN in eval mode (as a model with a broken eval-only branch would)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.net = small_net(in_features, out_features)

    def forward(self, x):
        out = self.net(x)
        return out if self.training else out * float("nan")


def nan_when_evaluated(in_features: int, out_features: int) -> nn.Module:
    return _NanWhenEvaluated(in_features, out_features)


class _SlowToSave(nn.Module):
    """small_net whose checkpoint takes 3 s to gather (a large model on a slow disk): a stop is then
    still being served when a second signal comes."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.net = small_net(in_features, out_features)

    def forward(self, x):
        return self.net(x)

    def state_dict(self, *args, **kwargs):
        import time

        time.sleep(3)
        return super().state_dict(*args, **kwargs)


def slow_to_save(in_features: int, out_features: int) -> nn.Module:
    return _SlowToSave(in_features, out_features)
