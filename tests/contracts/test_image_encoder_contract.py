"""The contract of the ``image_encoder`` kind (styletalker_core.testing), run on every registered
implementation built with its entry's ``example_options``."""

from __future__ import annotations

import pytest

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts

pytestmark = pytest.mark.usefixtures("single_thread")


def test_builtin_encoders_are_registered():
    assert "e4e" in {factory.name for factory in factories_of_kind("image_encoder")}


@parametrize_with_contracts("image_encoder")
def test_image_encoder_contract(component, contract):
    contract(component)
