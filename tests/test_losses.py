"""Losses package: MS-SSIM against kornia's SSIM, LPIPS weight layouts and behaviour, W+ regularisers."""

from __future__ import annotations

import math

import kornia.metrics
import pytest
import torch
from safetensors.torch import save_file

from styletalker_core.errors import CheckpointError, StyleTalkerError
from styletalker_core.losses import (
    LPIPS,
    MSSSIMLoss,
    MultiScaleSSIM,
    build_perceptual_loss,
    delta_regularisation,
    latent_distance,
    latent_l2,
)
from styletalker_core.losses.lpips import TAP_CHANNELS, VGG16_CONVS
from styletalker_core.losses.ssim import default_scales

pytestmark = pytest.mark.usefixtures("single_thread")


def _images(seed: int, n: int = 3, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=generator)


def test_single_scale_equals_kornia_ssim():
    x = _images(0)
    y = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    ours = MultiScaleSSIM(scales=1, data_range=1.0)(x, y)
    reference = kornia.metrics.ssim(x, y, 11).mean(dim=(1, 2, 3))
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_ms_ssim_is_one_for_identical_images_and_falls_with_noise():
    x = _images(2, size=64) * 2 - 1
    loss = MSSSIMLoss()
    assert torch.allclose(loss(x, x), torch.zeros(3), atol=1e-6)
    previous = torch.zeros(3)
    for sigma in (0.05, 0.2, 0.5):
        noisy = x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
        value = loss(noisy, x)
        assert bool((value > previous).all())
        previous = value


def test_ms_ssim_scales_and_gradients():
    assert default_scales(64) == 4 and default_scales(256) == 5 and default_scales(8) == 1
    x = (_images(4, size=64) * 2 - 1).requires_grad_(True)
    y = _images(5, size=64) * 2 - 1
    MSSSIMLoss()(x, y).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="one shape"):
        MSSSIMLoss()(x, y[:, :, :32])


def _lpips_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random LPIPS-VGG16 weights in torchvision's layout (plus a classifier key, which is ignored)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for index, (cin, cout) in VGG16_CONVS.items():
        state[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=generator) * math.sqrt(2 / (9 * cin))
        state[f"features.{index}.bias"] = torch.zeros(cout)
    for k, channels in enumerate(TAP_CHANNELS):
        state[f"lin{k}.weight"] = torch.rand(1, channels, 1, 1, generator=generator) / channels
    state["classifier.0.weight"] = torch.zeros(2, 2)
    return state


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory) -> dict[str, object]:
    """The same random LPIPS weights written in both layouts (built once: VGG16 is large)."""
    folder = tmp_path_factory.mktemp("lpips")
    state = _lpips_state(seed=3)
    slices = {0: 1, 2: 1, 5: 2, 7: 2, 10: 3, 12: 3, 14: 3, 17: 4, 19: 4, 21: 4, 24: 5, 26: 5, 28: 5}
    renamed = {"scaling_layer.shift": torch.zeros(1, 3, 1, 1)}
    for key, value in state.items():
        if key.startswith("features."):
            index = int(key.split(".")[1])
            renamed[f"net.slice{slices[index]}.{key[len('features.'):]}"] = value
        elif key.startswith("lin"):
            renamed[key.replace(".weight", ".model.1.weight")] = value
    save_file(state, str(folder / "torchvision.safetensors"))
    save_file(renamed, str(folder / "lpips.safetensors"))
    return {"torchvision": folder / "torchvision.safetensors", "lpips": folder / "lpips.safetensors", "state": state}


def test_lpips_loads_both_layouts_into_the_same_model(lpips_files):
    a, b = LPIPS(), LPIPS()
    a.load_weights(lpips_files["torchvision"])
    b.load_weights(lpips_files["lpips"])
    assert not any(p.requires_grad for p in a.parameters())
    x = _images(6, n=2, size=32) * 2 - 1
    y = _images(7, n=2, size=32) * 2 - 1
    different = a(x, y)
    torch.testing.assert_close(b(x, y), different)
    assert torch.allclose(a(x, x), torch.zeros(2), atol=1e-7)
    assert bool((different > 0).all())
    torch.testing.assert_close(torch.stack(a.layer_distances(x, y)).sum(0), different)
    small = a(x[:, :, :16, :16], y[:, :, :16, :16])  # upsampled to 32 px internally
    assert small.shape == (2,) and bool(torch.isfinite(small).all())


def test_lpips_refuses_foreign_weights(tmp_path, lpips_files):
    state = dict(lpips_files["state"])
    state["something.else"] = torch.zeros(1)
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(CheckpointError, match=r"unexpected key 'something.else'"):
        LPIPS().load_weights(tmp_path / "bad.safetensors")
    state = dict(lpips_files["state"])
    del state["lin4.weight"]
    save_file(state, str(tmp_path / "missing.safetensors"))
    with pytest.raises(CheckpointError, match=r"lins.4.weight"):
        LPIPS().load_weights(tmp_path / "missing.safetensors")


def test_build_perceptual_loss_picks_lpips_only_with_weights(lpips_files):
    assert build_perceptual_loss().kind == "ms_ssim"
    assert build_perceptual_loss("ms_ssim", lpips_weights=None).kind == "ms_ssim"
    loss = build_perceptual_loss(lpips_weights=lpips_files["torchvision"])
    assert loss.kind == "lpips"
    with pytest.raises(StyleTalkerError, match="lpips_weights"):
        build_perceptual_loss("lpips")


def test_latent_regularisers_on_hand_computed_codes():
    w_avg = torch.tensor([1.0, -1.0])
    ws = torch.tensor([[[1.0, -1.0], [3.0, -1.0], [1.0, 1.0]]])  # [1, 3, 2]
    torch.testing.assert_close(latent_distance(ws, w_avg), torch.tensor([(4 + 4) / 6]))
    # deltas from layer 0: [2, 0] and [0, 2] -> L2 norms 2 + 2; only the first delta with layers=2
    torch.testing.assert_close(delta_regularisation(ws), torch.tensor([4.0]))
    torch.testing.assert_close(delta_regularisation(ws, layers=2), torch.tensor([2.0]))
    torch.testing.assert_close(delta_regularisation(ws, layers=1), torch.tensor([0.0]))
    torch.testing.assert_close(delta_regularisation(ws, p=1.0), torch.tensor([4.0]))
    torch.testing.assert_close(latent_l2(ws, ws + 1), torch.tensor([1.0]))


def test_gradient_l1_measures_edges_not_offsets():
    from styletalker_core.losses import gradient_l1

    x = torch.zeros(2, 1, 4, 4)
    x[:, :, :, 2:] = 1.0  # one vertical edge
    torch.testing.assert_close(gradient_l1(x, x + 0.5), torch.zeros(2))  # a constant offset has no edges
    # the edge's 4 horizontal differences of 1 among 4 x 3 = 12 positions; no vertical differences
    torch.testing.assert_close(gradient_l1(x, torch.zeros_like(x)), torch.full((2,), 4 / 12))


def test_detail_weights_are_one_on_flat_images_and_large_around_small_features():
    from styletalker_core.losses import detail_weights

    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(detail_weights(flat, 30.0), torch.ones(1, 1, 16, 16))
    dot = flat.clone()
    dot[..., 8, 8] = -1.0  # a one-pixel dark feature, like a pupil
    weights = detail_weights(dot.requires_grad_(), 30.0)
    assert weights.shape == (1, 1, 16, 16) and not weights.requires_grad  # depends on the target only
    assert float(weights[0, 0, 8, 8]) > 30 and float(weights[0, 0, 7, 9]) > 30  # the feature and its neighbours
    assert abs(float(weights[0, 0, 0, 0]) - 1.0) < 1e-4  # far from it


def test_landmark_box_mask_covers_the_grown_box_and_rescales_from_the_source_frame():
    from styletalker_core.losses import MOUTH_POINTS, landmark_box_mask

    landmarks = torch.zeros(1, 68, 2)
    landmarks[0, 48:68] = torch.tensor([[20.0, 30.0], [28.0, 34.0]]).repeat(10, 1)  # mouth box x 20..28, y 30..34
    mask = landmark_box_mask(landmarks, MOUTH_POINTS, (64, 64), margin=0.25)
    assert mask.shape == (1, 1, 64, 64)
    rows, columns = torch.nonzero(mask[0, 0] >= 0.5, as_tuple=True)  # pixels on the edge count half
    assert (int(columns.min()), int(columns.max())) == (18, 30)  # grown by 0.25 * 8 = 2 pixels each side
    assert (int(rows.min()), int(rows.max())) == (28, 36)
    assert float(mask[0, 0, 0, 0]) == 0.0
    halved = landmark_box_mask(landmarks, MOUTH_POINTS, (32, 32), margin=0.25, source_size=(64, 64))
    torch.testing.assert_close(halved.sum(), mask.sum() / 4, atol=3.0, rtol=0.0)


def test_masked_l1_is_the_mean_error_inside_the_mask():
    from styletalker_core.losses import masked_l1

    error = torch.zeros(2, 3, 8, 8)
    error[0, :, 2:4, 2:4] = 1.0
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:6, 2:6] = 1.0
    torch.testing.assert_close(masked_l1(error, mask), torch.tensor([0.25, 0.0]))
    assert float(masked_l1(error, torch.zeros_like(mask))[0]) == 0.0  # an empty mask gives 0, not NaN
