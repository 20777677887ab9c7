"""Built-in plugin: the synthetic domain in one place. ``world/`` renders it (faces, speech, clips,
datasets), ``commands.py`` adds ``styletalker data synth``, and the registered components score it
(factor oracle, its training stage and ground-truth metrics)."""
