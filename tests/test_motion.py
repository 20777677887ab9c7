"""Lip mapper and sequential motion VAE: layer masks, identity conditioning, a bidirectional
posterior, audio conditioning that can be switched off."""

from __future__ import annotations

import pytest
import torch

from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

DIMS = {"num_ws": 5, "w_dim": 6, "feature_dim": 4}


def lip_mapper(**options):
    torch.manual_seed(0)
    return build_component(get_registries(), "lip_mapper", ComponentSpec("conv", {"hidden": 12, **options}), **DIMS)


def vae(**options):
    torch.manual_seed(0)
    return build_component(get_registries(), "motion_vae",
                           ComponentSpec("sequential", {"z_dim": 3, "hidden": 8, "decoder_hidden": 12, **options}), **DIMS)


def test_layer_masks_keep_offsets_on_the_chosen_layers_only():
    features, w_id = torch.randn(2, 6, 4), torch.randn(2, 5, 6)
    lips = lip_mapper(layers=[3, 1])(features, w_id)
    motion = vae(layers=[0])
    moved = motion.decode(torch.randn(2, 6, 3), w_id)
    for offsets, chosen in ((lips, {1, 3}), (moved, {0})):
        per_layer = offsets.abs().amax(dim=(0, 1, 3))
        assert {i for i in range(5) if per_layer[i] > 0} == chosen


@pytest.mark.parametrize("layers", [[5], [1, 1], [-1]])
def test_bad_layer_masks_are_refused(layers):
    with pytest.raises(ValueError, match="layers"):
        lip_mapper(layers=layers)


def test_offsets_start_small_and_depend_on_identity():
    mapper = lip_mapper()
    features = torch.randn(1, 6, 4)
    first, second = torch.randn(1, 5, 6), torch.randn(1, 5, 6)
    a, b = mapper(features, first), mapper(features, second)
    assert not torch.allclose(a, b)
    assert a.abs().mean() < 0.5  # near w_id at initialisation
    plain = lip_mapper(identity_conditioning=False)
    torch.testing.assert_close(plain(features, first), plain(features, second))


def test_posterior_is_bidirectional_and_decoder_uses_identity():
    model = vae().eval()
    dw, audio = torch.randn(1, 8, 5, 6), torch.randn(1, 8, 4)
    mean, _ = model.posterior(dw, audio)
    later = dw.clone()
    later[:, 6] += 1.0
    changed = (model.posterior(later, audio)[0] - mean).abs().amax(dim=(0, 2)) > 0
    assert changed.all()  # the past sees the future and the future the past
    z = torch.randn(1, 8, 3)
    assert not torch.allclose(model.decode(z, torch.randn(1, 5, 6)), model.decode(z, torch.randn(1, 5, 6)))


def test_posterior_reads_audio_unless_audio_conditioning_is_off():
    dw = torch.randn(1, 8, 5, 6)
    silent, loud = torch.zeros(1, 8, 4), torch.randn(1, 8, 4)
    conditioned, plain = vae().eval(), vae(audio_conditioning=False).eval()
    assert not torch.allclose(conditioned.posterior(dw, silent)[0], conditioned.posterior(dw, loud)[0])
    torch.testing.assert_close(plain.posterior(dw, silent)[0], plain.posterior(dw, loud)[0])
