"""The engine's StageContext satisfies the StageContext protocol of the interfaces.

The protocol lives at the bottom layer (it imports nothing of the engine), so nothing checks
the two against each other at import time; this test does, member by member.
"""

from __future__ import annotations

import inspect

import attrs

from styletalker_core.interfaces.stage import StageContext as StageContextProtocol
from styletalker_core.interfaces.stage import TrainingStage
from styletalker_core.train.context import StageContext


def _protocol_members() -> tuple[set[str], set[str], set[str]]:
    """(data attributes, properties, methods) the protocol declares."""
    data = set(StageContextProtocol.__annotations__)
    properties = {name for name, value in vars(StageContextProtocol).items() if isinstance(value, property)}
    methods = {name for name, value in vars(StageContextProtocol).items()
               if inspect.isfunction(value) and not name.startswith("_")}
    return data, properties, methods


def test_protocol_declares_what_stages_use():
    data, properties, methods = _protocol_members()
    assert data == {"recipe", "stage_name", "config", "registries", "runtime", "run_dir", "produced"}
    assert properties == {"device", "stage_dir"}
    assert methods == {"spec", "has_component", "component", "dataset"}


def test_engine_context_has_every_protocol_member_with_the_same_signature():
    data, properties, methods = _protocol_members()
    fields = {field.name for field in attrs.fields(StageContext)}
    assert data <= fields, f"engine context lacks {sorted(data - fields)}"
    for name in properties:
        assert isinstance(inspect.getattr_static(StageContext, name), property), name
    for name in methods:
        expected = list(inspect.signature(getattr(StageContextProtocol, name)).parameters)
        actual = list(inspect.signature(getattr(StageContext, name)).parameters)
        assert actual == expected, f"{name}: engine takes {actual}, protocol declares {expected}"


def test_training_stage_setup_takes_the_protocol():
    hints = inspect.get_annotations(TrainingStage.setup, eval_str=True)
    assert hints["context"] is StageContextProtocol
