"""e4e / pSp encoder: progressive codes, backbones, and import of published e4e and pSp checkpoints.

The published files are rebuilt here with the key names and shapes of the original code
(encoder4editing / pixel2style2pixel: ``encoder.input_layer``, ``encoder.body.<i>.res_layer``,
``encoder.styles.<i>.convs``, ``latlayer1/2``, a rosinality ``decoder``, top-level ``opts``
dict and ``latent_avg``), and a plain forward written from the original's definition checks
that the converted encoder computes the same codes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_convert_builders import rosinality_generator_state

from styletalker_core.checkpoint import load_checkpoint, read_metadata
from styletalker_core.checkpoint.convert import ConversionError, convert_checkpoint, find_converter
from styletalker_core.errors import CheckpointError
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

pytestmark = pytest.mark.usefixtures("single_thread")


SMALL = dict(stem=8, channels=(8, 16, 32, 64), units=(2, 1, 2, 1), w_dim=16, num_ws=8, reduction=4)


def _bn(state: dict, prefix: str, channels: int, generator: torch.Generator) -> None:
    state[prefix + ".weight"] = 1 + 0.1 * torch.randn(channels, generator=generator)
    state[prefix + ".bias"] = 0.1 * torch.randn(channels, generator=generator)
    state[prefix + ".running_mean"] = 0.1 * torch.randn(channels, generator=generator)
    state[prefix + ".running_var"] = 1 + 0.1 * torch.rand(channels, generator=generator)
    state[prefix + ".num_batches_tracked"] = torch.tensor(1000)


def published_encoder_state(stem, channels, units, w_dim, num_ws, reduction, resolution=64, se=True, seed=0):
    """encoder.* keys of pSp's GradualStyleEncoder / e4e's Encoder4Editing (IR or IR-SE backbone)."""
    g = torch.Generator().manual_seed(seed)
    s: dict[str, torch.Tensor] = {}
    s["input_layer.0.weight"] = torch.randn(stem, 3, 3, 3, generator=g) * 0.3
    _bn(s, "input_layer.1", stem, g)
    s["input_layer.2.weight"] = torch.full((stem,), 0.25)
    index, previous = 0, stem
    for depth, count in zip(channels, units):
        for _unit in range(count):
            p = f"body.{index}"
            if previous != depth:
                s[p + ".shortcut_layer.0.weight"] = torch.randn(depth, previous, 1, 1, generator=g) * 0.3
                _bn(s, p + ".shortcut_layer.1", depth, g)
            _bn(s, p + ".res_layer.0", previous, g)
            s[p + ".res_layer.1.weight"] = torch.randn(depth, previous, 3, 3, generator=g) / math.sqrt(9 * previous)
            s[p + ".res_layer.2.weight"] = torch.full((depth,), 0.25)
            s[p + ".res_layer.3.weight"] = torch.randn(depth, depth, 3, 3, generator=g) / math.sqrt(9 * depth)
            _bn(s, p + ".res_layer.4", depth, g)
            if se:
                s[p + ".res_layer.5.fc1.weight"] = torch.randn(depth // reduction, depth, 1, 1, generator=g) * 0.3
                s[p + ".res_layer.5.fc2.weight"] = torch.randn(depth, depth // reduction, 1, 1, generator=g) * 0.3
            index, previous = index + 1, depth
    top = channels[-1]
    for head in range(num_ws):
        spatial = resolution // 2 ** (len(channels) - (0 if head < 3 else 1 if head < 7 else 2))
        cin = top
        for j in range(int(math.log2(spatial))):
            s[f"styles.{head}.convs.{2 * j}.weight"] = torch.randn(w_dim, cin, 3, 3, generator=g) / math.sqrt(9 * cin)
            s[f"styles.{head}.convs.{2 * j}.bias"] = 0.1 * torch.randn(w_dim, generator=g)
            cin = w_dim
        s[f"styles.{head}.linear.weight"] = torch.randn(w_dim, w_dim, generator=g)
        s[f"styles.{head}.linear.bias"] = 0.1 * torch.randn(w_dim, generator=g)
    s["latlayer1.weight"] = torch.randn(top, channels[-2], 1, 1, generator=g) * 0.3
    s["latlayer1.bias"] = 0.1 * torch.randn(top, generator=g)
    s["latlayer2.weight"] = torch.randn(top, channels[-3], 1, 1, generator=g) * 0.3
    s["latlayer2.bias"] = 0.1 * torch.randn(top, generator=g)
    return s


def published_forward(s: dict, x: torch.Tensor, num_ws: int, progressive: bool) -> torch.Tensor:
    """The original encoders' forward (eval mode) on a published state: codes [b, l, w] without latent_avg."""
    def bn(y, p):
        return F.batch_norm(y, s[p + ".running_mean"], s[p + ".running_var"], s[p + ".weight"], s[p + ".bias"], False, 0.0, 1e-5)

    y = F.prelu(bn(F.conv2d(x, s["input_layer.0.weight"], padding=1), "input_layer.1"), s["input_layer.2.weight"])
    outputs, i = [], 0
    while f"body.{i}.res_layer.1.weight" in s:
        p = f"body.{i}"
        first_of_stage = i == 0 or s[p + ".res_layer.1.weight"].shape[0] != s[f"body.{i - 1}.res_layer.1.weight"].shape[0]
        stride = 2 if first_of_stage else 1
        if p + ".shortcut_layer.0.weight" in s:
            shortcut = bn(F.conv2d(y, s[p + ".shortcut_layer.0.weight"], stride=stride), p + ".shortcut_layer.1")
        else:
            shortcut = F.max_pool2d(y, 1, stride)
        r = bn(y, p + ".res_layer.0")
        r = F.prelu(F.conv2d(r, s[p + ".res_layer.1.weight"], padding=1), s[p + ".res_layer.2.weight"])
        r = bn(F.conv2d(r, s[p + ".res_layer.3.weight"], stride=stride, padding=1), p + ".res_layer.4")
        if p + ".res_layer.5.fc1.weight" in s:
            gate = F.conv2d(F.relu(F.conv2d(F.adaptive_avg_pool2d(r, 1), s[p + ".res_layer.5.fc1.weight"])), s[p + ".res_layer.5.fc2.weight"])
            r = r * torch.sigmoid(gate)
        y = r + shortcut
        outputs.append((i, y))
        i += 1
    ends = [j for j, (k, _) in enumerate(outputs) if k + 1 == len(outputs) or
            s[f"body.{k + 1}.res_layer.1.weight"].shape[0] != s[f"body.{k}.res_layer.1.weight"].shape[0]]
    c1, c2, c3 = (outputs[j][1] for j in ends[-3:])

    def head(h, features):
        z = features
        j = 0
        while f"styles.{h}.convs.{j}.weight" in s:
            z = F.leaky_relu(F.conv2d(z, s[f"styles.{h}.convs.{j}.weight"], s[f"styles.{h}.convs.{j}.bias"], stride=2, padding=1), 0.01)
            j += 2
        z = z.view(-1, z.shape[1])
        weight = s[f"styles.{h}.linear.weight"]
        return F.linear(z, weight / math.sqrt(weight.shape[1]), s[f"styles.{h}.linear.bias"])

    def up_add(a, b):
        return F.interpolate(a, size=b.shape[-2:], mode="bilinear", align_corners=True) + b

    p2 = up_add(c3, F.conv2d(c2, s["latlayer1.weight"], s["latlayer1.bias"]))
    p1 = up_add(p2, F.conv2d(c1, s["latlayer2.weight"], s["latlayer2.bias"]))
    level = [c3] * 3 + [p2] * 4 + [p1] * (num_ws - 7)
    if not progressive:
        return torch.stack([head(h, level[h]) for h in range(num_ws)], dim=1)
    w0 = head(0, c3)
    return torch.stack([w0] + [w0 + head(h, level[h]) for h in range(1, num_ws)], dim=1)


def write_published(path: Path, encoder_type: str, decoder: bool = True, latent_avg: bool = True, se: bool = True,
                    opts_extra: dict | None = None) -> tuple[Path, dict, torch.Tensor]:
    encoder = published_encoder_state(SMALL["stem"], SMALL["channels"], SMALL["units"], SMALL["w_dim"],
                                      SMALL["num_ws"], SMALL["reduction"], se=se)
    state = {f"encoder.{k}": v for k, v in encoder.items()}
    if decoder:
        state.update({f"decoder.{k}": v for k, v in rosinality_generator_state(size=32, style_dim=16).items()})
    average = torch.randn(SMALL["num_ws"], SMALL["w_dim"], generator=torch.Generator().manual_seed(5))
    average[:] = average[0]  # published latent_avg is one w repeated over the layers
    data = {"state_dict": state, "opts": {"encoder_type": encoder_type, "stylegan_size": 32, "dataset_type": "ffhq_encode",
                                          "lpips_lambda": 0.8, "progressive_steps": [0, 20000], **(opts_extra or {})}}
    if latent_avg:
        data["latent_avg"] = average
    torch.save(data, path)
    return path, encoder, average


def _images(n=2, size=64, seed=3):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("encoder_type, fmt, progressive", [("Encoder4Editing", "e4e", True),
                                                          ("GradualStyleEncoder", "psp", False)])
def test_published_checkpoint_converts_and_matches_the_original_forward(tmp_path, encoder_type, fmt, progressive):
    source, encoder_state, average = write_published(tmp_path / "model.pt", encoder_type)
    registries = get_registries()
    assert find_converter(source, registries)[0] == fmt  # detected from the file
    out = convert_checkpoint(source, tmp_path / "model.safetensors", registries=registries)
    checkpoint = load_checkpoint(out, registries)
    encoder, generator = checkpoint["image_encoder"].eval(), checkpoint["generator"]
    options = read_metadata(out)["components"]["image_encoder"]["options"]
    assert options["progressive"] is progressive and options["backbone"] == "ir_se" and options["resolution"] == 64
    assert options["channels"] == list(SMALL["channels"]) and options["units"] == list(SMALL["units"])
    x = _images()
    expected = published_forward(encoder_state, x, SMALL["num_ws"], progressive) + average
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode(x), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(generator.w_avg, average[0])
    assert float(encoder.ood_psnr_threshold) == 0.0 and int(encoder.progressive_stage) == SMALL["num_ws"]
    with torch.no_grad():  # the converted pair works together: codes -> images
        images = generator.synthesis(encoder.encode(x))
    assert images.shape == (2, 3, 32, 32) and bool(torch.isfinite(images).all())


def test_ir_backbone_without_latent_avg_or_decoder(tmp_path):
    source, encoder_state, _ = write_published(tmp_path / "psp.pt", "GradualStyleEncoder", decoder=False,
                                               latent_avg=False, se=False)
    modules = convert_checkpoint(source, tmp_path / "out.safetensors", format_name="psp")
    checkpoint = load_checkpoint(modules)
    assert list(checkpoint.components) == ["image_encoder"]
    encoder = checkpoint["image_encoder"].eval()
    assert encoder.component_spec.options["backbone"] == "ir"
    x = _images(seed=4)
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode(x), published_forward(encoder_state, x, SMALL["num_ws"], False),
                                   atol=1e-4, rtol=1e-4)


def test_conversion_errors_name_the_problem(tmp_path):
    source, _, _ = write_published(tmp_path / "odd.pt", "Encoder4Editing", decoder=False)
    data = torch.load(source, weights_only=True)
    data["state_dict"]["encoder.extra_layer.weight"] = torch.zeros(3)
    del data["state_dict"]["encoder.latlayer2.bias"]
    torch.save(data, source)
    with pytest.raises(ConversionError, match=r"extra_layer.weight.*|latlayer2.bias") as error:
        convert_checkpoint(source, tmp_path / "x.safetensors", format_name="e4e")
    assert "latlayer2.bias" in str(error.value) and "extra_layer" in str(error.value)
    source, _, _ = write_published(tmp_path / "sketch.pt", "GradualStyleEncoder", opts_extra={"input_nc": 1})
    with pytest.raises(ConversionError, match="input_nc"):
        convert_checkpoint(source, tmp_path / "y.safetensors", format_name="psp")
    source, _, _ = write_published(tmp_path / "other.pt", "BackboneEncoderUsingLastLayerIntoW")
    with pytest.raises(ConversionError, match="not supported"):
        convert_checkpoint(source, tmp_path / "z.safetensors", format_name="psp")


class _Payload:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_files_needing_other_globals_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "PWNED"
    source, _, _ = write_published(tmp_path / "evil.pt", "Encoder4Editing")
    data = torch.load(source, weights_only=True)
    data["opts"] = {"encoder_type": "Encoder4Editing", "payload": _Payload(marker)}
    torch.save(data, source)
    with pytest.raises(CheckpointError, match="refused to load"):
        convert_checkpoint(source, tmp_path / "evil.safetensors", format_name="e4e")
    assert not marker.exists()
    import argparse

    data["opts"] = argparse.Namespace(encoder_type="Encoder4Editing")  # older training scripts stored this
    torch.save(data, source)
    with pytest.raises(CheckpointError, match=r"refused to load.*nothing in it was run"):
        convert_checkpoint(source, tmp_path / "ns.safetensors", format_name="e4e")


def _encoder(**options):
    base = dict(resolution=32, num_ws=8, w_dim=16, backbone="ir_se", stem_channels=8, channels=[8, 16, 32, 32],
                units=[1, 1, 1, 1], se_reduction=4)
    return build_component(get_registries(), "image_encoder", ComponentSpec("e4e", {**base, **options})).eval()


def test_progressive_stages_give_one_code_then_more_layers():
    torch.manual_seed(0)
    encoder = _encoder()
    x = _images(size=32)
    with torch.no_grad():
        encoder.set_progressive_stage(0)
        ws = encoder.encode(x)
        assert encoder.active_layers() == 1
        assert torch.equal(ws, ws[:, :1].expand_as(ws))  # W: one code for every layer
        encoder.set_progressive_stage(3)
        ws3 = encoder.encode(x)
        assert encoder.active_layers() == 4
        torch.testing.assert_close(ws3[:, 0], ws[:, 0])
        assert not torch.allclose(ws3[:, 1:4], ws3[:, :1].expand(-1, 3, -1))
        assert torch.equal(ws3[:, 4:], ws3[:, :1].expand(-1, 4, -1))
        encoder.set_progressive_stage(100)
        assert encoder.active_layers() == 8
        average = torch.randn(16)
        offsets = encoder.offsets(x)
        encoder.set_latent_avg(average)
        torch.testing.assert_close(encoder.encode(x), offsets + average)


@pytest.mark.parametrize("backbone", ["ir", "ir_se", "resnet"])
def test_backbones_and_input_resizing(backbone):
    encoder = _encoder(backbone=backbone, progressive=False)
    with torch.no_grad():
        ws = encoder.encode(_images(size=32))
        resized = encoder.encode(_images(size=64))
    assert ws.shape == resized.shape == (2, 8, 16)
    assert bool(torch.isfinite(resized).all())
    with pytest.raises(ValueError, match=r"\[b, 3, h, w\]"):
        encoder.encode(torch.zeros(2, 1, 32, 32))
