"""Sampling: a model file, a reference face and speech (and a motion video) -> talking-head mp4 files.

Modules: settings (the options of a job and where their defaults come from), faces
(reference and motion-video preprocessing), outputs (output names, the overwrite rule,
all-or-nothing streaming writers), engine (:class:`Sampler`: one job end to end, in
chunks), manifest (batch mode from CSV/JSON), demo (the shipped model and assets).

Using it::

    from styletalker_core.sample import Sampler, SampleJob

    sampler = Sampler.from_checkpoint("checkpoints/synthetic_64_model.safetensors")
    job = SampleJob("face.png", "speech.wav", "out/talk.mp4", settings=sampler.settings(seed=1, num_samples=2))
    result = sampler.run(job)            # writes out/talk_0.mp4 and out/talk_1.mp4
"""

from styletalker_core.sample.engine import STAGES, SampleJob, Sampler, SampleResult, Stopwatch, check_job
from styletalker_core.sample.faces import InputError
from styletalker_core.sample.manifest import RowOutcome, read_manifest, run_manifest
from styletalker_core.sample.outputs import output_paths
from styletalker_core.sample.settings import SETTING_NAMES, SampleSettings, settings_from_recipe, with_overrides

__all__ = [
    "SETTING_NAMES",
    "STAGES",
    "InputError",
    "RowOutcome",
    "SampleJob",
    "SampleResult",
    "SampleSettings",
    "Sampler",
    "Stopwatch",
    "check_job",
    "output_paths",
    "read_manifest",
    "run_manifest",
    "settings_from_recipe",
    "with_overrides",
]
