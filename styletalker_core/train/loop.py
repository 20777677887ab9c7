"""The loop of one training stage: steps, gradient averaging, checkpoints, resume, logging."""

from __future__ import annotations

import json
import logging
import math
import shlex
import sys
import time
from collections.abc import Sized
from pathlib import Path
from typing import Any, cast

import attrs
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from styletalker_core.checkpoint import save_checkpoint
from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric_logger import MetricLogger
from styletalker_core.interfaces.stage import OptimizerGroup, TrainingStage
from styletalker_core.io.atomic import write_json_atomic
from styletalker_core.io.progress import progress_enabled
from styletalker_core.recipe.roles import undeclared_outputs
from styletalker_core.recipe.validate import unstructure
from styletalker_core.train.batches import StepBatches
from styletalker_core.train.context import StageContext
from styletalker_core.train.plots import plot_losses
from styletalker_core.train.runtime import derive_seed, seed_everything
from styletalker_core.train.schedules import build_scheduler
from styletalker_core.train.state import latest_checkpoint, load_training_state, mark_latest, save_training_state

LOG = logging.getLogger(__name__)


class DivergenceError(StyleTalkerError):
    """A loss became NaN or infinite; the stage stopped and its last good checkpoint is kept."""


@attrs.define
class StageResult:
    name: str
    checkpoint: Path
    roles: list[str]
    evaluation: dict[str, float]
    seconds: float


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor inside nested dicts/lists/tuples to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def make_optimizer(group: OptimizerGroup, context: StageContext) -> torch.optim.Optimizer:
    config = context.config
    betas = group.betas or config.betas
    lr = config.lr * group.lr_scale
    if config.weight_decay > 0:
        return torch.optim.AdamW(group.params, lr=lr, betas=betas, weight_decay=config.weight_decay)
    return torch.optim.Adam(group.params, lr=lr, betas=betas)


def average_gradients(parameters: list[nn.Parameter], world_size: int) -> None:
    """All-reduce the gradients of ``parameters`` and divide by the number of processes.

    This is the gradient synchronisation of DistributedDataParallel done explicitly (as
    NVlabs' StyleGAN training loops do), so stages with several optimizers and phases need
    no wrapper modules. Missing gradients count as zeros on every rank.
    """
    if not parameters:
        return
    grads = []
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        grads.append(parameter.grad.reshape(-1))
    flat = torch.cat(grads)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size
    offset = 0
    for parameter in parameters:
        count = parameter.numel()
        assert parameter.grad is not None  # every gradient was set above
        parameter.grad.copy_(flat[offset:offset + count].view_as(parameter))
        offset += count


def broadcast_modules(modules: dict[str, nn.Module]) -> None:
    """Make every rank start from rank 0's weights and buffers."""
    for module in modules.values():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def _first_bad(values: dict[str, float]) -> str:
    return next((name for name, value in values.items() if not math.isfinite(value)), "loss")


def run_stage(stage: TrainingStage, context: StageContext, loggers: list[MetricLogger]) -> StageResult:
    """Train ``stage`` to ``context.config.steps`` steps, resuming from its latest checkpoint if any."""
    config, runtime = context.config, context.runtime
    started = time.time()
    seed_everything(derive_seed(context.recipe.seed, context.stage_name))  # identical init on every rank
    stage.setup(context)
    trainable = stage.trainable()
    saved_modules = {**trainable, **stage.buffers_to_save()}
    groups = stage.optimizer_groups()
    optimizers = {name: make_optimizer(group, context) for name, group in groups.items()}
    schedulers = {name: build_scheduler(optimizer, config) for name, optimizer in optimizers.items()}
    scaler = runtime.grad_scaler()
    checkpoint_dir = context.stage_dir / "checkpoints"
    start_step = 0
    seed_everything(derive_seed(context.recipe.seed, context.stage_name, "train", runtime.rank))
    latest = latest_checkpoint(checkpoint_dir)
    if latest is not None:
        start_step, extra = load_training_state(
            latest, modules=saved_modules, optimizers=optimizers, schedulers=schedulers, scaler=scaler
        )
        stage.load_extra_state(extra)
        if runtime.rank != 0:  # only rank 0's RNG state is saved; others continue from a derived seed
            seed_everything(derive_seed(context.recipe.seed, context.stage_name, "resume", start_step, runtime.rank))
        LOG.info("stage %s: resumed from %s at step %d", context.stage_name, latest, start_step)
    elif runtime.distributed:
        broadcast_modules(saved_modules)
    for logger in loggers:  # forget what was logged after the checkpoint (it is logged again)
        rewind = getattr(logger, "rewind", None)
        if rewind is not None:
            rewind(context.stage_name, start_step)

    dataset = stage.dataset()
    size = len(cast("Sized", dataset))  # stages train on map-style datasets
    batches = StepBatches(
        size, config.batch_size, derive_seed(context.recipe.seed, context.stage_name, "data"),
        start_step, config.steps, runtime.rank, runtime.world_size,
    )
    loader = DataLoader(
        dataset, batch_sampler=batches, num_workers=context.recipe.data.num_workers,
        pin_memory=runtime.device.type == "cuda", collate_fn=getattr(stage, "collate", None),
        # Its own generator: starting the loader must not draw from the global RNG that resume restores.
        generator=torch.Generator().manual_seed(derive_seed(context.recipe.seed, context.stage_name, "workers", start_step)),
    )
    show_progress = runtime.is_main and progress_enabled()
    progress = tqdm(total=config.steps, initial=start_step, desc=context.stage_name, disable=not show_progress,
                    dynamic_ncols=True, leave=True)
    window: dict[str, list[float]] = {}
    for module in trainable.values():
        module.train()
    step = start_step
    for step, batch in zip(range(start_step, config.steps), loader):
        batch = to_device(batch, runtime.device)
        for phase in stage.phases(step):
            optimizer = optimizers[phase.optimizer]
            optimizer.zero_grad(set_to_none=True)
            with runtime.autocast():  # mixed precision (runtime.precision) for every stage, here only
                loss, values = stage.loss(phase.name, batch, step)
            loss = loss.float()  # under autocast a loss can come back bfloat16/float16; backward starts in float32
            values = {**values, f"loss_{phase.name}": float(loss.detach())}
            if not all(math.isfinite(v) for v in values.values()):
                last = latest_checkpoint(checkpoint_dir)
                raise DivergenceError(
                    f"stage {context.stage_name!r} diverged at step {step}: {_first_bad(values)} is not finite; "
                    f"last good checkpoint: {last or 'none (no checkpoint written yet)'}; "
                    "lower stages." + context.stage_name + ".lr or enable grad_clip, then rerun to resume"
                )
            scaler.scale(loss).backward()
            params = [p for g in optimizer.param_groups for p in g["params"]]
            if runtime.distributed:
                average_gradients(params, runtime.world_size)
            if config.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            for name, value in values.items():
                window.setdefault(name, []).append(value)
        for scheduler in schedulers.values():
            scheduler.step()
        stage.after_step(step)
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            means = {name: sum(v) / len(v) for name, v in window.items()}
            means["lr"] = next(iter(optimizers.values())).param_groups[0]["lr"] if optimizers else 0.0
            window.clear()
            if runtime.is_main:
                for logger in loggers:
                    logger.log(context.stage_name, done, means)
            progress.set_postfix({k: f"{v:.4g}" for k, v in list(means.items())[:4]}, refresh=False)
        progress.update(1)
        if done % config.checkpoint_every == 0 and done < config.steps:
            if runtime.is_main:
                path = checkpoint_dir / f"step_{done:08d}.safetensors"
                save_training_state(path, step=done, modules=saved_modules, optimizers=optimizers,
                                    schedulers=schedulers, scaler=scaler, stage_state=stage.extra_state())
                mark_latest(checkpoint_dir, path)
            runtime.barrier()
    progress.close()
    if step + 1 < config.steps and start_step < config.steps:
        raise StyleTalkerError(f"stage {context.stage_name!r}: the data loader ended at step {step + 1} of {config.steps}")
    return _finish(stage, context, started, start_step)


def _finish(stage: TrainingStage, context: StageContext, started: float, start_step: int) -> StageResult:
    """Finalize, evaluate, save the stage's outputs and mark it done (rank 0); all ranks wait for it."""
    runtime = context.runtime
    final = context.stage_dir / "final.safetensors"
    outputs = stage.outputs()
    mismatch = undeclared_outputs(stage, outputs)
    if mismatch is not None:
        LOG.warning("stage %s: %s", context.stage_name, mismatch)
    evaluation: dict[str, float] = {}
    seconds = time.time() - started
    if runtime.is_main:
        for module in outputs.values():
            module.eval()
        stage.finalize()  # what is saved beyond the weights; evaluate() below only reads
        evaluation = {k: float(v) for k, v in stage.evaluate().items()}
        extra = {
            "stage": context.stage_name,
            "stage_plugin": context.config.name,
            "steps": context.config.steps,
            "seconds_this_run": round(seconds, 1),
            "resumed_at_step": start_step,
            "evaluation": evaluation,
            "command": shlex.join(sys.argv),
            "world_size": runtime.world_size,
        }
        save_checkpoint(final, outputs, step=context.config.steps, recipe=unstructure(context.recipe), extra=extra)
        plot_losses(context.run_dir / "metrics.jsonl", context.stage_name, context.stage_dir / "losses.png")
        write_json_atomic(context.stage_dir / "done.json", {"roles": list(outputs), **extra})
        for old in (context.stage_dir / "checkpoints").glob("step_*.safetensors"):
            old.unlink()
        LOG.info("stage %s done in %.0f s: %s", context.stage_name, seconds, json.dumps(evaluation))
    runtime.barrier()
    return StageResult(context.stage_name, final, list(outputs), evaluation, seconds)
