"""Device, precision and process-group set-up (single process, or torchrun with gloo/NCCL)."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import random
from collections.abc import Iterator

import attrs
import numpy as np
import torch
import torch.distributed as dist

from styletalker_core.devices import parse_device
from styletalker_core.errors import StyleTalkerError
from styletalker_core.recipe.schema import RuntimeConfig

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@attrs.define
class Runtime:
    """Resolved runtime: device, autocast dtype, rank and world size."""

    device: torch.device
    precision: str = "fp32"
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Mixed precision for a stage's forward pass and loss (no-op in fp32).

        The training loop enters this around ``TrainingStage.loss`` and nowhere else, so every stage
        gets it without code of its own. Inside, torch.autocast runs matrix products and
        convolutions in bfloat16 (or float16) and keeps the ops that need range or accumulation
        precision (losses, norms, softmax, exp/log ...) in float32; parameters, gradients and the
        optimizer state stay float32 (the master weights), since autocast casts per op and never
        changes a parameter. The loop casts the returned loss to float32 before backward.
        """
        if self.precision == "fp32":
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=AUTOCAST_DTYPES[self.precision]):
            yield

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """bfloat16 / float16 under mixed precision, None in fp32."""
        return AUTOCAST_DTYPES.get(self.precision)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling, needed for fp16 only (enabled=False makes it a pass-through)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' -> cuda:<local_rank> when CUDA is available, else cpu; 'cuda' -> cuda:<local_rank>."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise StyleTalkerError(f"runtime.device = {name!r} but CUDA is not available; use 'cpu' or 'auto'")
        name = name if ":" in name else f"cuda:{local_rank}"
    return parse_device(name, "runtime.device =", "use 'cpu' or 'auto'")


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot train in, with what to use instead.

    fp32 everywhere; bf16 on the CPU (autocast; fast on CPUs with AMX or AVX512-BF16) and on CUDA
    devices that support it (Ampere and newer); fp16 on CUDA only (with loss scaling: the
    engine's GradScaler), since CPU autocast in float16 has no loss scaling here.
    """
    if precision not in ("fp32", *AUTOCAST_DTYPES):
        raise StyleTalkerError(f"runtime.precision = {precision!r}: use 'fp32', 'bf16' or 'fp16'")
    if precision == "fp16" and device.type != "cuda":
        raise StyleTalkerError(
            f"runtime.precision = 'fp16' needs CUDA (device is {device.type}); use 'bf16' or 'fp32' on the CPU"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise StyleTalkerError(
            f"runtime.precision = 'bf16': {torch.cuda.get_device_name(device)} has no bfloat16 support; "
            "use 'fp16' or 'fp32'"
        )


def setup_runtime(config: RuntimeConfig) -> Runtime:
    """Resolve the device and, when launched by torchrun (WORLD_SIZE > 1), join the process group.

    The backend is NCCL on CUDA and gloo on the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(config.device, local_rank)
    check_precision(config.precision, device)
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = not config.deterministic
        torch.backends.cudnn.allow_tf32 = not config.deterministic
        torch.backends.cudnn.benchmark = not config.deterministic
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return Runtime(device=device, precision=config.precision, rank=rank, local_rank=local_rank, world_size=world_size)


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (recipe seed, stage name, rank)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
