"""ComfyUI's ``comfy.ops``: torch layers that skip weight initialisation and can cast weights on the fly.

These are plain torch layers, so they work here: ``disable_weight_init.<Layer>`` does not initialise
its weights (they are about to be loaded), ``manual_cast.<Layer>`` casts weight and bias to the
input's dtype and device on every forward. Packs subclass both (GGUF's ``GGMLOps(manual_cast)``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def cast_to(weight: torch.Tensor | None, dtype: Any = None, device: Any = None, non_blocking: bool = False,
            copy: bool = False, stream: Any = None) -> torch.Tensor | None:
    """``weight`` moved/cast to ``device``/``dtype`` (a copy when ``copy``); None stays None."""
    if weight is None:
        return None
    if weight.device == torch.device(device or weight.device) and (dtype is None or weight.dtype == dtype) \
            and not copy:
        return weight
    return weight.to(device=device, dtype=dtype, non_blocking=non_blocking, copy=copy)


def cast_to_input(weight: torch.Tensor, input: torch.Tensor, non_blocking: bool = False,
                  copy: bool = True) -> torch.Tensor | None:
    return cast_to(weight, input.dtype, input.device, non_blocking=non_blocking, copy=copy)


def cast_bias_weight(s: Any, input: torch.Tensor | None = None, dtype: Any = None, device: Any = None,
                     bias_dtype: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The layer ``s``'s (weight, bias) cast for ``input`` (or to ``dtype``/``device``)."""
    if input is not None:
        dtype = input.dtype if dtype is None else dtype
        bias_dtype = dtype if bias_dtype is None else bias_dtype
        device = input.device if device is None else device
    bias = cast_to(s.bias, bias_dtype, device) if getattr(s, "bias", None) is not None else None
    weight = cast_to(s.weight, dtype, device)
    assert weight is not None
    return weight, bias


class CastWeightBiasOp:
    comfy_cast_weights = False
    weight_function: list[Any] = []
    bias_function: list[Any] = []


def _layer(base: type[nn.Module], forward_cast: Any) -> type:
    """A subclass of ``base`` without weight init whose forward casts weights when asked to."""

    def reset_parameters(self: Any) -> None:
        return None

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.comfy_cast_weights:
            return forward_cast(self, *args, **kwargs)
        return base.forward(self, *args, **kwargs)

    return type(base.__name__, (base, CastWeightBiasOp), {
        "__module__": __name__, "reset_parameters": reset_parameters, "forward": forward,
        "forward_comfy_cast_weights": forward_cast,
    })


def _linear(self: Any, input: torch.Tensor) -> torch.Tensor:
    weight, bias = cast_bias_weight(self, input)
    return torch.nn.functional.linear(input, weight, bias)


def _conv(self: Any, input: torch.Tensor) -> torch.Tensor:
    weight, bias = cast_bias_weight(self, input)
    return self._conv_forward(input, weight, bias)


def _group_norm(self: Any, input: torch.Tensor) -> torch.Tensor:
    weight, bias = cast_bias_weight(self, input)
    return torch.nn.functional.group_norm(input, self.num_groups, weight, bias, self.eps)


def _layer_norm(self: Any, input: torch.Tensor) -> torch.Tensor:
    weight, bias = cast_bias_weight(self, input) if self.weight is not None else (None, None)
    return torch.nn.functional.layer_norm(input, self.normalized_shape, weight, bias, self.eps)


def _conv_transpose(self: Any, input: torch.Tensor, output_size: Any = None) -> torch.Tensor:
    num_spatial = input.ndim - 2
    padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size,
                                   num_spatial, self.dilation)
    weight, bias = cast_bias_weight(self, input)
    fn = torch.nn.functional.conv_transpose2d if num_spatial == 2 else torch.nn.functional.conv_transpose1d
    return fn(input, weight, bias, self.stride, self.padding, padding, self.groups, self.dilation)


def _embedding(self: Any, input: torch.Tensor, out_dtype: Any = None) -> torch.Tensor:
    weight, _ = cast_bias_weight(self, device=input.device, dtype=out_dtype)
    return torch.nn.functional.embedding(input, weight, self.padding_idx, self.max_norm, self.norm_type,
                                         self.scale_grad_by_freq, self.sparse)


class disable_weight_init:
    Linear = _layer(nn.Linear, _linear)
    Conv1d = _layer(nn.Conv1d, _conv)
    Conv2d = _layer(nn.Conv2d, _conv)
    Conv3d = _layer(nn.Conv3d, _conv)
    GroupNorm = _layer(nn.GroupNorm, _group_norm)
    LayerNorm = _layer(nn.LayerNorm, _layer_norm)
    ConvTranspose2d = _layer(nn.ConvTranspose2d, _conv_transpose)
    ConvTranspose1d = _layer(nn.ConvTranspose1d, _conv_transpose)
    Embedding = _layer(nn.Embedding, _embedding)

    @classmethod
    def conv_nd(cls, dims: int, *args: Any, **kwargs: Any) -> nn.Module:
        layers = {2: cls.Conv2d, 3: cls.Conv3d}
        if dims not in layers:
            raise ValueError(f"unsupported dimensions: {dims}")
        return layers[dims](*args, **kwargs)  # type: ignore[no-any-return]


def _casting(name: str) -> type:
    layer = getattr(disable_weight_init, name)
    return type(name, (layer,), {"__module__": __name__, "comfy_cast_weights": True})


class manual_cast(disable_weight_init):
    Linear = _casting("Linear")
    Conv1d = _casting("Conv1d")
    Conv2d = _casting("Conv2d")
    Conv3d = _casting("Conv3d")
    GroupNorm = _casting("GroupNorm")
    LayerNorm = _casting("LayerNorm")
    ConvTranspose2d = _casting("ConvTranspose2d")
    ConvTranspose1d = _casting("ConvTranspose1d")
    Embedding = _casting("Embedding")


def pick_operations(weight_dtype: Any, compute_dtype: Any, load_device: Any = None, disable_fast_fp8: bool = False,
                    fp8_optimizations: bool = False, scaled_fp8: Any = None, model_config: Any = None) -> type:
    """``disable_weight_init`` when weights are stored in the compute dtype, else ``manual_cast``."""
    if compute_dtype is None or weight_dtype == compute_dtype:
        return disable_weight_init
    return manual_cast
