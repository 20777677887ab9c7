"""Running preprocessing over a folder: worker processes, progress, resume, reports.

Output folder::

    manifest.json, shards/      the sharded clip dataset (styletalker_core.data.shards)
    reports/<video key>.json    one report per source video, written when it is finished
    report.json                 every video's report and a summary, rewritten at the end
    preprocess.json             the settings; a resumed run must use the same ones

Every clip gets a split (``meta["split"]``: train, val or test), drawn by identity where the
layout names one, else by source video (:mod:`styletalker_core.data.preprocess.splits`). The
splits are drawn again over all videos at the end of every run, so the manifest always matches
the current fractions and videos (changing ``val`` / ``test`` on a rerun only rewrites it).

A video whose report exists is not processed again (failed ones are retried with
``retry_failed``), so an interrupted run resumes where it stopped. Each clip's shard is
written atomically, so no shard is ever half-written.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import attrs

from styletalker_core.data.preprocess.faces import FaceAnalyzer
from styletalker_core.data.preprocess.layouts import VideoJob, discover_videos
from styletalker_core.data.preprocess.splits import assign_splits, check_fractions, split_group, summarize
from styletalker_core.data.preprocess.video import PreprocessSettings, VideoFailure, process_video
from styletalker_core.data.shards import ShardWriter
from styletalker_core.errors import StyleTalkerError
from styletalker_core.io.atomic import write_json_atomic

LOG = logging.getLogger(__name__)
_WORKER: dict[str, Any] = {}  # per worker process: settings, writer, analyzer


def _report_path(output: Path, job: VideoJob) -> Path:
    return output / "reports" / f"{job.key}.json"


def _init_worker(settings: PreprocessSettings, output: str) -> None:
    _WORKER["settings"] = settings
    _WORKER["writer"] = ShardWriter(output)
    _WORKER["analyzer"] = FaceAnalyzer(settings.detect_max_side, settings.min_detection_score)


def _run_job(job: VideoJob) -> dict[str, Any]:
    """Process one video in this process (after _init_worker); never raises for a bad video."""
    settings, writer = _WORKER["settings"], _WORKER["writer"]
    try:
        report = process_video(job, writer, settings, _WORKER["analyzer"])
    except VideoFailure as failure:
        report = {"status": "failed", "reason": failure.reason, "message": str(failure)}
    except Exception as error:  # one broken video must not stop the run; it is reported
        LOG.debug("%s: unexpected error", job.path, exc_info=True)  # the report carries the message; -v shows it
        report = {"status": "failed", "reason": "error", "message": f"{type(error).__name__}: {error}"}
    report = {"video": job.relative, "key": job.key} | report
    write_json_atomic(_report_path(writer.root, job), report)
    return report


def _check_settings(output: Path, source: Path, settings: PreprocessSettings) -> None:
    record = {"source": str(source.resolve()), "settings": attrs.asdict(settings)}
    path = output / "preprocess.json"
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous.get("settings") != record["settings"]:
            raise StyleTalkerError(
                f"{output}: was preprocessed with other settings ({previous.get('settings')}); "
                "use a new output folder or the same options"
            )
    else:
        write_json_atomic(path, record)


def preprocess_folder(
    source: str | Path,
    output: str | Path,
    settings: PreprocessSettings | None = None,
    workers: int = 1,
    layout: str = "auto",
    retry_failed: bool = False,
    progress: bool = True,
    val: float = 0.1,
    test: float = 0.1,
    split_by: str = "auto",
) -> dict[str, Any]:
    """Preprocess every video below ``source`` into the clip dataset ``output``; returns the run report.

    ``workers`` > 1 processes videos in that many worker processes. Bad videos are reported
    (reason and message) and the run continues. ``val`` and ``test`` are the fractions of the
    groups (identities, else source videos: ``split_by``) that go to those splits.
    """
    from tqdm import tqdm

    settings = settings or PreprocessSettings()
    source, output = Path(source), Path(output)
    check_fractions(val, test)
    jobs = _with_splits(discover_videos(source, layout), val, test, split_by)
    output.mkdir(parents=True, exist_ok=True)
    _check_settings(output, source, settings)
    writer = ShardWriter(output)

    def finished(job: VideoJob) -> bool:
        path = _report_path(output, job)
        if not path.is_file():
            return False
        return not (retry_failed and json.loads(path.read_text()).get("status") != "ok")

    pending = [job for job in jobs if not finished(job)]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(pending), unit="video", desc="preprocess", disable=not progress)
    try:
        if workers <= 1 or len(pending) <= 1:
            _init_worker(settings, str(output))
            for job in pending:
                _log(_run_job(job))
                bar.update(1)
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(settings, str(output))) as pool:
                futures = [pool.submit(_run_job, job) for job in pending]
                try:
                    for future in as_completed(futures):
                        _log(future.result())
                        bar.update(1)
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
    finally:
        bar.close()
        _WORKER.clear()

    reports = [json.loads(_report_path(output, job).read_text()) for job in jobs]
    failed = [r for r in reports if r["status"] != "ok"]
    summary = {
        "videos": len(reports),
        "ok": len(reports) - len(failed),
        "failed": len(failed),
        "clips": sum(len(r.get("clips", [])) for r in reports),
        "frames_kept": sum(r.get("frames_kept", 0) for r in reports),
        "failures_by_reason": {reason: sum(r.get("reason") == reason for r in failed) for reason in sorted({r["reason"] for r in failed})},
    }
    splits = {"val": val, "test": test, "split_by": split_by}
    info = {"tool": "styletalker preprocess", "source": str(source), "fps": 25, "sample_rate": 16000} | attrs.asdict(settings)
    manifest = writer.finalize(info | {"splits": splits})
    if _apply_splits(manifest["clips"], jobs):  # clips written by an earlier run with other splits
        write_json_atomic(output / "manifest.json", manifest)
    summary["splits"] = summarize(manifest["clips"])
    summary["split_unit"] = "identities" if any(j.meta["split_group"].startswith("identity ") for j in jobs) else "videos"
    report = {"source": str(source), "output": str(output), "settings": attrs.asdict(settings), "splits": splits,
              "summary": summary, "videos": reports}
    write_json_atomic(output / "report.json", report)
    return report


def _with_splits(jobs: list[VideoJob], val: float, test: float, split_by: str) -> list[VideoJob]:
    """The jobs with ``split``, ``split_group`` (and ``identity`` when known) in their meta."""
    groups = [split_group(job.meta, job.relative, split_by) for job in jobs]
    fixed = {group: job.meta["split"] for group, job in zip(groups, jobs, strict=True) if job.meta.get("split")}
    assignment = assign_splits(groups, val, test, fixed)
    return [attrs.evolve(job, meta=dict(job.meta) | {"split": assignment[group], "split_group": group})
            for group, job in zip(groups, jobs, strict=True)]


def _apply_splits(records: list[dict[str, Any]], jobs: list[VideoJob]) -> bool:
    """Set each clip record's split meta from its video's job; True when a record changed."""
    by_video = {job.relative: job.meta for job in jobs}
    changed = False
    for record in records:
        meta = record.setdefault("meta", {})
        job_meta = by_video.get(meta.get("video", record.get("source")))
        if job_meta is None:
            continue
        for key in ("split", "split_group", "identity", "speaker"):
            if key in job_meta and meta.get(key) != job_meta[key]:
                meta[key] = job_meta[key]
                changed = True
    return changed


def _log(report: dict[str, Any]) -> None:
    if report["status"] == "ok":
        LOG.info("%s: %d clip(s), %d of %d frames kept", report["video"], len(report["clips"]), report["frames_kept"], report["frames"])
    else:  # the command prints one summary line of the failures; their details are in report.json
        LOG.info("%s: skipped (%s): %s", report["video"], report["reason"], report["message"])
