"""Prior backbones and image-encoder backbones are registry kinds: recipes still name them
(``backbone = "gru"``, ``backbone = "ir_se"``), the shipped checkpoints load with the same keys and
record the same build specs, and a backbone registered by another package plugs into the built-in
prior and e4e encoder, by name or as a table with its own options."""

from __future__ import annotations

import re
from typing import Annotated, Any

import pytest
import torch
from torch import nn

from styletalker_core.checkpoint import load_checkpoint, read_metadata, read_tensors, save_checkpoint
from styletalker_core.errors import ComponentError, RegistryError
from styletalker_core.interfaces import ImageEncoderBackbone, PriorBackbone
from styletalker_core.paths import PROJECT_ROOT
from styletalker_core.plugin_host import build_registries
from styletalker_core.recipe.types import check_value, describe
from styletalker_core.recipe.validate import validate_raw
from styletalker_core.registry import ComponentOf, ComponentSpec, Origin, Registrar, Registries, build_component
from styletalker_e4e.backbone import IRSEBackbone
from styletalker_motion.backbones import GRUBackbone

ORIGIN = Origin("acme-backbones", "1.0", "tests.test_backbone_kinds")
PRIOR = {"z_dim": 2, "hidden": 6, "audio_hidden": 4}
ENCODER = {"resolution": 16, "num_ws": 4, "w_dim": 8, "stem_channels": 4, "channels": [4, 8, 8, 16], "units": [1, 1, 1, 1]}


class LeakyIntegrator(PriorBackbone):
    """h_t = tanh(W x_t + decay * h_{t-1}): a one-layer recurrence with a fixed decay (a recipe option)."""

    def __init__(self, input_dim: int, hidden: int, decay: float = 0.5) -> None:
        super().__init__()
        self.input_dim, self.hidden, self.decay = input_dim, hidden, decay
        self.inp = nn.Linear(input_dim, hidden)

    def sequence(self, inputs: torch.Tensor) -> torch.Tensor:
        state, out = None, []
        for t in range(inputs.shape[1]):
            hidden, state = self.step(inputs[:, t], state)
            out.append(hidden)
        return torch.stack(out, dim=1)

    def step(self, inputs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        previous = state if state is not None else inputs.new_zeros(inputs.shape[0], self.hidden)
        hidden = torch.tanh(self.inp(inputs) + self.decay * previous)
        return hidden, hidden


class PoolingTrunk(ImageEncoderBackbone):
    """A 3x3 conv, then average pooling by 4, 8 and 16: three maps of ``width`` channels."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.out_channels, self.strides = (width, width, width), (4, 8, 16)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.relu(self.conv(images))
        c1, c2, c3 = (nn.functional.avg_pool2d(x, stride) for stride in self.strides)
        return c1, c2, c3


def narrow(input_dim: int) -> LeakyIntegrator:
    """A backbone that ignores the width the prior asks for."""
    return LeakyIntegrator(input_dim, 5)


@pytest.fixture(scope="module")
def registries() -> Registries:
    registries = build_registries()
    registrar = Registrar(registries, ORIGIN)
    registrar.register("prior_backbone", "leaky", LeakyIntegrator, example_options={"input_dim": 3, "hidden": 4})
    registrar.register("prior_backbone", "narrow", narrow)
    registrar.register("image_encoder_backbone", "pooling", PoolingTrunk)
    return registries


def test_the_builtin_backbones_are_registered_by_their_plugins(registries):
    assert {(entry.name, entry.origin.module) for entry in registries["prior_backbone"]} >= {
        ("gru", "styletalker_motion.plugin"), ("lstm", "styletalker_motion.plugin"), ("transformer", "styletalker_motion.plugin")}
    assert {(entry.name, entry.origin.module) for entry in registries["image_encoder_backbone"]} >= {
        ("ir", "styletalker_e4e.plugin"), ("ir_se", "styletalker_e4e.plugin"), ("resnet", "styletalker_e4e.plugin")}


def test_the_shipped_model_loads_with_the_same_keys_and_records_the_same_specs(tmp_path, registries):
    path = PROJECT_ROOT / "checkpoints" / "synthetic_64_model.safetensors"
    model = load_checkpoint(path, registries, roles=["prior", "image_encoder"])
    prior, encoder = model["prior"], model["image_encoder"]
    assert type(prior.backbone) is GRUBackbone and type(encoder.backbone) is IRSEBackbone
    for role, module in (("prior", prior), ("image_encoder", encoder)):
        assert set(module.state_dict()) == set(read_tensors(path, f"{role}."))
    again = save_checkpoint(tmp_path / "again.safetensors", {"prior": prior, "image_encoder": encoder})
    shipped, saved = read_metadata(path)["components"], read_metadata(again)["components"]
    for role in ("prior", "image_encoder"):
        assert saved[role] == shipped[role]  # the build spec, "backbone" a name as written
    assert shipped["prior"]["options"]["backbone"] == "gru" and shipped["image_encoder"]["options"]["backbone"] == "ir_se"


def test_a_recipe_names_a_backbone_or_gives_its_table(registries):
    base = {"name": "r", "model": {"prior": {"name": "autoregressive", **PRIOR}}}

    def problems(backbone: Any) -> list[str]:
        raw = {**base, "model": {"prior": {**base["model"]["prior"], "backbone": backbone}}}
        return validate_raw(raw, registries)

    assert problems("lstm") == [] and problems("leaky") == [] and problems({"name": "leaky", "decay": 0.9}) == []
    assert problems("grux") == ["model.prior.backbone: unknown prior_backbone 'grux'; closest registered names: gru"]
    assert problems({"name": "leaky", "decay": "slow"}) == ["model.prior.backbone.decay: expected a number, got string 'slow'"]
    assert problems(3) == ["model.prior.backbone: expected a prior_backbone name or component table, got integer 3"]
    annotation = Annotated[ComponentSpec, ComponentOf("prior_backbone", by_name=True)]
    assert describe(annotation) == "a prior_backbone name or component table"
    assert check_value("gru", annotation, "x") == [] and check_value("gru", Annotated[ComponentSpec, ComponentOf("flow")], "x")


def test_a_registered_prior_backbone_plugs_into_the_prior(registries):
    named = build_component(registries, "prior", ComponentSpec("autoregressive", {**PRIOR, "backbone": "leaky"}), feature_dim=3)
    table = build_component(registries, "prior", ComponentSpec(
        "autoregressive", {**PRIOR, "backbone": {"name": "leaky", "decay": 0.9}}), feature_dim=3)
    assert type(named.backbone) is LeakyIntegrator and (named.backbone.input_dim, named.backbone.hidden) == (2 + 4, 6)
    assert (named.backbone.decay, table.backbone.decay) == (0.5, 0.9)
    assert named.component_spec.options["backbone"] == "leaky"
    assert table.component_spec.options["backbone"] == ComponentSpec("leaky", {"decay": 0.9})
    z, _ = table.sample(torch.randn(2, 5, 3), generator=torch.Generator().manual_seed(0))
    assert z.shape == (2, 5, 2) and torch.isfinite(table.log_prob(z, torch.randn(2, 5, 3))).all()
    with pytest.raises(RegistryError, match="option hidden=5 conflicts with 6"):  # the prior wires its width
        build_component(registries, "prior", ComponentSpec("autoregressive", {**PRIOR, "backbone": {"name": "leaky", "hidden": 5}}),
                        feature_dim=3)
    with pytest.raises(ComponentError, match=re.escape("model.prior.backbone = 'narrow': gives hidden states of 5, not hidden = 6")):
        build_component(registries, "prior", ComponentSpec("autoregressive", {**PRIOR, "backbone": "narrow"}),
                        recipe_path="model.prior", feature_dim=3)


def test_a_registered_image_encoder_backbone_plugs_into_e4e(registries):
    encoder = build_component(registries, "image_encoder", ComponentSpec("e4e", {**ENCODER, "backbone": "pooling"}))
    assert type(encoder.backbone) is PoolingTrunk
    codes = encoder.eval().encode(torch.rand(2, 3, 16, 16) * 2 - 1)
    assert codes.shape == (2, 4, 8) and torch.isfinite(codes).all()
    # the heads follow the backbone's strides: c3 of a 16 px image is 1x1, so the coarse heads have one conv
    assert len(encoder.styles[0].convs) == 2
