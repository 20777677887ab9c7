"""Settings of one sampling job: defaults from the model's recipe, overridden per command or manifest row.

Precedence, lowest first: :class:`SampleSettings` defaults, the ``[sample]`` table of the
recipe stored in the checkpoint, the command line, a manifest row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, get_args

import attrs

from styletalker_core.errors import StyleTalkerError

MotionFit = Literal["loop", "trim"]
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
CRF_RANGE = (0, 51)  # x264's constant rate factor for 8-bit video
SEED_RANGE = (0, 2**63 - 1)  # what torch.Generator.manual_seed takes without wrapping


def _positive(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise StyleTalkerError(f"{attribute.name.replace('_', '-')} {value}: give a whole number of at least 1")


def _non_negative(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):  # refuses NaN, infinity and negative numbers
        raise StyleTalkerError(f"{attribute.name.replace('_', '-')} {value}: give a number of at least 0 (finite, not inf or nan)")


def _within(low: int, high: int, hint: str = ""):  # noqa: ANN202 - an attrs validator
    def check(instance: Any, attribute: attrs.Attribute, value: int) -> None:
        if not low <= value <= high:
            raise StyleTalkerError(f"{attribute.name.replace('_', '-')} {value}: give a whole number from {low} to {high}{hint}")

    return check


def _one_of(choices: tuple[str, ...]):  # noqa: ANN202 - an attrs validator
    def check(instance: Any, attribute: attrs.Attribute, value: str) -> None:
        if value not in choices:
            raise StyleTalkerError(f"{attribute.name.replace('_', '-')} {value!r}: choose one of {', '.join(choices)}")

    return check


@attrs.frozen
class SampleSettings:
    """How frames are generated and written.

    temperature: scale of the prior's base Gaussian (0: its mode; audio-driven mode only).
    num_samples: independent audio-driven motions for the same audio (one video each).
    seed: seeds the prior's draws, so the same seed gives the same videos.
    pose_scale: multiplies the motion offsets (0 freezes the head, 1 as learned).
    still: no motion offsets at all (lips only); needs no motion source.
    motion_fit: a motion source shorter than the audio is looped back and forth ("loop"),
        or the video stops with the shorter of the two ("trim").
    align: detect and FFHQ-align the face of the reference and of each motion-source frame;
        False: the inputs are already aligned crops, only centre-cropped square and resized.
    batch_size: frames per generator call; chunk_frames: frames generated per chunk (memory
        grows with it, not with the audio length).
    crf, preset: x264 quality (0 lossless, 18 visually lossless, 51 the most lossy; the range is
        0-51) and speed preset.
    paste_back: composite each generated face back into the reference picture (or into each
        frame of a reference video) at its own resolution (styletalker_core.sample.paste_back).
    reference_frame: the frame of a reference video whose face is the identity (default 0).
        temperature and pose_scale are finite and at least 0; seed is 0 to 2**63-1.
    """

    temperature: float = attrs.field(default=1.0, validator=_non_negative)
    num_samples: int = attrs.field(default=1, validator=_positive)
    seed: int = attrs.field(default=0, validator=_within(*SEED_RANGE))
    pose_scale: float = attrs.field(default=1.0, validator=_non_negative)
    still: bool = False
    motion_fit: MotionFit = attrs.field(default="loop", validator=_one_of(get_args(MotionFit)))
    align: bool = True
    batch_size: int = attrs.field(default=16, validator=_positive)
    chunk_frames: int = attrs.field(default=250, validator=_positive)
    crf: int = attrs.field(default=18, validator=_within(*CRF_RANGE, " (x264: 0 lossless, 18 visually lossless, 51 smallest)"))
    preset: str = attrs.field(default="medium", validator=_one_of(X264_PRESETS))
    paste_back: bool = False
    reference_frame: int = attrs.field(default=0, validator=_within(0, 2**31 - 1))


SETTING_NAMES = tuple(field.name for field in attrs.fields(SampleSettings))
_RECIPE_KEYS = ("temperature", "pose_scale", "batch_size", "chunk_frames", "motion_fit", "align")


def settings_from_recipe(recipe: Mapping[str, Any] | None) -> SampleSettings:
    """Defaults for a model: its recipe's ``[sample]`` table (a resolved recipe as stored in a checkpoint)."""
    table = (recipe or {}).get("sample") or {}
    return SampleSettings(**{key: table[key] for key in _RECIPE_KEYS if key in table})


def _convert(name: str, value: Any, source: str) -> Any:
    """A setting's value from text (manifest cells) or JSON, converted to the field's type."""
    kind = {field.name: field.type for field in attrs.fields(SampleSettings)}[name]
    if kind in ("bool", bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise StyleTalkerError(f"{source}: {name} {value!r}: give true or false")
    if kind in ("int", int):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise StyleTalkerError(f"{source}: {name} {value!r}: give a whole number")
        try:
            return int(value) if not isinstance(value, str) else int(value.strip())
        except ValueError:
            raise StyleTalkerError(f"{source}: {name} {value!r}: give a whole number") from None
    if kind in ("float", float):
        if isinstance(value, bool):
            raise StyleTalkerError(f"{source}: {name} {value!r}: give a number")
        try:
            return float(value)
        except ValueError:
            raise StyleTalkerError(f"{source}: {name} {value!r}: give a number") from None
    return str(value).strip()


def with_overrides(settings: SampleSettings, overrides: Mapping[str, Any], source: str = "settings") -> SampleSettings:
    """``settings`` with the given fields replaced; None values and empty strings are ignored.

    Values may be text (as read from a CSV manifest); an unknown name or a bad value is a
    StyleTalkerError that names ``source``.
    """
    changes = {}
    for name, value in overrides.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if name not in SETTING_NAMES:
            raise StyleTalkerError(f"{source}: unknown setting {name!r}; settings are {', '.join(SETTING_NAMES)}")
        changes[name] = _convert(name, value, source)
    try:
        return attrs.evolve(settings, **changes)
    except StyleTalkerError as error:
        if source == "command line":  # the message starts with the setting's name: name the option
            raise StyleTalkerError(f"--{error}") from None
        raise StyleTalkerError(f"{source}: {error}") from None
