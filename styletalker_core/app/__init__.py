"""``styletalker app``: a web app (Gradio) for the sampling engine and the streaming engine.

Modules: jobs (the file workflow: uploads checked by content and capped, one job folder per
generation inside the app's work folder, the sampling engine's one-line errors), live (the live
tab: a WebSocket endpoint streaming microphone or file audio to a :class:`StreamSession` and
frames back, with a small JavaScript page), server (the FastAPI app with Gradio mounted on it,
served by uvicorn). docs/streaming.md describes it.
"""

from styletalker_core.app.jobs import AppConfig
from styletalker_core.app.server import build_app, serve

__all__ = ["AppConfig", "build_app", "serve"]
