"""Models: the built-in MLP, or a user's `package.module:callable(in_features, out_features)`."""

from __future__ import annotations

from torch import nn

from tui_trainer.config.schema import ModelConfig
from tui_trainer.training.usercode import UserCodeError, call_user, wrong_result

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU}


def build_model(cfg: ModelConfig, in_features: int, out_features: int) -> nn.Module:
    """Build the configured model. The MLP is an `nn.Sequential`, so model parallelism can cut it."""
    if cfg.name != "mlp":
        model = call_user("model.name", cfg.name, in_features, out_features)
        if not isinstance(model, nn.Module):
            raise wrong_result("model.name", cfg.name, f"a {type(model).__name__}; expected a torch nn.Module")
        check_output_shape(model, cfg.name, in_features, out_features)
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


def check_output_shape(model: nn.Module, path: str, in_features: int, out_features: int) -> None:
    """One forward of two zero samples: a user model must map (batch, in) to (batch, out)."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, in_features))
    except Exception as exc:
        raise UserCodeError(f'model.name = "{path}": its forward failed on a batch of shape (2, {in_features}): '
                            f"{type(exc).__name__}: {str(exc).strip()[:200]}") from exc
    finally:
        model.train(was_training)
    shape = tuple(getattr(out, "shape", ()))
    if shape != (2, out_features):
        raise wrong_result("model.name", path, f"a model whose output for 2 samples has shape {shape}; "
                           f"expected (2, {out_features})")


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters of a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
