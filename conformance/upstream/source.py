"""Where the upstream Triton files come from, and whether they are the ones we expect.

Order: a directory the user names (``--tutorials-dir`` / ``TRITON_METAL_TUTORIALS_DIR``), else the
cache (``TRITON_METAL_UPSTREAM_CACHE``, default ``~/.cache/triton-metal/upstream/<ref>``), filled by
a per-file download of the manifest's ref from GitHub. Every file is checked against the sha256 in
``manifests/<tag>.json`` before it is used.

Rewrite a manifest from a checkout:  python -m conformance.upstream.source --dir <checkout> --ref <ref>
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

MANIFESTS = Path(__file__).resolve().parent / "manifests"
TUTORIALS_PREFIX = "python/tutorials/"
TEST_CORE_FILES = ("pytest.ini", "python/conftest.py", "python/test/conftest.py",
                   "python/test/unit/language/test_core.py")
RAW_URL = "https://raw.githubusercontent.com/triton-lang/triton/{ref}/{path}"
DIR_ENV = "TRITON_METAL_TUTORIALS_DIR"
CACHE_ENV = "TRITON_METAL_UPSTREAM_CACHE"
DOWNLOAD_TIMEOUT_S = 10


def pinned_tag() -> str:
    import triton
    return f"v{triton.__version__}"


@dataclass(frozen=True)
class Manifest:
    tag: str
    ref: str
    note: str
    files: dict[str, str]

    @property
    def tutorials(self) -> list[str]:
        """Top-level tutorial scripts (python/tutorials/*.py), in upstream order."""
        return sorted(p for p in self.files if p.startswith(TUTORIALS_PREFIX) and p.endswith(".py")
                      and "/" not in p[len(TUTORIALS_PREFIX):])


def load_manifest(tag: str | None = None, directory: Path = MANIFESTS) -> Manifest:
    tag = tag or pinned_tag()
    path = directory / f"{tag}.json"
    if not path.exists():
        raise FileNotFoundError(f"no upstream file list for Triton {tag} ({path}): write one with "
                                f"`python -m conformance.upstream.source --dir <checkout of {tag}> --ref {tag}`")
    data = json.loads(path.read_text())
    return Manifest(tag=tag, ref=data["ref"], note=data.get("note", ""), files=dict(data["files"]))


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class Located:
    """The upstream files found for one request; ``unavailable`` is the one-line reason when none are."""
    origin: str = ""
    files: dict[str, Path] = field(default_factory=dict)        # verified: relative path -> file
    mismatched: dict[str, Path] = field(default_factory=dict)   # present, but not the expected bytes
    missing: list[str] = field(default_factory=list)
    unavailable: str = ""

    @property
    def root(self) -> Path | None:
        """The directory that stands for the upstream checkout root (for pytest's rootdir/conftests)."""
        for rel, path in {**self.files, **self.mismatched}.items():
            return Path(str(path)[: -len(rel)]) if str(path).endswith(rel) else path.parent
        return None


def _candidates(given: Path, rel: str) -> list[Path]:
    """A named directory may be a checkout root, its python/ folder, or the tutorials folder itself."""
    found = [given / rel]
    if rel.startswith("python/"):
        found.append(given / rel[len("python/"):])
    if rel.startswith(TUTORIALS_PREFIX):
        found.append(given / rel[len(TUTORIALS_PREFIX):])
    return found


def _download(ref: str, rel: str) -> bytes:
    with urllib.request.urlopen(RAW_URL.format(ref=ref, path=rel), timeout=DOWNLOAD_TIMEOUT_S) as response:
        return response.read()


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "triton-metal" / "upstream")


def locate(manifest: Manifest, wanted: list[str], given_dir: str | os.PathLike | None = None,
           cache_dir: Path | None = None, fetch=_download) -> Located:
    """Find ``wanted`` (paths relative to the upstream checkout) and check each against the manifest."""
    given_dir = given_dir or os.environ.get(DIR_ENV) or None
    found = Located()
    if given_dir:
        given = Path(given_dir).expanduser().resolve()
        found.origin = f"directory {given}"
        if not given.is_dir():
            found.unavailable = f"{given} is not a directory (from --tutorials-dir or {DIR_ENV})"
            return found
        for rel in wanted:
            path = next((p for p in _candidates(given, rel) if p.is_file()), None)
            _classify(found, manifest, rel, path)
        if not found.files and not found.mismatched:
            found.unavailable = f"{given} holds none of the upstream files ({', '.join(wanted[:2])}, ...)"
        return found

    cache = (cache_dir or default_cache_dir()) / manifest.ref
    found.origin = f"cache {cache} (triton-lang/triton@{manifest.ref[:12]})"
    for rel in wanted:
        path = cache / rel
        if not path.is_file() and not found.unavailable:
            found.unavailable = _fill_cache(manifest, rel, path, fetch)
        _classify(found, manifest, rel, path if path.is_file() else None)
    if found.files or found.mismatched:
        found.unavailable = ""
    elif found.unavailable:
        found.unavailable = (f"upstream Triton files unavailable: no --tutorials-dir or {DIR_ENV} given, "
                             f"nothing cached in {cache}, and {found.unavailable}")
    return found


def _fill_cache(manifest: Manifest, rel: str, path: Path, fetch) -> str:
    """Download one file into the cache; returns why not ('' on success). Bytes with the wrong hash
    are not kept, so the cache only ever holds the expected files."""
    try:
        data = fetch(manifest.ref, rel)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"the download from GitHub failed ({reason})"
    if hashlib.sha256(data).hexdigest() != manifest.files.get(rel):
        return f"the downloaded {rel} does not match the manifest hash"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return ""


def _classify(found: Located, manifest: Manifest, rel: str, path: Path | None) -> None:
    if path is None:
        found.missing.append(rel)
    elif sha256(path) == manifest.files.get(rel):
        found.files[rel] = path
    else:
        found.mismatched[rel] = path


def write_manifest(checkout: Path, ref: str, tag: str, note: str = "", directory: Path = MANIFESTS) -> Path:
    """Hash the tutorials and test_core files of a checkout into ``manifests/<tag>.json``."""
    checkout = Path(checkout)
    rels = sorted(str(p.relative_to(checkout)) for p in (checkout / TUTORIALS_PREFIX).glob("*.py"))
    rels += [rel for rel in TEST_CORE_FILES if (checkout / rel).is_file()]
    data = {"triton": tag.lstrip("v"), "ref": ref, "note": note or f"hashed from a checkout of {ref}",
            "files": {rel: sha256(checkout / rel) for rel in rels}}
    path = directory / f"{tag}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Rewrite the expected upstream file hashes from a checkout.")
    parser.add_argument("--dir", required=True, help="a checkout of triton-lang/triton at --ref")
    parser.add_argument("--ref", required=True, help="the tag or commit the checkout is at (used for downloads)")
    parser.add_argument("--tag", default=None, help="the Triton tag the list is for (default: the installed one)")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    print(write_manifest(Path(args.dir), args.ref, args.tag or pinned_tag(), args.note))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
