"""The contract of the ``dataset`` kind (styletalker_core.testing), run on every registered dataset
built with its entry's ``example_options``; datasets that read a folder get a tiny clip dataset."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def test_builtin_datasets_are_registered():
    assert "sharded" in {factory.name for factory in factories_of_kind("dataset")}


@parametrize_with_contracts("dataset")
def test_dataset_contract(component, contract):
    contract(component)
