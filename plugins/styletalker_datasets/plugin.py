"""Registers the datasets plugin's components: the sharded clip dataset."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """dataset 'sharded'. Its example options need a dataset folder: contract tests supply ``root``."""
    from styletalker_datasets.sharded import ShardedClipDataset

    registrar.register(
        "dataset",
        "sharded",
        ShardedClipDataset,
        example_options={"root": "", "window_frames": 5, "audio_context_frames": 2, "reference": "random"},
    )
