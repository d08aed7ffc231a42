"""Models: the built-in MLP, or a user's `package.module:callable(in_features, out_features)`."""

from __future__ import annotations

import importlib

from torch import nn

from tui_trainer.config.schema import ModelConfig

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU}


def build_model(cfg: ModelConfig, in_features: int, out_features: int) -> nn.Module:
    """Build the configured model. The MLP is an `nn.Sequential`, so model parallelism can cut it."""
    if cfg.name != "mlp":
        module_name, _, attr = cfg.name.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        model = factory(in_features, out_features)
        if not isinstance(model, nn.Module):
            raise TypeError(f"model.name = \"{cfg.name}\" returned {type(model).__name__}, expected an nn.Module")
        return model
    layers: list[nn.Module] = []
    width = in_features
    for hidden in cfg.hidden:
        layers += [nn.Linear(width, hidden), ACTIVATIONS[cfg.activation]()]
        if cfg.dropout:
            layers.append(nn.Dropout(cfg.dropout))
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters of a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
