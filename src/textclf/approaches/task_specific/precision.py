"""The fine-tune's numeric precision: `auto` picks the fastest path the hardware runs natively,
and the choice (with why) is recorded in models/<name>/finetune.json.

- CPU: bf16 autocast where the CPU has bf16 instructions (AVX512-BF16 or AMX, and oneDNN agrees);
  elsewhere bf16 is emulated and slower than fp32, so fp32.
- CUDA: fp32. Measured on an H100 (docs/engine.md): autocast made the MiniLM fine-tune 2.4x slower
  (a small encoder is bound by kernel launches). Ask for bf16/fp16 explicitly on larger models.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from textclf.approaches.task_specific.settings import Precision

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 arithmetic


@dataclass(frozen=True)
class Choice:
    requested: Precision
    used: Precision
    reason: str

    def record(self) -> dict[str, str]:
        return {"requested": self.requested.value, "used": self.used.value, "reason": self.reason}


def cpu_flags(path: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux); empty where they cannot be read."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16_cpu() -> tuple[bool, str]:
    """(whether bf16 runs natively on this CPU, what was found)."""
    import torch

    found = sorted(set(BF16_FLAGS) & cpu_flags())
    onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    ok = bool(found) and onednn
    return ok, f"CPU bf16 flags {found or 'none'}, oneDNN bf16 {'yes' if onednn else 'no'}"


def choose(requested: Precision, device: str) -> Choice:
    """The precision to train with on `device` (`auto` resolved; explicit choices checked)."""
    requested = Precision(requested)
    if requested is Precision.fp16 and device != "cuda":
        raise ValueError("fine-tune precision=fp16 needs device=cuda; on the CPU use bf16, fp32 or auto")
    if requested is not Precision.auto:
        return Choice(requested, requested, "set in task_specific.finetune.precision")
    if device == "cuda":
        return Choice(requested, Precision.fp32, "auto on cuda: fp32 (autocast measured slower on a small encoder)")
    native, found = native_bf16_cpu()
    if native:
        return Choice(requested, Precision.bf16, f"auto on cpu: bf16 ({found})")
    return Choice(requested, Precision.fp32, f"auto on cpu: fp32, no native bf16 ({found})")


def autocast(precision: Precision, device: str):
    """The forward passes' autocast context for a resolved precision (a no-op for fp32)."""
    import torch

    precision = Precision(precision)  # a member, or its value from a script
    if precision is Precision.auto:
        raise ValueError("resolve precision=auto with precision.choose() before autocast")
    if precision is Precision.fp16 and device != "cuda":
        raise ValueError("fine-tune precision=fp16 needs device=cuda; on the CPU use bf16, fp32 or auto")
    if precision is Precision.fp32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16 if precision is Precision.bf16 else torch.float16)
