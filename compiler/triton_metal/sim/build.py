"""Compiles MSL (and, once, the fiber runtime) into shared libraries cached on disk.

Cache directory: ``TRITON_METAL_SIM_CACHE_DIR`` (default ``~/.triton/metal/sim``). A kernel
library is keyed by sha256 of the MSL, the kernel name, the shim and generator sources, the
compiler flags and the compiler's identity; it is written under a temporary name and renamed,
so concurrent builders never see a torn file. The compiler is ``TRITON_METAL_SIM_CXX``
(default ``g++``).
"""
from __future__ import annotations

import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from triton_metal.numerics import MathMode
from triton_metal.sim import msl_prepass, phase_split, trampoline
from triton_metal.sim.errors import SimCompileError

PACKAGE_DIR = Path(__file__).resolve().parent
INCLUDE_DIR = PACKAGE_DIR / "include"
RUNTIME_SOURCE = PACKAGE_DIR / "fiber_runtime.cpp"

# Number of compiler runs in this process (tests use it to see that the cache was hit).
compiler_runs = 0

_locks: dict = {}
_locks_guard = threading.Lock()


def cache_dir() -> Path:
    path = Path(os.environ.get("TRITON_METAL_SIM_CACHE_DIR") or "~/.triton/metal/sim").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def compiler() -> list:
    return shlex.split(os.environ.get("TRITON_METAL_SIM_CXX") or "g++")


def _flags() -> list:
    flags = [
        "-std=c++17", "-O2", "-fPIC", "-shared", f"-I{INCLUDE_DIR}",
        "-fsigned-char",         # Metal's char is signed; aarch64 Linux's is not
        "-fno-strict-aliasing",  # MSL code reinterprets device pointers freely
        # No -fwrapv: signed overflow is undefined in MSL as in C++, so the generated code must not rely
        # on it (codegen wraps in unsigned types); the strict build traps on it (_instrument_flags).
        "-fno-math-errno",       # lets sqrt & co. inline
        "-fstack-clash-protection",  # big frames probe each page, so overflows hit the guard page
    ]
    if platform.machine().lower() in ("x86_64", "amd64"):
        flags.append("-mf16c")  # hardware half <-> float conversions (3x faster half code)
        if _cpu_has("fma"):
            flags.append("-mfma")  # fma() inline instead of a libm call; contraction stays off (_math_flags)
    return flags


@functools.cache
def _cpu_has(feature: str) -> bool:
    """Whether /proc/cpuinfo lists ``feature`` (the flag is then in the cache key: no other CPU loads it)."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and feature in line.split() for line in f)
    except OSError:
        return False


def _math_flags(mode: MathMode) -> list:
    """g++'s counterpart of the kernel's math mode (numerics.MathMode, read from its MSL): its contraction
    setting (off in generated kernels: fma() is written out), and in fast mode the licences of Apple's fast
    math that change finite results: reassociation, reciprocals, signed zeros. Not the NaN/INF
    assumptions: the simulator keeps NaN and INF where Apple's fast math may not."""
    flags = [f"-ffp-contract={mode.contract}"]
    if mode.fast:
        flags += ["-fassociative-math", "-freciprocal-math", "-fno-signed-zeros", "-fno-trapping-math"]
    return flags


KERNEL_FLAGS = ["-fno-exceptions", "-fno-rtti", "-fvisibility=hidden", "-fno-plt"]


def _instrument_flags() -> list:
    """Strict-mode / traffic-counting builds (a second library per kernel, cached separately)."""
    flags = ["-DTM_SIM_INSTRUMENT=1",
             # Signed overflow and out-of-range shifts are undefined in MSL: trap (SIGILL) instead of
             # computing whatever the optimiser chose; no sanitizer runtime is needed.
             "-fsanitize=signed-integer-overflow,shift", "-fsanitize-undefined-trap-on-error"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        flags.append("-mtls-dialect=gnu2")  # the statement-site marker is thread-local
    return flags


def _runtime_flags() -> list:
    flags = ["-pthread", "-fvisibility=hidden"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        flags.append("-mtls-dialect=gnu2")  # TLS descriptors: cheaper thread-local access from a dlopen'ed library
    return flags


PHASES_ENV = "TRITON_METAL_SIM_PHASES"


def phases_enabled() -> bool:
    """Kernels whose collectives are all at the top level run in phases unless TRITON_METAL_SIM_PHASES=0
    (then every kernel runs on fibers: for comparing the two, or ruling the splitter out)."""
    return os.environ.get(PHASES_ENV, "1").strip() not in ("0", "false", "no", "off")


def _compiler_identity(cxx: list) -> str:
    """Path, size and mtime of the compiler binary: cheaper than running `g++ --version`."""
    exe = shutil.which(cxx[0])
    if exe is None:
        raise SimCompileError(
            f"the Metal simulator compiles MSL with a C++ compiler, and '{cxx[0]}' was not found: "
            "install g++ (e.g. apt-get install g++) or set TRITON_METAL_SIM_CXX")
    real = os.path.realpath(exe)
    st = os.stat(real)
    return f"{' '.join(cxx)}|{real}|{st.st_size}|{st.st_mtime_ns}"


@functools.cache
def _sources_digest() -> str:
    """Everything besides the MSL that a kernel library depends on."""
    h = hashlib.sha256()
    files = sorted(INCLUDE_DIR.iterdir()) + [PACKAGE_DIR / n for n in ("msl_prepass.py", "phase_split.py", "trampoline.py", "build.py")]
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _key(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() + b"\0")
    return h.hexdigest()[:32]


def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(data)
    os.replace(tmp, path)


# ---- integrity of cached libraries (added by the reliability work, issue 10) -------------------
# dlopen of a truncated library dies with SIGBUS, so a library is served only when its sha256
# matches the digest written (atomically, before the library's own rename) when it was built;
# otherwise it is rebuilt in place (atomic rename, never deleted: another process may be loading it).
def _digest_path(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def _seal(built: Path, library: Path) -> None:
    _write_atomic(_digest_path(library), hashlib.sha256(built.read_bytes()).hexdigest())


def _sealed(library: Path) -> bool:
    try:
        expected = _digest_path(library).read_text().strip()
        actual = hashlib.sha256(library.read_bytes()).hexdigest()
    except FileNotFoundError:
        return False  # not built yet, or built before digests existed: (re)build it
    if actual != expected:
        global corrupt_libraries
        from triton_metal.errors import CacheCorruptionWarning  # lazily: the simulator imports without triton
        corrupt_libraries += 1
        warnings.warn(f"triton-metal simulator: cached library {library} does not match its checksum "
                      "(truncated or damaged): rebuilding it", CacheCorruptionWarning, stacklevel=3)
        return False
    return True


corrupt_libraries = 0  # damaged libraries found (and rebuilt) by this process


def _compile(cmd_prefix: list, source: Path, out: Path) -> subprocess.CompletedProcess:
    """Compile ``source`` into ``out`` through a temporary file and an atomic rename."""
    global compiler_runs
    compiler_runs += 1
    tmp = out.with_name(f"{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    proc = subprocess.run([*cmd_prefix, "-o", str(tmp), str(source)], capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        _seal(tmp, out)
        os.replace(tmp, out)
    else:
        tmp.unlink(missing_ok=True)
    return proc


def runtime_library() -> Path:
    """The fiber runtime library (built once per cache directory, compiler and source)."""
    cxx = compiler()
    cmd = [*cxx, *_flags(), *_runtime_flags()]
    source = RUNTIME_SOURCE.read_text()
    key = _key(source, (INCLUDE_DIR / "tm_sim_abi.h").read_text(), " ".join(cmd), _compiler_identity(cxx))
    out = cache_dir() / f"tm_runtime-{key}.so"
    with _lock(str(out)):
        if not _sealed(out):
            proc = _compile(cmd, RUNTIME_SOURCE, out)
            if proc.returncode != 0:
                raise SimCompileError(f"could not build the simulator runtime {RUNTIME_SOURCE}", proc.stderr)
    return out


@dataclass(frozen=True)
class BuiltKernel:
    name: str
    library: Path      # the kernel's shared library
    metal_path: Path   # the MSL as given (g++ messages refer to its lines)
    prepass: msl_prepass.PrepassResult
    phases: int = 0    # > 0: the kernel runs phase by phase, without fibers (phase_split.py)
    math_mode: MathMode = field(default_factory=MathMode)  # as its MSL states it (the launch flushes denormals accordingly)


def build(msl: str, kernel_name: str, instrument: bool = False) -> BuiltKernel:
    """Compile kernel ``kernel_name`` of ``msl``, or find it in the cache. ``instrument``: the build
    for strict mode and traffic counters (checked device and threadgroup pointers)."""
    cxx = compiler()
    mode = MathMode.of_msl(msl)
    cmd = [*cxx, *_flags(), *_math_flags(mode), *KERNEL_FLAGS, *(_instrument_flags() if instrument else [])]
    use_phases = not instrument and phases_enabled()
    key = _key(msl, kernel_name, _sources_digest(), " ".join(cmd), _compiler_identity(cxx), f"phases={use_phases}")
    root = cache_dir()
    metal_path = root / f"{key}.metal"
    library = root / f"{key}.so"
    if not metal_path.exists():
        _write_atomic(metal_path, msl)
    try:
        pre = msl_prepass.rewrite(msl, kernel_name, instrument)
    except msl_prepass.PrepassError as e:
        raise SimCompileError(f"{metal_path}:{e.line}: error: {e}", metal_path=str(metal_path)) from None
    phased = phase_split.split(pre.text, kernel_name) if use_phases else None
    with _lock(key):
        if not _sealed(library):
            cpp_path = root / f"{key}.cpp"
            text = phased.text if phased else pre.text
            _write_atomic(cpp_path, "".join([
                "#include <metal_stdlib>\n",
                f'#line 1 "{metal_path}"\n',
                text if text.endswith("\n") else text + "\n",
                f'#line 1 "{key}-trampoline.cpp (generated)"\n',
                trampoline.generate(kernel_name, pre.params, pre.n_static_decls, phased),
            ]))
            proc = _compile(cmd, cpp_path, library)
            if proc.returncode != 0:
                raise SimCompileError(f"g++ could not compile kernel '{kernel_name}' ({metal_path}):",
                                      proc.stderr, str(metal_path))
    return BuiltKernel(kernel_name, library, metal_path, pre, phased.phases if phased else 0, mode)
