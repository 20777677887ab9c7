"""`styletalker app` in a real browser: Debian's headless Chromium driven by Playwright
(launched from /usr/bin/chromium; Playwright never downloads a browser of its own).

- the file workflow: upload the shipped face and the first 2.4 s of the shipped speech, wait for
  the video, check that it plays and that its duration matches the audio within one frame
  (screenshot to docs/app_screenshot.png with STYLETALKER_UPDATE_SCREENSHOT=1);
- the live tab with Chromium's fake microphone fed from the shipped speech: frames arrive and
  the measured latency is shown; its audio-file mode streams a whole speech file at real-time pace;
- a bad upload shows exactly the line `styletalker sample` prints for the same file;
- two browser sessions at once both finish (the queue takes them one after the other);
- the app leaves no inputs behind in its work folder.

`make test` installs Chromium (tools/setup_env.py, apt-get); these tests skip only where it
cannot be installed (no apt-get), and fail when apt-get exists but Chromium is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from styletalker_core.sample.shipped import ASSETS, default_model, project_root

ROOT = project_root()
CHROMIUM = Path("/usr/bin/chromium")
FACE, SPEECH = ROOT / ASSETS["reference"], ROOT / ASSETS["speech"]
SCREENSHOT = ROOT / "docs" / "app_screenshot.png"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    f"--use-file-for-fake-audio-capture={SPEECH}",
]
GENERATION_TIMEOUT_MS = 120_000


def require_chromium() -> None:
    if CHROMIUM.is_file():
        return
    if shutil.which("apt-get") is None:
        pytest.skip("Chromium cannot be installed on this machine: /usr/bin/chromium is missing and there is no "
                    "apt-get (tools/setup_env.py installs Debian's chromium with apt)")
    pytest.fail("Chromium is missing at /usr/bin/chromium although apt-get exists: run `python3 tools/setup_env.py` "
                "(it runs apt-get install chromium chromium-driver)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("app-work")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """The shipped speech's first 2.4 s (60 frames, 16-bit WAV like the file): durations, playback and
    real-time pace show on it as on the whole 6.1 s, and each generation costs 40 % of the time."""
    import soundfile

    samples, rate = soundfile.read(str(SPEECH), dtype="int16")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    soundfile.write(str(path), samples[: round(2.4 * rate)], rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def server(work_dir):
    require_chromium()
    if not default_model().is_file():
        pytest.skip(f"the shipped model {default_model()} is missing")
    port = free_port()
    log = open(work_dir.parent / "app.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "styletalker_core.cli.main", "app", "--port", str(port), "--work-dir", str(work_dir)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=work_dir.parent)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url + "/live/", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.close()
            pytest.fail("the app did not start: " + (work_dir.parent / "app.log").read_text()[-2000:])
        time.sleep(0.5)
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh temporary --user-data-dir
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def upload_and_generate(page, url: str, image: Path, audio: Path) -> None:
    page.goto(url + "/")
    page.wait_for_selector("#generate")
    page.locator("#reference input[type=file]").set_input_files(str(image))
    page.locator("#speech input[type=file]").set_input_files(str(audio))
    page.wait_for_selector("#speech audio, #speech .waveform-container, #speech [data-testid='waveform-controls']",
                           state="attached", timeout=20_000)
    page.wait_for_selector("#reference .file-preview, #reference table", state="attached", timeout=20_000)
    page.click("#generate")


def wait_for_video(page) -> dict:
    page.wait_for_selector("#result video", timeout=GENERATION_TIMEOUT_MS)
    return page.evaluate("""async () => {
        const video = document.querySelector('#result video');
        video.muted = true;
        if (!(video.duration > 0)) await new Promise((ok) => video.addEventListener('loadedmetadata', ok, {once: true}));
        const start = video.currentTime;
        await video.play();
        await new Promise((ok) => setTimeout(ok, 800));
        return {duration: video.duration, start, now: video.currentTime, width: video.videoWidth,
                error: video.error ? video.error.code : null, paused: video.paused};
    }""")


def speech_seconds(path: Path) -> float:
    import soundfile

    info = soundfile.info(str(path))
    return info.frames / info.samplerate


def test_file_workflow_makes_a_video_that_plays(page, server, work_dir, tmp_path, speech):
    upload_and_generate(page, server, FACE, speech)
    video = wait_for_video(page)
    assert video["error"] is None and video["width"] == 64
    assert video["now"] > video["start"] + 0.2, video  # it plays
    assert abs(video["duration"] - speech_seconds(speech)) <= 1 / 25 + 1e-6, video
    status = page.locator("#status textarea").input_value()
    assert re.match(r"\d+ frames \(\d+\.\d\d s\) in ", status), status
    page.wait_for_selector("#downloads td.filename[aria-label='talk.mp4']", timeout=20_000)
    assert page.locator("#downloads a[download], #downloads a.download-link").count() >= 1
    # README's screenshot is refreshed on request only, so a test run leaves the checkout unchanged
    refresh = os.environ.get("STYLETALKER_UPDATE_SCREENSHOT") == "1"
    page.screenshot(path=str(SCREENSHOT if refresh else tmp_path / SCREENSHOT.name), full_page=True)
    # the job's inputs are gone; only its result stays (in the work folder)
    jobs = list((work_dir / "jobs").iterdir())
    assert jobs and all(sorted(p.name for p in job.iterdir()) == ["talk.mp4"] for job in jobs)


def test_bad_upload_shows_the_clis_message(page, server, tmp_path, monkeypatch, capsys, speech):
    from styletalker_core.cli.main import main

    bad = tmp_path / "bad.png"
    bad.write_text("this is not an image\n")
    shutil.copyfile(speech, tmp_path / "speech.wav")
    upload_and_generate(page, server, bad, tmp_path / "speech.wav")
    page.wait_for_function("document.querySelector('#status textarea').value.startsWith('styletalker: error:')",
                           timeout=GENERATION_TIMEOUT_MS)
    shown = page.locator("#status textarea").input_value()
    monkeypatch.chdir(tmp_path)
    assert main(["sample", "--image", "bad.png", "--audio", "speech.wav", "--out", "x.mp4", "--no-align"]) == 2
    cli = capsys.readouterr().err.strip()
    assert shown == cli, (shown, cli)
    assert "bad.png" in shown and page.locator("#result video").count() == 0


def test_live_tab_streams_frames_from_the_microphone(page, server):
    page.goto(server + "/")
    page.get_by_role("tab", name="Live").click()
    live = page.frame_locator("#live-frame")
    live.locator("#start").click()
    frame = page.frame(url=lambda address: "/live/" in address)
    frame.wait_for_function("window.liveStats.frames >= 40 || window.liveStats.error", timeout=60_000)
    assert frame.evaluate("window.liveStats.error") is None
    live.locator("#stop").click()
    frame.wait_for_function("window.liveStats.done", timeout=30_000)
    stats = frame.evaluate("window.liveStats")
    assert stats["frames"] >= 40
    assert stats["lookahead"] > 0
    assert all(0 <= latency < 10_000 for latency in stats["latencies"])
    assert re.fullmatch(r"\d+ ms", live.locator("#latency").inner_text())
    assert re.fullmatch(r"\d+ ms", live.locator("#median").inner_text())
    assert live.locator("#state").inner_text().startswith("done:")
    drawn = frame.evaluate("""() => { const c = document.getElementById('screen').getContext('2d');
        const d = c.getImageData(0, 0, 64, 64).data; let sum = 0; for (let i = 0; i < d.length; i += 4) sum += d[i];
        return sum; }""")
    assert drawn > 0  # a face was drawn on the canvas


def test_two_sessions_at_once_both_finish(browser, server, speech):
    contexts = [browser.new_context() for _ in range(2)]
    try:
        pages = [context.new_page() for context in contexts]
        for page in pages:
            upload_and_generate(page, server, FACE, speech)
        for page in pages:
            video = wait_for_video(page)
            assert abs(video["duration"] - speech_seconds(speech)) <= 1 / 25 + 1e-6
            assert page.locator("#status textarea").input_value().endswith("s")
    finally:
        for context in contexts:
            context.close()


def test_nothing_is_left_outside_the_work_folder(server, work_dir):
    """Uploads went to the work folder's Gradio cache; live sessions left no folders."""
    assert (work_dir / "gradio").is_dir()
    assert not [p for p in work_dir.iterdir() if p.name.startswith("live-")]


def test_live_tab_streams_an_audio_file_at_real_time_pace(page, server, speech):
    """The live page's file mode: the whole speech file is played in real time and every frame comes back."""
    page.goto(server + "/live/")
    page.select_option("#source", "file")
    page.set_input_files("#audiofile", str(speech))
    began = time.monotonic()
    page.click("#start")
    page.wait_for_function("window.liveStats.done || window.liveStats.error", timeout=60_000)
    stats = page.evaluate("window.liveStats")
    assert stats["error"] is None
    expected = -(-round(speech_seconds(speech) * 16000) // 640)
    assert abs(stats["frames"] - expected) <= 2, (stats["frames"], expected)
    assert time.monotonic() - began >= speech_seconds(speech) - 0.5  # real-time pace, not faster
