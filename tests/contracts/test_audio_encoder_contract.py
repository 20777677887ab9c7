"""The contract of the ``audio_encoder`` kind (styletalker_core.testing), run on every registered
implementation built with its entry's ``example_options``."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def test_builtin_audio_encoders_are_registered():
    assert {"mel", "wav2vec2"} <= {factory.name for factory in factories_of_kind("audio_encoder")}


@parametrize_with_contracts("audio_encoder")
def test_audio_encoder_contract(component, contract):
    contract(component)
