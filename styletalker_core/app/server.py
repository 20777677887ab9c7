"""The app server: a FastAPI app holding the live routes, with the Gradio interface mounted at ``/``.

Gradio's queue runs one generation at a time over the whole server (two CPU cores are no place
for two at once) and at most one per browser session (``trigger_mode="once"``); others wait in
the queue, with their place shown. Uploads are capped in size by Gradio and stored in the work
folder (``GRADIO_TEMP_DIR``), whose old files Gradio deletes (``delete_cache``).
"""

from __future__ import annotations

import os
from pathlib import Path

from styletalker_core.app.jobs import MODES, AppConfig, Models, run_job

IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".webp", ".bmp"]
VIDEO_TYPES = [".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"]


def build_interface(config: AppConfig, models: Models):  # noqa: ANN201 - gradio.Blocks
    import gradio as gr

    from styletalker_core.sample.shipped import ASSETS, project_root

    shipped_face = project_root() / ASSETS["reference"]
    shipped_speech = project_root() / ASSETS["speech"]
    choices = models.choices()

    def generate(image: str | None, audio: str | None, motion: str | None, model: str, mode: str, seed: float, temperature: float,
                 num_samples: float, pose_scale: float, still: bool, aligned: bool,
                 progress=gr.Progress(track_tqdm=True)) -> tuple[str | None, list[str] | None, str]:  # noqa: ANN001, B008 - Gradio's progress hook
        progress(0, desc="reading the inputs")
        outputs, status = run_job(config, models, image=image, audio=audio, motion=motion, model=model, mode=mode,
                                  seed=seed, temperature=temperature, num_samples=num_samples, pose_scale=pose_scale,
                                  still=still, aligned=aligned)
        paths = [str(path) for path in outputs]
        return (paths[0] if paths else None), (paths or None), status

    def use_shipped():  # noqa: ANN202
        return str(shipped_face), str(shipped_speech)

    def preview(path):  # noqa: ANN001, ANN202
        from styletalker_core.media import MediaError, read_image

        if not path:
            return None
        try:
            return read_image(path)
        except (MediaError, OSError):
            return None

    with gr.Blocks(title="StyleTalker", delete_cache=(600, int(60 * config.keep_minutes))) as blocks:
        gr.Markdown("# StyleTalker\nA reference face and speech make a talking-head video. "
                    f"Speech up to {config.max_audio_seconds:.0f} s, uploads up to {config.max_upload_mb:.0f} MB; "
                    "one generation at a time (others wait in the queue).")
        with gr.Tab("Video from files", id="files"):
            with gr.Row():
                with gr.Column():
                    image = gr.File(label="reference face image", file_types=IMAGE_TYPES, type="filepath",
                                    elem_id="reference")
                    face = gr.Image(label="reference", interactive=False, height=160, elem_id="reference-preview")
                    audio = gr.Audio(label="speech (upload or record)", sources=["upload", "microphone"], type="filepath",
                                     elem_id="speech")
                    shipped = gr.Button("use the shipped face and speech", size="sm", elem_id="use-shipped")
                    motion = gr.File(label="motion video (motion-controllable mode)", file_types=VIDEO_TYPES,
                                     type="filepath", elem_id="motion")
                with gr.Column():
                    model = gr.Dropdown(choices, value=choices[0] if choices else None, label="model file", elem_id="model")
                    mode = gr.Radio(list(MODES), value=MODES[0], label="mode", elem_id="mode")
                    with gr.Row():
                        seed = gr.Number(0, label="seed", precision=0, minimum=0, elem_id="seed")
                        samples = gr.Slider(1, config.max_samples, value=1, step=1, label="motion samples", elem_id="samples")
                    temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="temperature", elem_id="temperature")
                    pose = gr.Slider(0, 2, value=1.0, step=0.05, label="pose scale", elem_id="pose")
                    with gr.Row():
                        still = gr.Checkbox(False, label="still (lips only)", elem_id="still")
                        aligned = gr.Checkbox(True, label="the image is an aligned face crop (no face detection)",
                                              elem_id="aligned")
                    button = gr.Button("Generate", variant="primary", elem_id="generate")
                    status = gr.Textbox(label="status", interactive=False, elem_id="status")
                    video = gr.Video(label="result", interactive=False, height=320, elem_id="result")
                    files = gr.File(label="download", file_count="multiple", interactive=False, elem_id="downloads")
            image.change(preview, image, face)
            shipped.click(use_shipped, None, [image, audio], queue=False)
            button.click(generate, [image, audio, motion, model, mode, seed, temperature, samples, pose, still, aligned],
                         [video, files, status], concurrency_limit=1, concurrency_id="generate", trigger_mode="once")
        with gr.Tab("Live", id="live"):
            gr.Markdown("Speak into the microphone (or pick an audio file, played in real time): the audio streams "
                        "to the server and the frames come back as they are made, with the measured latency.")
            gr.HTML('<iframe id="live-frame" src="/live/" allow="microphone; autoplay" '
                    'style="width:100%;height:560px;border:0"></iframe>')
    blocks.queue(max_size=32, default_concurrency_limit=1)
    return blocks


def build_app(config: AppConfig):  # noqa: ANN201 - fastapi.FastAPI
    """The FastAPI app: the live routes, and the Gradio interface at ``/``."""
    config.work_dir.mkdir(parents=True, exist_ok=True)
    config.cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(config.cache_dir)  # uploads and results stay in the work folder
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr
    from fastapi import FastAPI

    from styletalker_core.app.live import add_live_routes

    models = Models(config.device)
    if not models.choices():
        from styletalker_core.errors import StyleTalkerError
        from styletalker_core.sample.shipped import default_model, make_model_command

        raise StyleTalkerError(f"no model to serve: {default_model()} is missing; make it with `{make_model_command()}`")
    app = FastAPI()
    add_live_routes(app, config, models)
    blocks = build_interface(config, models)
    return gr.mount_gradio_app(app, blocks, path="/", allowed_paths=[str(config.work_dir)],
                               max_file_size=int(config.max_upload_mb * 2**20), ssr_mode=False,
                               footer_links=[])


def serve(config: AppConfig, host: str = "127.0.0.1", port: int = 7860) -> None:
    import uvicorn

    app = build_app(config)
    print(f"styletalker app: serving on http://{host}:{port} (work folder {config.work_dir}); Ctrl-C stops it",
          flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", ws_max_size=2**24)


def default_work_dir() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="styletalker-app-"))
