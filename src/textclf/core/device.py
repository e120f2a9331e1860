"""Which torch device and how many CPU threads a stage uses (the `device` config group)."""

from __future__ import annotations


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but torch sees no GPU: use device=cpu or device=auto")
    if name not in {"cpu", "cuda"}:
        raise ValueError(f"device.name must be cpu, cuda or auto, not {name!r}")
    return name


def set_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(int(threads))
