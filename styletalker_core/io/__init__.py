"""Leaf helpers for writing outputs, importing nothing of styletalker but each other: atomic file writes
(:mod:`~styletalker_core.io.atomic`), plain-text tables (:mod:`~styletalker_core.io.table`) and the
progress-bar switch (:mod:`~styletalker_core.io.progress`).
"""
