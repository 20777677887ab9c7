"""``styletalker app``: the web app (Gradio): videos from uploaded files, and a live tab that streams
microphone audio to the server and the frames back (docs/streaming.md)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app",
        help="serve the web app: talking-head videos from uploads, and live streaming from the microphone",
        description="Serve the StyleTalker web app (Gradio) on http://HOST:PORT: upload a face and speech (or record "
        "it) and get the video; or stream the microphone live and watch the frames as they are made. Everything "
        "the app writes stays in its work folder (a fresh temporary folder, removed at exit, unless --work-dir).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--work-dir", metavar="DIR", help="folder for uploads and results (kept at exit)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload in MB (default 50)")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="longest speech and motion video in seconds (default 60)")
    parser.add_argument("--max-live-seconds", type=float, default=300.0, help="longest live stream (default 300 s)")
    parser.add_argument("--max-live", type=int, default=2, help="live streams at once over the server (default 2)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from styletalker_core.app.jobs import AppConfig
    from styletalker_core.app.server import default_work_dir, serve
    from styletalker_core.devices import parse_device
    from styletalker_core.errors import StyleTalkerError

    parse_device(args.device)
    if not 0 < args.port < 65536:
        raise StyleTalkerError(f"--port {args.port}: give a port from 1 to 65535")
    for name in ("max_upload_mb", "max_seconds", "max_live_seconds"):
        if not getattr(args, name) > 0:
            raise StyleTalkerError(f"--{name.replace('_', '-')} {getattr(args, name):g}: give a positive number")
    if args.max_live < 1:
        raise StyleTalkerError(f"--max-live {args.max_live}: give at least 1")
    if args.work_dir:
        work, temporary = Path(args.work_dir), False
        if work.exists() and not work.is_dir():
            raise StyleTalkerError(f"--work-dir {work}: is a file; give a folder")
    else:
        work, temporary = default_work_dir(), True
    config = AppConfig(work, max_upload_mb=args.max_upload_mb, max_audio_seconds=args.max_seconds,
                       max_motion_seconds=args.max_seconds, max_live_seconds=args.max_live_seconds,
                       max_live_sessions=args.max_live, device=args.device)
    try:
        serve(config, args.host, args.port)
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    return 0
