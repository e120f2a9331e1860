"""Which torch device and how many CPU threads a stage uses (the `device` config group)."""

from __future__ import annotations

from textclf.core.settings import DeviceName


def resolve_device(name: DeviceName | str) -> str:
    """"cpu" or "cuda" for device.name (a DeviceName, or its value: ValueError names the allowed ones)."""
    import torch

    try:
        name = DeviceName(name)
    except ValueError:
        *rest, last = [m.value for m in DeviceName]
        raise ValueError(f"device.name must be {', '.join(rest)} or {last}, not {name!r}") from None
    if name is DeviceName.auto:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name is DeviceName.cuda and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but torch sees no GPU: use device=cpu or device=auto")
    return name.value


def set_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(int(threads))
