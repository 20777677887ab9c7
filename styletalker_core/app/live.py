"""The live tab: audio streamed from the browser over a WebSocket, frames streamed back as they are made.

Protocol on ``/live/ws`` (one stream per connection):

- client -> server, text: ``{"type": "start", "rate": HZ, "seed": N, "temperature": T,
  "pose_scale": S, "still": bool, "model": NAME, "image": "<base64 image>" (optional;
  default the shipped face)}``, later ``{"type": "stop"}`` (end of the audio);
- client -> server, binary: one audio chunk: a little-endian float64 timestamp (the client's
  clock when the chunk's last sample was captured), then float32 mono samples at ``rate``;
- server -> client, text: ``{"type": "ready", "lookahead_ms": ..., "fps": 25, "size": 64}``, then
  one ``{"type": "frame", "index": i, "time": s, "sent": <the timestamp of the chunk that completed
  the frame>, "compute_ms": ..., "image": "data:image/png;base64,..."}`` per frame, and
  ``{"type": "done", "frames": n}`` or ``{"type": "error", "message": "styletalker: error: ..."}``.

The page measures the latency of each frame as its arrival time minus ``sent``: transport and
compute, from the moment the audio it waited for was captured. The algorithmic look-ahead (the
audio after the frame it must wait for) is shown beside it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, Response

from styletalker_core.errors import StyleTalkerError

MAX_CHUNK_SAMPLES = 48000 * 2  # one message holds at most 2 s of audio at 48 kHz
MAX_IMAGE_BYTES = 10 * 2**20


def png_data_url(rgb: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class LiveLimiter:
    """At most ``limit`` live streams at once over the whole server."""

    def __init__(self, limit: int) -> None:
        self.limit, self.active = limit, 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.active -= 1


def add_live_routes(app, config, models) -> None:  # noqa: ANN001 - FastAPI app, AppConfig, Models
    limiter = LiveLimiter(config.max_live_sessions)

    @app.get("/live/", response_class=HTMLResponse)
    def live_page() -> HTMLResponse:
        return HTMLResponse(LIVE_PAGE.replace("__MODELS__", json.dumps(models.choices())))

    @app.get("/live/worklet.js")
    def worklet() -> Response:
        return Response(WORKLET, media_type="text/javascript")

    @app.websocket("/live/ws")
    async def live_socket(socket: WebSocket) -> None:
        origin, host = socket.headers.get("origin"), socket.headers.get("host")
        if origin is not None and urlsplit(origin).netloc != host:  # another site's page may not drive it
            await socket.close(code=1008)
            return
        await socket.accept()
        if not limiter.enter():
            await socket.send_text(json.dumps({"type": "error", "message": "styletalker: error: the server runs "
                                               f"{config.max_live_sessions} live streams already; try again later"}))
            await socket.close()
            return
        try:
            await run_live(socket, config, models)
        except WebSocketDisconnect:
            pass
        finally:
            limiter.leave()


async def _send_frames(socket, frames, sent: float) -> None:  # noqa: ANN001
    for frame in frames:
        rgb = await asyncio.to_thread(frame.rgb)
        await socket.send_text(json.dumps({
            "type": "frame", "index": frame.index, "time": frame.time, "sent": sent,
            "compute_ms": 1000 * frame.latency, "image": png_data_url(rgb)}))


def _open_live_session(config, models, start: dict, folder: Path):  # noqa: ANN001, ANN202
    from styletalker_core.sample.shipped import ASSETS, project_root
    from styletalker_core.sample.stream import open_session

    rate = int(start.get("rate") or 0)
    if not 8000 <= rate <= 192000:
        raise StyleTalkerError(f"live: sample rate {rate}: give 8000 to 192000 Hz")
    sampler = models.get(str(start.get("model") or models.choices()[0]))
    settings = sampler.settings(seed=int(start.get("seed", 0)), temperature=float(start.get("temperature", 1.0)),
                                pose_scale=float(start.get("pose_scale", 1.0)), still=bool(start.get("still", False)),
                                align=bool(start.get("align", False)))
    image = project_root() / ASSETS["reference"]
    if start.get("image"):
        data = base64.b64decode(str(start["image"]).split(",")[-1], validate=False)
        if len(data) > MAX_IMAGE_BYTES:
            raise StyleTalkerError(f"reference: the image is larger than {MAX_IMAGE_BYTES // 2**20} MB")
        image = folder / "reference"
        image.write_bytes(data)
    return open_session(sampler, image, settings=settings, sample_rate=rate)


async def run_live(socket, config, models) -> None:  # noqa: ANN001
    """One live stream: start message, audio chunks, stop."""
    config.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="live-", dir=config.work_dir) as name:
        folder = Path(name)
        try:
            start = json.loads(await socket.receive_text())
            if start.get("type") != "start":
                raise StyleTalkerError("live: the first message must be a start message")
            session = await asyncio.to_thread(_open_live_session, config, models, start, folder)
            (folder / "reference").unlink(missing_ok=True)
        except (StyleTalkerError, ValueError, TypeError) as error:
            message = str(error).replace(f"{folder}/", "")
            await socket.send_text(json.dumps({"type": "error", "message": f"styletalker: error: {message}"}))
            await socket.close()
            return
        await socket.send_text(json.dumps({"type": "ready", "lookahead_ms": 1000 * session.lookahead_seconds,
                                           "fps": session.fps, "size": session.head.resolution}))
        fed, made, began = 0, 0, time.perf_counter()
        while True:
            message = await socket.receive()
            if message.get("type") == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                data = message["bytes"]
                if len(data) < 8 or (len(data) - 8) % 4 or (len(data) - 8) // 4 > MAX_CHUNK_SAMPLES:
                    await socket.send_text(json.dumps({"type": "error", "message": "styletalker: error: live: "
                                                       "an audio message is a float64 timestamp and float32 samples"}))
                    continue
                (sent,) = struct.unpack("<d", data[:8])
                samples = np.frombuffer(data[8:], dtype="<f4")
                fed += len(samples)
                if fed / session.input_rate > config.max_live_seconds:
                    frames = await asyncio.to_thread(session.finish)
                    await _send_frames(socket, frames, sent)
                    made += len(frames)
                    await socket.send_text(json.dumps({"type": "done", "frames": made, "seconds": time.perf_counter() - began,
                                                       "message": f"live streams stop after {config.max_live_seconds:.0f} s"}))
                    return
                try:
                    frames = await asyncio.to_thread(session.feed, samples)
                except StyleTalkerError as error:
                    await socket.send_text(json.dumps({"type": "error", "message": f"styletalker: error: {error}"}))
                    continue
                await _send_frames(socket, frames, sent)
                made += len(frames)
            elif message.get("text") is not None:
                command = json.loads(message["text"])
                if command.get("type") == "stop":
                    frames = await asyncio.to_thread(session.finish)
                    await _send_frames(socket, frames, float(command.get("sent", 0.0)))
                    made += len(frames)
                    await socket.send_text(json.dumps({"type": "done", "frames": made,
                                                       "seconds": time.perf_counter() - began}))
                    return


WORKLET = """
class Capture extends AudioWorkletProcessor {
  process(inputs) {
    const input = inputs[0];
    if (input && input.length) {
      const mono = new Float32Array(input[0].length);
      for (let c = 0; c < input.length; c++) for (let i = 0; i < mono.length; i++) mono[i] += input[c][i] / input.length;
      this.port.postMessage(mono, [mono.buffer]);
    }
    return true;
  }
}
registerProcessor('capture', Capture);
"""

LIVE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>StyleTalker live</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 12px; }
 canvas { width: 256px; height: 256px; image-rendering: pixelated; background: #222; border-radius: 6px; }
 .row { display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap; }
 .controls label { display: block; margin: 4px 0; }
 #error { color: #b00; } #stats { font-variant-numeric: tabular-nums; }
 button { padding: 6px 14px; margin-right: 6px; }
</style></head>
<body>
<div class="row">
 <canvas id="screen" width="64" height="64"></canvas>
 <div class="controls">
  <label>audio source
   <select id="source"><option value="mic">microphone</option><option value="file">audio file (played in real time)</option></select></label>
  <label>audio file <input type="file" id="audiofile" accept="audio/*"></label>
  <label>reference face (default: the shipped face) <input type="file" id="imagefile" accept="image/*"></label>
  <label>model <select id="model"></select></label>
  <label>seed <input type="number" id="seed" value="0" min="0" step="1" style="width:6em"></label>
  <label>temperature <input type="number" id="temperature" value="1" min="0" max="3" step="0.1" style="width:6em"></label>
  <label>pose scale <input type="number" id="pose" value="1" min="0" max="3" step="0.1" style="width:6em"></label>
  <label><input type="checkbox" id="still"> still (lips only)</label>
  <button id="start">Start</button><button id="stop" disabled>Stop</button>
 </div>
</div>
<p id="stats">frames: <span id="frames">0</span> &middot; latency: <span id="latency">-</span>
 &middot; median <span id="median">-</span> &middot; look-ahead <span id="lookahead">-</span></p>
<p id="state">idle</p>
<p id="error"></p>
<script>
const MODELS = __MODELS__;
const $ = (id) => document.getElementById(id);
for (const m of MODELS) { const o = document.createElement('option'); o.value = o.textContent = m; $('model').appendChild(o); }
let socket = null, context = null, node = null, player = null, stream = null;
let pending = [], pendingCount = 0, latencies = [], frames = 0;
const screen = $('screen').getContext('2d');
window.liveStats = { frames: 0, latencies: [], lookahead: null, done: false, error: null };
function median(xs) { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : NaN; }
function readAsDataURL(file) {
  return new Promise((ok, no) => { const r = new FileReader(); r.onload = () => ok(r.result); r.onerror = no; r.readAsDataURL(file); });
}
function flush(final) {
  if (!socket || socket.readyState !== 1 || !pendingCount) return;
  const out = new ArrayBuffer(8 + 4 * pendingCount);
  new DataView(out).setFloat64(0, performance.now(), true);
  const samples = new Float32Array(out, 8);
  let at = 0; for (const p of pending) { samples.set(p, at); at += p.length; }
  pending = []; pendingCount = 0;
  socket.send(out);
}
async function start() {
  $('error').textContent = ''; frames = 0; latencies = [];
  window.liveStats = { frames: 0, latencies: [], lookahead: null, done: false, error: null };
  $('start').disabled = true;
  try {
    context = new AudioContext();
    await context.audioWorklet.addModule('worklet.js');
    node = new AudioWorkletNode(context, 'capture');
    const chunk = Math.round(context.sampleRate * 0.02);
    node.port.onmessage = (e) => { pending.push(e.data); pendingCount += e.data.length; if (pendingCount >= chunk) flush(false); };
    const silent = context.createGain(); silent.gain.value = 0; node.connect(silent).connect(context.destination);
    let source;
    if ($('source').value === 'file') {
      const file = $('audiofile').files[0];
      if (!file) throw new Error('choose an audio file first');
      const buffer = await context.decodeAudioData(await file.arrayBuffer());
      player = context.createBufferSource(); player.buffer = buffer;
      player.connect(context.destination);
      player.onended = () => stop();
      source = player;
    } else {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
      source = context.createMediaStreamSource(stream);
    }
    const image = $('imagefile').files[0] ? await readAsDataURL($('imagefile').files[0]) : null;
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + location.pathname.replace(/\\/?$/, '/') + 'ws';
    socket = new WebSocket(url);
    socket.onopen = () => socket.send(JSON.stringify({ type: 'start', rate: context.sampleRate, seed: +$('seed').value,
      temperature: +$('temperature').value, pose_scale: +$('pose').value, still: $('still').checked, model: $('model').value, image }));
    socket.onmessage = (event) => {
      const m = JSON.parse(event.data);
      if (m.type === 'ready') {
        window.liveStats.lookahead = m.lookahead_ms; $('lookahead').textContent = m.lookahead_ms.toFixed(0) + ' ms';
        $('state').textContent = 'streaming'; source.connect(node); if (player) player.start(); $('stop').disabled = false;
      } else if (m.type === 'frame') {
        const img = new Image(); img.onload = () => screen.drawImage(img, 0, 0, 64, 64); img.src = m.image;
        const latency = performance.now() - m.sent;
        latencies.push(latency); frames += 1;
        window.liveStats.frames = frames; window.liveStats.latencies.push(latency);
        $('frames').textContent = frames; $('latency').textContent = latency.toFixed(0) + ' ms';
        $('median').textContent = median(latencies).toFixed(0) + ' ms';
      } else if (m.type === 'done') {
        window.liveStats.done = true; $('state').textContent = 'done: ' + m.frames + ' frames' + (m.message ? ' (' + m.message + ')' : '');
        teardown();
      } else if (m.type === 'error') {
        window.liveStats.error = m.message; $('error').textContent = m.message;
      }
    };
    socket.onclose = () => {
      if (!window.liveStats.done) {
        $('state').textContent = 'closed';
        if (window.liveStats.lookahead === null && !window.liveStats.error) {
          window.liveStats.error = 'styletalker: error: live: the server closed the connection';
          $('error').textContent = window.liveStats.error;
        }
      }
      teardown();
    };
  } catch (e) {
    $('error').textContent = 'styletalker: error: ' + e.message; window.liveStats.error = e.message; teardown();
  }
}
function stop() {
  if (socket && socket.readyState === 1) { flush(true); socket.send(JSON.stringify({ type: 'stop', sent: performance.now() })); }
  $('stop').disabled = true;
  if (player) { try { player.onended = null; player.stop(); } catch (e) {} }
}
function teardown() {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  if (context) context.close();
  stream = null; context = null; player = null; node = null;
  $('start').disabled = false; $('stop').disabled = true;
}
$('start').onclick = start; $('stop').onclick = stop;
</script></body></html>
"""
