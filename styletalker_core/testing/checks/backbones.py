"""Contracts of the backbone kinds: ``prior_backbone`` (causal inputs [b, t, i] -> hidden [b, t, h],
stepwise with a bounded state) and ``image_encoder_backbone`` (images -> three feature maps, fine to
coarse, at strides that double)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces import ImageEncoderBackbone, PriorBackbone
from styletalker_core.testing.factory import ComponentFactory, explained, listed, require, without_gradient


def _reloaded(factory: ComponentFactory, module: torch.nn.Module) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(Path(folder) / "backbone.safetensors", {factory.kind: module})
        return load_checkpoint(path, factory.registries)[factory.kind].train(module.training)


# -- prior_backbone ----------------------------------------------------------------------------


def _sequence_inputs(backbone: PriorBackbone, t: int = 11, seed: int = 1) -> torch.Tensor:
    """[2, t, input_dim] in float64."""
    return torch.randn(2, t, backbone.input_dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _stepped(backbone: PriorBackbone, inputs: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Hidden states [b, t, h] from ``step`` one position at a time, and the final state."""
    state, steps = None, []
    for t in range(inputs.shape[1]):
        hidden, state = backbone.step(inputs[:, t], state)
        steps.append(hidden)
    return torch.stack(steps, dim=1), state


def _state_size(state: Any) -> int:
    """Numbers held in a state made of tensors, tuples, lists and dicts."""
    if isinstance(state, torch.Tensor):
        return state.numel()
    if isinstance(state, dict):
        return sum(_state_size(value) for value in state.values())
    if isinstance(state, (tuple, list)):
        return sum(_state_size(value) for value in state)
    return 0


def check_prior_backbone_shapes_and_attributes(factory: ComponentFactory) -> None:
    backbone = factory().double().eval()
    require(isinstance(backbone, PriorBackbone), factory, f"built a {type(backbone).__qualname__}, not a PriorBackbone")
    for attribute in ("input_dim", "hidden"):
        require(isinstance(getattr(backbone, attribute, None), int), factory, f"attribute {attribute} must be an int")
    inputs = _sequence_inputs(backbone)
    with torch.no_grad():
        sequence = backbone.sequence(inputs)
        hidden, _ = backbone.step(inputs[:, 0], None)
    require(sequence.shape == (2, 11, backbone.hidden), factory,
            f"sequence gave {tuple(sequence.shape)}, expected (2, 11, hidden={backbone.hidden})")
    require(hidden.shape == (2, backbone.hidden), factory, f"step gave {tuple(hidden.shape)}, expected (2, {backbone.hidden})")
    require(torch.isfinite(sequence).all(), factory, "non-finite hidden states")


def check_prior_backbone_steps_equal_the_teacher_forced_sequence(factory: ComponentFactory) -> None:
    """Stepping with the carried state gives the hidden states of one ``sequence`` pass."""
    backbone = factory().double().eval()
    inputs = _sequence_inputs(backbone)
    with torch.no_grad():
        steps, _ = _stepped(backbone, inputs)
        sequence = backbone.sequence(inputs)
    torch.testing.assert_close(steps, sequence, atol=1e-10, rtol=0,
                               msg=explained(factory, "step by step differs from sequence"))


def check_prior_backbone_is_causal(factory: ComponentFactory) -> None:
    """Hidden state t depends on inputs 0..t only."""
    backbone = factory().double().eval()
    inputs = _sequence_inputs(backbone)
    changed = inputs.clone()
    changed[:, 5] += 1.0
    with torch.no_grad():
        moved = (backbone.sequence(changed) - backbone.sequence(inputs)).abs().amax(dim=(0, 2)) > 0
    earlier = moved[:5].nonzero().flatten().tolist()
    require(not earlier, factory, f"changing input 5 changed hidden states {earlier}: the backbone reads the future")
    require(bool(moved[5]), factory, "changing input 5 left hidden state 5 unchanged: it ignores its current input")


def check_prior_backbone_state_stays_bounded(factory: ComponentFactory) -> None:
    """The carried state holds as many numbers after 48 steps as after 24 (sampling long audio
    must not grow memory)."""
    backbone = factory().double().eval()
    with torch.no_grad():
        sizes = [_state_size(_stepped(backbone, _sequence_inputs(backbone, t))[1]) for t in (24, 48)]
    require(sizes[0] == sizes[1], factory, f"the state grows with the sequence: {sizes[0]} numbers after 24 steps, "
                                           f"{sizes[1]} after 48")


def check_prior_backbone_gradients_reach_every_parameter(factory: ComponentFactory) -> None:
    backbone = factory().double()
    backbone.sequence(_sequence_inputs(backbone)).square().sum().backward()
    missing = without_gradient(backbone)
    require(not missing, factory, f"no gradient reaches {listed(missing)}")


def check_prior_backbone_checkpoint_round_trip(factory: ComponentFactory) -> None:
    backbone = factory().eval()
    loaded = _reloaded(factory, backbone)
    inputs = _sequence_inputs(backbone).float()
    with torch.no_grad():
        require(torch.equal(backbone.sequence(inputs), loaded.sequence(inputs)), factory,
                "the reloaded backbone gives other hidden states")


# -- image_encoder_backbone --------------------------------------------------------------------


def _images(backbone: ImageEncoderBackbone, batch: int = 2, seed: int = 1) -> torch.Tensor:
    """[b, 3, r, r] in [-1, 1] with r = twice the coarsest stride (at least 16)."""
    r = max(16, 2 * backbone.strides[2])
    return torch.rand(batch, 3, r, r, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def check_image_encoder_backbone_shapes_and_strides(factory: ComponentFactory) -> None:
    """Three maps [b, out_channels[k], r / strides[k], r / strides[k]]; strides powers of two, each
    twice the previous."""
    backbone = factory().eval()
    require(isinstance(backbone, ImageEncoderBackbone), factory,
            f"built a {type(backbone).__qualname__}, not an ImageEncoderBackbone")
    channels, strides = tuple(backbone.out_channels), tuple(backbone.strides)
    require(len(channels) == 3 and all(isinstance(c, int) and c > 0 for c in channels), factory,
            f"out_channels must be three positive ints, got {channels}")
    require(len(strides) == 3 and all(isinstance(s, int) and s > 0 and not s & (s - 1) for s in strides), factory,
            f"strides must be three powers of two, got {strides}")
    require(strides[1] == 2 * strides[0] and strides[2] == 2 * strides[1], factory,
            f"each stride must be twice the previous, got {strides}")
    x = _images(backbone)
    with torch.no_grad():
        maps = backbone(x)
    require(isinstance(maps, tuple) and len(maps) == 3, factory, "forward must return (c1, c2, c3)")
    r = x.shape[-1]
    for k, feature in enumerate(maps):
        expected = (2, channels[k], r // strides[k], r // strides[k])
        require(feature.shape == expected, factory, f"c{k + 1} is {tuple(feature.shape)} for {r} px images, expected {expected}")
        require(torch.isfinite(feature).all(), factory, f"c{k + 1} is not finite")


def check_image_encoder_backbone_items_are_independent_in_eval_mode(factory: ComponentFactory) -> None:
    backbone = factory().eval()
    x = _images(backbone, batch=3)
    with torch.no_grad():
        whole, single = backbone(x), backbone(x[1:2])
    for k, (a, b) in enumerate(zip(whole, single)):
        torch.testing.assert_close(b[0], a[1], atol=1e-5, rtol=1e-5,
                                   msg=explained(factory, f"in eval mode c{k + 1} of an image depends on its batch"))


def check_image_encoder_backbone_gradients_reach_every_parameter(factory: ComponentFactory) -> None:
    backbone = factory().train()
    sum(feature.square().mean() for feature in backbone(_images(backbone))).backward()
    missing = without_gradient(backbone, trainable_only=True)
    require(not missing, factory, f"no gradient reaches {listed(missing)}")


def check_image_encoder_backbone_checkpoint_round_trip(factory: ComponentFactory) -> None:
    backbone = factory().eval()
    loaded = _reloaded(factory, backbone)
    x = _images(backbone)
    with torch.no_grad():
        for k, (a, b) in enumerate(zip(backbone(x), loaded(x))):
            require(torch.equal(a, b), factory, f"the reloaded backbone gives another c{k + 1}")
