"""Type checks of recipe values, command-line text conversion, and the TOML writer."""

from __future__ import annotations

import math
import pathlib
import tomllib
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styletalker_core.recipe.toml_writer import dumps
from styletalker_core.recipe.types import check_value, convert_text, describe
from styletalker_core.registry import ComponentOf, ComponentSpec

FlowSpec = Annotated[ComponentSpec, ComponentOf("flow")]


@pytest.mark.parametrize(
    ("annotation", "good", "bad"),
    [
        (int, [0, -3, 10**12], [1.0, True, "1", None]),
        (float, [0, 1.5, -2, float("inf")], [True, "1.5", [1.0]]),
        (bool, [True, False], [0, 1, "true"]),
        (str, ["", "x"], [1, None, ["x"]]),
        (pathlib.Path, ["a/b.toml"], [3]),
        (Literal["loop", "trim"], ["loop", "trim"], ["wrap", 1]),
        (Literal[1, 2], [1, 2], [True, 1.0, 3]),
        (int | None, [None, 4], ["4", 4.5]),
        (list[int], [[], [1, 2]], [[1, "2"], (1.5,), 1]),
        (tuple[float, float], [[0.5, 1], (1.0, 2.0)], [[1.0], [1.0, 2.0, 3.0], ["a", 1.0]]),
        (tuple[int, ...], [[1, 2, 3], []], [[1, 2.5]]),
        (dict[str, float], [{}, {"a": 1.5}], [{"a": "x"}, [1]]),
        (Any, [1, "x", None, {"a": [1]}], []),
        (FlowSpec, [{"name": "maf"}, ComponentSpec("maf")], ["maf", 3]),
    ],
)
def test_check_value_accepts_and_refuses(annotation, good, bad):
    for value in good:
        assert check_value(value, annotation, "f") == [], value
    for value in bad:
        problems = check_value(value, annotation, "f")
        assert problems and all(p.startswith("f") for p in problems), value


def test_check_value_names_the_item_inside_a_list_or_table():
    assert check_value([1, "x", 3], list[int], "stages.a.sizes") == [
        "stages.a.sizes[1]: expected an integer, got string 'x'"
    ]
    assert check_value({"fid": 1.0, "lpips": "low"}, dict[str, float], "notes") == [
        "notes.lpips: expected a number, got string 'low'"
    ]


@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        (int, "an integer"),
        (float, "a number"),
        (bool, "true or false"),
        (str, "a string"),
        (Literal["a", "b"], "one of 'a', 'b'"),
        (list[float], "a list of numbers"),
        (list[Literal["a", "b"]], "a list of values (one of 'a', 'b')"),
        (tuple[int, int], "a list of 2 integers"),
        (tuple[int, str], "a list of 2 values"),
        (int | None, "an integer (or omitted)"),
        (FlowSpec, "a flow component table"),
    ],
)
def test_describe(annotation, text):
    assert describe(annotation) == text


@pytest.mark.parametrize(
    ("text", "annotation", "expected"),
    [
        ("3", int, 3),
        ("-2", Any, -2),
        ("1e-3", float, 1e-3),
        ("2", float, 2.0),
        ("true", bool, True),
        ("[1, 2]", list[int], [1, 2]),
        ("[0.5, 0.9]", tuple[float, float], [0.5, 0.9]),
        ("{a = 1}", dict[str, int], {"a": 1}),
        ("0123", str, "0123"),
        ("true", str, "true"),
        ("some/path.wav", pathlib.Path, "some/path.wav"),
        ("none", str | None, None),
        ("cosine", Literal["constant", "cosine"], "cosine"),
        ("hello world", Any, "hello world"),  # not TOML: kept as text
        ("5", Annotated[int, "doc"], 5),
    ],
)
def test_convert_text(text, annotation, expected):
    value = convert_text(text, annotation)
    assert value == expected and type(value) is type(expected)


@given(st.integers(min_value=-(2**62), max_value=2**62))
def test_convert_text_reads_back_any_integer(number):
    assert convert_text(str(number), int) == number


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_convert_text_reads_back_any_float(number):
    value = convert_text(repr(number), float)
    assert value == number and isinstance(value, float)


# -- TOML writer ------------------------------------------------------------------------------

keys = st.text(min_size=1, max_size=8)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=12,
)


@given(st.dictionaries(keys, values, max_size=5))
def test_toml_writer_round_trips(data):
    assert tomllib.loads(dumps(data)) == data


def test_toml_writer_writes_tables_and_lists_of_tables():
    data = {
        "name": "r",
        "runtime": {"device": "cpu"},
        "model": {"prior": {"name": "p", "flow": {"name": "maf", "sizes": [1, 2]}}},
        "loggers": [{"name": "jsonl"}, {"name": "tb", "extra": {"a": 1}}],
        "empty": [],
        "missing": None,
    }
    text = dumps(data)
    assert "[model.prior.flow]" in text and "[[loggers]]" in text
    expected = {key: value for key, value in data.items() if key != "missing"}
    assert tomllib.loads(text) == expected


def test_toml_writer_special_floats():
    text = dumps({"a": math.inf, "b": -math.inf, "c": math.nan, "d": 1e-300})
    read = tomllib.loads(text)
    assert read["a"] == math.inf and read["b"] == -math.inf and math.isnan(read["c"]) and read["d"] == 1e-300


def test_convert_text_gives_a_float_for_an_optional_float():
    assert type(convert_text("2", float | None)) is float
    assert type(convert_text("2", int | float)) is int
