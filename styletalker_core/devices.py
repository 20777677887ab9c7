"""Device names given by a user (``--device``, ``runtime.device``) checked against this machine.

A leaf of the core: recipe validation, the training runtime and the commands all check device
names the same way.
"""

from __future__ import annotations

import torch

from styletalker_core.errors import StyleTalkerError


def parse_device(name: str, what: str = "--device", hint: str = "use cpu") -> torch.device:
    """``name`` (cpu, cuda, cuda:N, mps) as a torch.device this machine has; otherwise a
    StyleTalkerError that names the option ``what`` and says what to give instead."""
    text = str(name).strip().lower()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise StyleTalkerError(f"{what} {name!r}: not a device styletalker runs on; give cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise StyleTalkerError(f"{what} {name!r}: CUDA is not available on this machine "
                                   f"(torch {torch.__version__}, no usable GPU); {hint}")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise StyleTalkerError(f"{what} {name!r}: this machine has {count} CUDA device(s), "
                                   f"cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise StyleTalkerError(f"{what} {name!r}: Apple MPS is not available on this machine; {hint}")
    return device
