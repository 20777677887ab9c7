"""The shipped model (checkpoints/synthetic_64_model.safetensors) reproduces its recorded numbers.

The numbers live in one table, tests/reference/shipped_model_numbers.json, written by
``python tools/record_shipped_numbers.py --write`` from the model file it names (by sha256): the
mean of every metric value in each mode (audio-driven, motion-controllable, the encoder's
reconstruction) over the first 8 of the 60 test clips of the shipped model's data
(``styletalker data synth data/synthetic_64 --clips 400 --seed 1``, clips 340..347), evaluated as
``styletalker ablate recipes/synthetic_64.toml --model checkpoints/synthetic_64_model.safetensors``
evaluates it (README's numbers: the same command over all 60). Here the clips are rendered in
the test's temporary folder (only those 8: clips are deterministic per index) and the model is
evaluated again.

When the model file is replaced, this test fails saying so: record the table again.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "tests" / "reference" / "shipped_model_numbers.json"
RECORD = "python tools/record_shipped_numbers.py --write"


def _tool():
    spec = importlib.util.spec_from_file_location("record_shipped_numbers", ROOT / "tools" / "record_shipped_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _tool()
pytestmark = [pytest.mark.skipif(not TOOL.MODEL.is_file(), reason="the shipped model is not committed"),
              pytest.mark.usefixtures("single_thread")]


@pytest.fixture(scope="module")
def table() -> dict:
    return json.loads(TABLE.read_text())


def close(value: float, expected: float) -> bool:
    """Within 0.02 + 2 % of the recorded value (NaN only where NaN was recorded)."""
    if math.isnan(expected) or math.isnan(value):
        return math.isnan(expected) and math.isnan(value)
    return abs(value - expected) <= 0.02 + 0.02 * abs(expected)


def test_the_table_is_of_the_shipped_model_file(table):
    from styletalker_core.evaluate.judges import file_sha256

    assert table["model"] == str(TOOL.MODEL.relative_to(ROOT))
    assert file_sha256(TOOL.MODEL) == table["model_sha256"], (
        f"{table['model']} changed since its numbers were recorded ({table['recorded']}): run `{RECORD}` "
        "(and update README's results from `python tools/record_shipped_numbers.py --clips 20`)"
    )
    assert table["dataset"] == TOOL.DATASET and table["clips"] == list(TOOL.HELDOUT[:TOOL.CLIPS])


def test_shipped_model_reproduces_its_recorded_numbers(table, tmp_path):
    from styletalker_core.evaluate.judges import file_sha256

    if file_sha256(TOOL.MODEL) != table["model_sha256"]:
        pytest.fail(f"{table['model']} is not the recorded model: run `{RECORD}`")
    data = TOOL.write_clips(tmp_path / "clips", table["dataset"], table["clips"])
    values = TOOL.evaluate(table, data)
    assert set(values) == set(table["values"])
    wrong = [f"{mode} {key}: {values[mode].get(key, math.nan):.4g}, recorded {expected:.4g}"
             for mode, recorded in table["values"].items() for key, expected in recorded.items()
             if not close(values[mode].get(key, math.nan), expected)]
    assert not wrong, "; ".join(wrong)
    # The headline values are there and scored (not skipped): lip sync in both modes, motion transfer, identity, LSE.
    for mode, key in (("audio", "lipsync_corr"), ("motion", "lipsync_corr"), ("motion", "pose_corr"),
                      ("motion", "blink_f1"), ("audio", "identity_mae"), ("audio", "lse_c")):
        assert math.isfinite(values[mode][key]), (mode, key)
