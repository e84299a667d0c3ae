"""The front-end check as a step of the backend's ``make_msl`` stage (compiler.py).

``TRITON_METAL_FRONTEND_CHECK=1`` (and libclang importable): every kernel compiled is checked as
each runtime would hand it to Apple (runtime_texts.py); any error raises ``MetalFrontEndError``,
a compile error naming the kernel, the MSL line and the kernel source line.

- ``TRITON_METAL_FRONTEND_CHECK_LOG=FILE``: one JSON line per check is appended
  ({"sha256", "kernel", "ok", "errors", "msl_version", "ms"}); the test suites count them.
- ``TRITON_METAL_FRONTEND_CHECK_DIR=DIR``: every checked MSL is also written there as
  ``<MSL version>/<kernel>-<sha256 prefix>.metal`` (the apple-silicon workflow compiles them with
  Apple's compiler: ``python -m triton_metal.metal_check.xcrun DIR``).
- ``TRITON_METAL_FRONTEND_CHECK_MSL=3.0|3.1|3.2``: check against this language version instead of
  the one the kernel was generated for (``MetalOptions.msl_version``).
``cache_key()`` goes into the backend's hash, so a cached kernel was checked by the current model.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time

from triton_metal.metal_check import frontend

ENV_FLAG = "TRITON_METAL_FRONTEND_CHECK"
ENV_LOG = "TRITON_METAL_FRONTEND_CHECK_LOG"
ENV_DIR = "TRITON_METAL_FRONTEND_CHECK_DIR"
ENV_VERSION = "TRITON_METAL_FRONTEND_CHECK_MSL"
MAX_LOGGED_ERRORS = 20


def requested() -> bool:
    return os.environ.get(ENV_FLAG, "0").strip().lower() in ("1", "true", "yes", "on")


def active() -> bool:
    """The check runs: asked for, and libclang is there (the test suites say when it is not)."""
    return requested() and frontend.available()


def msl_version(kernel_version: str = "") -> str:
    """The MSL version to check against: the environment's choice, else the version the kernel was
    generated for (MetalOptions.msl_version), else the default."""
    return os.environ.get(ENV_VERSION) or kernel_version or frontend.DEFAULT_MSL_VERSION


def cache_key() -> str:
    """Part of the backend's hash: empty when the check is off."""
    return f"-fecheck-{os.environ.get(ENV_VERSION, '')}-{frontend.header_hash()[:16]}" if active() else ""


def check_generated(msl: str, kernel_name: str, kernel_version: str = "") -> None:
    """Check a kernel the backend just generated; raise MetalFrontEndError on any error."""
    if not active():
        return
    from triton_metal.metal_check.runtime_texts import check_kernel_texts
    version = msl_version(kernel_version)
    start = time.perf_counter()
    errors = frontend.errors_of(check_kernel_texts(msl, kernel_name, version))
    elapsed_ms = (time.perf_counter() - start) * 1e3
    digest = hashlib.sha256(msl.encode()).hexdigest()
    _log({"sha256": digest, "kernel": kernel_name, "ok": not errors, "msl_version": version,
          "errors": [f"[{d.variant}] {d.render()}" for d in errors[:MAX_LOGGED_ERRORS]], "ms": round(elapsed_ms, 1)})
    _keep_copy(msl, kernel_name, digest, version)
    if errors:
        raise frontend.MetalFrontEndError(kernel_name, errors, version)


def _log(record: dict) -> None:
    path = os.environ.get(ENV_LOG)
    if path:  # one write of one line in append mode: concurrent test processes do not interleave
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")


def _keep_copy(msl: str, kernel_name: str, digest: str, version: str) -> None:
    """DIR/<MSL version>/<kernel>-<sha256 prefix>.metal (xcrun.py compiles each with its version)."""
    directory = os.environ.get(ENV_DIR)
    if not directory:
        return
    directory = os.path.join(directory, version)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{re.sub(r'[^A-Za-z0-9_.-]', '_', kernel_name)}-{digest[:16]}.metal")
    if os.path.exists(path):
        return
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(msl)
    os.replace(tmp, path)


def summarize_log(path) -> dict:
    """{"kernels_checked": distinct MSL texts, "failed": distinct failing ones, "failures": [...]}."""
    kernels, failures = {}, {}
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                kernels[record["sha256"]] = record
                if not record["ok"]:
                    failures[record["sha256"]] = {"kernel": record["kernel"], "errors": record["errors"][:3]}
    return {"kernels_checked": len(kernels), "failed": len(failures), "failures": list(failures.values())}
