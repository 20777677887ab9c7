"""Fuzzing the recipe loader: TOML text, ``extends`` chains and ``--set`` overrides.

Property: whatever the files and overrides, :func:`load_recipe` returns a Recipe or raises
the project's own error (StyleTalkerError: a RecipeError naming the file or ``--set``), never
another exception, and within the example deadline.

Inputs: valid recipes (a small one on the tiny test components, and every shipped recipe on
the real registries) mutated byte by byte; raw recipe tables with random values at schema
paths written as TOML; chains of files whose ``extends`` point at each other, at themselves,
at missing, odd or over-long names or at non-strings; random ``--set`` assignments.

Profiles (environment variable STYLETALKER_FUZZ): ``ci`` (default: derandomized, a modest
number of examples, the same inputs every run) and ``explore`` (random, 20 times as many).
"""

from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

import pytest
from conftest import tiny_registries
from fuzzing import cpu_bound, fuzz  # shared profiles and time bound
from hypothesis import event, example, given
from hypothesis import strategies as st

from styletalker_core.errors import StyleTalkerError
from styletalker_core.paths import PROJECT_ROOT
from styletalker_core.recipe import Recipe, load_recipe
from styletalker_core.recipe.toml_writer import dumps

TINY = """\
name = "tiny"
description = "a recipe on the tiny test components"
seed = 1

[runtime]
device = "cpu"
num_threads = 2

[model.generator]
name = "tiny_linear"
resolution = 8
num_ws = 2

[model.prior]
name = "tiny_prior"
z_dim = 2

[model.prior.flow]
name = "tiny_affine"
hidden = 4

[stages.fit]
name = "tiny_stage"
steps = 100
lr = 0.01
betas = [0.5, 0.9]
frames = 4

[sample]
chunk_frames = 100

[[loggers]]
name = "jsonl"
filename = "base.jsonl"
"""

SHIPPED = {path.name: path.read_bytes() for path in sorted((PROJECT_ROOT / "recipes").glob("*.toml"))}
TINY_REGISTRIES = tiny_registries()
_REAL: list = []


def real_registries():
    if not _REAL:
        from styletalker_core.plugin_host import get_registries

        _REAL.append(get_registries())
    return _REAL[0]


@pytest.fixture(scope="module", autouse=True)
def warm_up() -> None:
    """Plugins are imported once per process, before any example is timed."""
    real_registries()
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "tiny.toml").write_text(TINY)
        load_recipe(Path(folder) / "tiny.toml", registries=TINY_REGISTRIES)


def load(path: Path | str, overrides: list[str], registries) -> Recipe | None:
    """The property: a Recipe, or a StyleTalkerError (returned as None); anything else fails the test."""
    try:
        with cpu_bound():
            recipe = load_recipe(path, overrides, registries=registries)
    except StyleTalkerError as error:
        assert str(error)  # every error says something
        event(f"refused: {type(error).__name__}")
        return None
    assert isinstance(recipe, Recipe)
    event("loaded")
    return recipe


# -- strategies ------------------------------------------------------------------------------

SCHEMA_WORDS = [
    "name", "description", "seed", "output_dir", "extends", "runtime", "device", "precision", "num_threads",
    "deterministic", "channels_last", "data", "train", "val", "num_workers", "model", "generator", "prior",
    "flow", "kind", "weights", "stages", "fit", "steps", "enabled", "batch_size", "lr", "betas", "weight_decay",
    "lr_schedule", "warmup_steps", "grad_clip", "checkpoint_every", "log_every", "options", "sample",
    "temperature", "pose_scale", "chunk_frames", "motion_fit", "align", "evaluate", "metrics", "clips",
    "loggers", "filename", "notes", "resolution", "num_ws", "z_dim", "hidden", "frames", "loss",
]
INDEX_WORDS = ["0", "1", "2", "99", "-1", "00", "\u00b2", "\u0663", "1_0", " 0"]
keys = st.one_of(st.sampled_from(SCHEMA_WORDS), st.text(max_size=8))
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers().map(lambda i: i * 10**320),  # beyond any float
    st.floats(),
    st.sampled_from(["cpu", "cuda", "cuda:0", "cuda:\u0663", "auto", "fp16", "loop", "trim", "tiny_linear",
                     "tiny_prior", "tiny_affine", "tiny_stage", "jsonl", "none", "generator", "flow", ""]),
    st.text(max_size=12),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                      max_leaves=8)


def _leaf_paths(table: dict, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    paths = []
    for key, value in table.items():
        if isinstance(value, dict):
            paths += _leaf_paths(value, (*prefix, key))
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for index, item in enumerate(value):
                paths += _leaf_paths(item, (*prefix, key, str(index)))
        else:
            paths.append([*prefix, key])
    return paths


LEAF_PATHS = _leaf_paths(tomllib.loads(TINY))  # every value of the valid recipe, e.g. stages.fit.lr
plausible = st.one_of(st.integers(0, 300), st.floats(0.0, 2.0), st.booleans(),
                      st.lists(st.floats(0.0, 1.0), min_size=2, max_size=2), st.sampled_from(["cpu", "trim", "x"]))
field_paths = st.sampled_from(LEAF_PATHS) | st.lists(st.one_of(st.sampled_from(SCHEMA_WORDS), st.sampled_from(INDEX_WORDS), st.text(max_size=6)),
                       min_size=1, max_size=4)

TOKENS = [b"[", b"]", b"[[", b"]]", b"{", b"}", b'"', b"'", b"'''", b'"""', b"=", b".", b",", b"\n", b"\\",
          b"#", b"\x00", b"\xff", b"\xc3", b"\r", b"\t", b" ", b"1e400", b"nan", b"inf", b"-", b"_", b"0x",
          b"1979-05-27T07:32:00Z", b"true", b"extends = ", b"[model.", b"[stages.", b"[[loggers]]", b"name = "]


@st.composite
def mutated(draw, source: bytes) -> bytes:
    """``source`` with a few insertions, deletions, replacements, duplicated or swapped lines."""
    data = bytearray(source)
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "swap", "truncate"]))
        position = draw(st.integers(0, len(data)))
        if operation == "insert":
            data[position:position] = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=4))
        elif operation == "delete":
            del data[position:position + draw(st.integers(1, 12))]
        elif operation == "replace" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif operation in ("duplicate", "swap"):
            lines = bytes(data).split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if operation == "duplicate":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
        elif operation == "truncate":
            del data[position:]
    return bytes(data)


def set_at(table: dict, path: list[str], value: object) -> None:
    """Put ``value`` at ``path`` in nested tables, replacing whatever is in the way."""
    node = table
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


assignments = st.one_of(
    st.tuples(field_paths.map(".".join), st.one_of(plausible.map(lambda v: dumps({"v": v})[4:].strip()),
                                                   values.map(lambda v: dumps({"v": v})[4:].strip() if v is not None else ""),
                                                   st.text(max_size=12)))
    .map(lambda pair: f"{pair[0]}={pair[1]}"),
    st.text(max_size=20),
    st.sampled_from(["stages.fit.betas.0.x=1", "loggers.\u00b2=1", "loggers.\u00b2.x=1", "seed=" + "[" * 2000,
                     "model.generator.kind=[1]", "loggers.0.filename.x=1", "stages.fit.lr=1" + "0" * 400,
                     "=", ".=1", "model.prior.flow.hidden=3", "loggers.0.name=none", "runtime.device=cuda:\u0663"]),
)

no_overrides = st.just([])


# -- properties ------------------------------------------------------------------------------


@fuzz(examples=60)
@given(text=mutated(TINY.encode()), overrides=no_overrides | st.lists(assignments, min_size=1, max_size=2))
@example(text=b"\xff\xfe name = 'x'", overrides=[])
@example(text=b"a = " + b"[" * 2000, overrides=[])
@example(text=b"name = 'x'\n" + b"a = {b = " * 1000, overrides=[])
@example(text=TINY.encode(), overrides=["stages.fit.betas.0.x=1"])
@example(text=TINY.encode() + b'\n[model.encoder]\nname = "x"\nkind = [1]\n', overrides=[])
@example(text=TINY.replace("lr = 0.01", "lr = 1" + "0" * 400).encode(), overrides=[])
def test_mutated_tiny_recipe_loads_or_raises_recipe_error(text: bytes, overrides: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tiny.toml"
        path.write_bytes(text)
        load(path, overrides, TINY_REGISTRIES)


@fuzz(examples=40)
@given(data=st.data(), name=st.sampled_from(sorted(SHIPPED)))
def test_mutated_shipped_recipes_load_or_raise_recipe_error(data: st.DataObject, name: str) -> None:
    text = data.draw(mutated(SHIPPED[name]), label="text")
    overrides = data.draw(no_overrides | st.lists(assignments, min_size=1, max_size=2), label="overrides")
    with tempfile.TemporaryDirectory() as folder:
        for sibling, content in SHIPPED.items():  # extends chains resolve next to the file
            (Path(folder) / sibling).write_bytes(content)
        (Path(folder) / name).write_bytes(text)
        load(Path(folder) / name, overrides, real_registries())


@fuzz(examples=60)
@given(changes=st.lists(st.tuples(field_paths, plausible | values), min_size=1, max_size=3),
       overrides=no_overrides | st.lists(assignments, min_size=1, max_size=3))
def test_random_values_at_schema_paths_load_or_raise_recipe_error(changes: list, overrides: list[str]) -> None:
    raw = tomllib.loads(TINY)
    for path, value in changes:
        set_at(raw, path, value)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "recipe.toml"
        try:
            text = dumps(raw)
        except TypeError:  # a value TOML cannot hold (the writer refuses it): nothing to load
            return
        path.write_text(text, encoding="utf-8")
        load(path, overrides, TINY_REGISTRIES)


extends_values = st.one_of(
    st.sampled_from(["r0.toml", "r1.toml", "r2.toml", "r3.toml", "./r1.toml", "sub/../r2.toml", "missing.toml",
                     ".", "..", "", "/", "/dev/null", "/proc/self/status", "r1", "\u0000", "x" * 300,
                     ("a/" * 3000) + "r1.toml", "sub", "link.toml"]),
    st.text(max_size=10),
    scalars,
    st.lists(st.text(max_size=4), max_size=2),
)
bodies = st.one_of(
    st.just(TINY),
    st.just('name = "child"\n[stages.fit]\nsteps = 5\n'),
    st.just('[model.prior.flow]\nname = "tiny_affine"\n'),
    st.dictionaries(keys, values, max_size=3).map(lambda table: dumps(table) if table else ""),
    mutated(TINY.encode()).map(lambda data: data.decode("utf-8", "replace")),
)


@fuzz(examples=60)
@given(files=st.lists(st.tuples(st.none() | extends_values, bodies), min_size=1, max_size=4),
       overrides=no_overrides | st.lists(assignments, min_size=1, max_size=2))
@example(files=[("r1.toml", TINY), ("r0.toml", TINY)], overrides=[])  # a cycle of two
@example(files=[("x" * 300, TINY)], overrides=[])  # a name too long for the file system
@example(files=[("link.toml", TINY)], overrides=[])  # a symbolic link to itself
def test_extends_chains_load_or_raise_recipe_error(files: list, overrides: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "sub").mkdir()
        (root / "link.toml").symlink_to(root / "link.toml")
        for index, (parent, body) in enumerate(files):
            table = tomllib.loads(body) if _is_toml(body) else None
            if parent is not None and table is not None:
                table.pop("extends", None)
                text = dumps({"extends": parent, **table}) if _writable(parent) else None
                if text is None:
                    text = f"extends = {parent!r}\n{body}"  # Python repr: TOML for simple values, garbage otherwise
            else:
                text = body
            (root / f"r{index}.toml").write_text(text, encoding="utf-8", errors="surrogatepass")
        load(root / "r0.toml", overrides, TINY_REGISTRIES)


def _is_toml(text: str) -> bool:
    try:
        tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return False
    return True


def _writable(value: object) -> bool:
    try:
        dumps({"v": value})
    except TypeError:
        return False
    return True


@pytest.mark.parametrize("reference", ["x" * 5000, "\u0000", "a/" * 3000, "", ".", "/", "recipes"])
def test_odd_recipe_references_raise_recipe_error(reference: str) -> None:
    with pytest.raises(StyleTalkerError):
        load_recipe(reference, [], registries=TINY_REGISTRIES)
