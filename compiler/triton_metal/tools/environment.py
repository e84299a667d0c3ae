"""The environment checker: can this machine compile and run Triton kernels through triton-metal?

Each check returns OK, WARN or FAIL with the fix. ``check_environment()`` runs them all;
``python -m triton_metal.backends.metal.check_environment [--json] [--report]`` is the command line.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from dataclasses import asdict, dataclass

from triton_metal import abi

OK, WARN, FAIL = "OK", "WARN", "FAIL"
MIN_PYTHON = (3, 10)
MIN_MACOS = (13, 5)
PINNED_TRITON = "3.9.0"

# The probe kernel, with the builtins generated kernels use: element i = 2 * i + 1.
PROBE_MSL = """#include <metal_stdlib>
using namespace metal;
kernel void triton_metal_probe(device float* out [[buffer(0)]],
                               uint3 program_id [[threadgroup_position_in_grid]],
                               ushort lane [[thread_index_in_simdgroup]],
                               ushort simd [[simdgroup_index_in_threadgroup]])
{
    uint i = program_id.x * 64 + simd * 32 + lane;
    out[i] = 2.0f * float(i) + 1.0f;
}
"""
PROBE_THREADS = 64
PROBE_GROUPS = 2


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"[{self.status:>4}] {self.name}: {self.detail}"
        return text + (f"\n       fix: {self.fix}" if self.fix and self.status != OK else "")


@dataclass
class EnvironmentReport:
    checks: list
    info: dict  # the facts the bug-report block prints

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks], "info": dict(self.info)}

    def __str__(self) -> str:
        lines = ["triton-metal environment check"] + [str(c) for c in self.checks]
        n_warn = sum(c.status == WARN for c in self.checks)
        n_fail = sum(c.status == FAIL for c in self.checks)
        lines.append(f"{len(self.checks)} checks: {n_fail} FAIL, {n_warn} WARN"
                     + ("" if n_fail else " - ready" + (" (kernels run on the Metal simulator)"
                                                         if self.info.get("simulated") else "")))
        return "\n".join(lines)

    def bug_report(self) -> str:
        """The block to paste into a bug report."""
        keys = ("chip", "gpu_cores", "metal_family", "os", "python", "mlx", "triton", "triton_metal", "device",
                "runtime", "simulated")
        width = max(len(k) for k in keys)
        body = "\n".join(f"{k:<{width}} : {self.info.get(k, 'unknown')}" for k in keys)
        return f"### triton-metal bug report\n```\n{body}\n```"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _macos_version() -> tuple | None:
    return abi.macos_version() if platform.mac_ver()[0] else None


# ---- the checks, in the order they print ------------------------------------------------------
def check_python(info) -> Check:
    v = sys.version_info
    info["python"] = f"{v.major}.{v.minor}.{v.micro} ({sys.executable})"
    if v[:2] >= MIN_PYTHON:
        return Check("Python", OK, f"{v.major}.{v.minor}.{v.micro}")
    return Check("Python", FAIL, f"{v.major}.{v.minor} is too old",
                 f"use Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer (Triton 3.9 needs it)")


def check_os(info) -> Check:
    system = platform.system()
    if system == "Darwin":
        version = _macos_version()
        shown = ".".join(map(str, version or ())) or "unknown"
        info["os"] = f"macOS {shown} ({platform.machine()})"
        if version is None or version < MIN_MACOS:
            return Check("macOS", FAIL, f"macOS {shown}; Metal 3 compute for Triton needs macOS 13.5 or newer",
                         "update macOS (System Settings > General > Software Update)")
        if platform.machine() != "arm64":
            return Check("macOS", FAIL, f"macOS {shown} on {platform.machine()}: Python runs under Rosetta or on Intel",
                         "use an arm64 (native Apple silicon) Python")
        return Check("macOS", OK, f"macOS {shown} on arm64")
    info["os"] = f"{system} {platform.release()} ({platform.machine()})"
    return Check("macOS", WARN, f"{system}, not macOS: kernels run on the CPU through the Metal simulator "
                 "(the same MSL, not a GPU)", "to run on an Apple GPU, use a Mac with Apple silicon and macOS 13.5+")


def check_metal(info) -> Check:
    from triton_metal.runtime.metal_runtime import metal_device_available
    if platform.system() != "Darwin":
        return Check("Metal", WARN, "no Metal on this OS: the simulator stands in for it",
                     "nothing to do for CI; on a Mac, see the macOS line")
    try:
        import Metal  # noqa: F401
    except ImportError:
        return Check("Metal", FAIL, "pyobjc-framework-Metal is not installed",
                     "pip install pyobjc-framework-Metal")
    if not metal_device_available():
        return Check("Metal", FAIL, "MTLCreateSystemDefaultDevice() returned no device",
                     "run on Apple silicon, not in a VM without GPU access")
    return Check("Metal", OK, "a Metal device is available")


def check_mlx(info) -> Check:
    version = _version("mlx")
    info["mlx"] = version or "not installed"
    wanted = os.environ.get("TRITON_METAL_DEVICE", "").strip().lower() == "mlx"
    if version and platform.system() != "Darwin":
        return Check("MLX", OK, f"mlx {version} (CPU only off macOS: TRITON_METAL_DEVICE=mlx needs a Mac)")
    if version:
        return Check("MLX", OK, f"mlx {version}")
    fix = "pip install mlx" if platform.system() == "Darwin" else 'pip install "mlx[cpu]"'
    if wanted:
        return Check("MLX", FAIL, "TRITON_METAL_DEVICE=mlx but MLX is not installed", fix)
    return Check("MLX", WARN, "MLX is not installed (optional: only the mlx runtime and mx.array arguments need it)",
                 fix)


def check_device(info) -> Check:
    from triton_metal.runtime import get_runtime, requested_device
    info["device"] = os.environ.get("TRITON_METAL_DEVICE", "auto (default)")
    try:
        requested_device()
        runtime = get_runtime()
    except Exception as e:  # noqa: BLE001  # the runtime's own error names the cause and the fix
        info["runtime"] = f"unavailable: {e}"
        return Check("GPU", FAIL, f"{type(e).__name__}: {e}",
                     "unset TRITON_METAL_DEVICE (auto) or set TRITON_METAL_DEVICE=sim")
    from triton_metal.tools.hardware import get_hardware_capabilities
    caps = get_hardware_capabilities(runtime)
    info.update(chip=caps.chip, gpu_cores=caps.gpu_cores or "unknown", metal_family=caps.metal_family,
                runtime=runtime.name, simulated=caps.simulated)
    cores = f"{caps.gpu_cores} GPU cores" if caps.gpu_cores else "GPU cores unknown"
    if caps.simulated:
        return Check("GPU", OK, f"simulator emulating {caps.chip} ({cores}, Metal family {caps.metal_family}); "
                     "set TRITON_METAL_SIM_CHIP to emulate another chip")
    return Check("GPU", OK, f"{caps.chip} ({cores}, Metal family {caps.metal_family})")


def _run_probe(runtime) -> list:
    """Compile PROBE_MSL to a pipeline, run it on 2 threadgroups, return what it wrote."""
    pipeline = runtime.compile(PROBE_MSL, "triton_metal_probe")
    grid, threadgroup = (PROBE_GROUPS, 1, 1), (PROBE_THREADS, 1, 1)
    capabilities = runtime.capabilities
    if capabilities.immutable_outputs:  # MLX arrays are immutable: the kernel's output comes back as a new array
        from triton_metal.runtime.mlx_runtime import Output
        [out] = runtime.launch(pipeline, grid, threadgroup,
                               {0: Output((PROBE_GROUPS * PROBE_THREADS,), runtime.mx.float32)})
        runtime.synchronize()
        return [float(v) for v in out.tolist()]
    if capabilities.numpy_buffers:  # a numpy array in a shared MTLBuffer: the PyObjC path, no torch needed
        import numpy as np
        out = np.zeros(PROBE_GROUPS * PROBE_THREADS, dtype=np.float32)
        runtime.launch(pipeline, grid, threadgroup, {0: runtime.buffer_argument(out, "out")})
        runtime.synchronize()
        return out.tolist()
    import torch
    out = torch.zeros(PROBE_GROUPS * PROBE_THREADS, dtype=torch.float32, device=capabilities.torch_device)
    runtime.launch(pipeline, grid, threadgroup, {0: runtime.buffer_argument(out, "out")})
    runtime.synchronize()
    return out.cpu().tolist()


def check_compiler(info) -> Check:
    """Compile a kernel all the way to a pipeline and run it: a library alone proves little."""
    from triton_metal.runtime import get_runtime
    name = "Metal compiler" if platform.system() == "Darwin" else "Simulator compiler"
    try:
        runtime = get_runtime()
    except Exception as e:  # noqa: BLE001
        return Check(name, FAIL, f"no runtime to compile with: {e}", "see the GPU line")
    try:
        got = _run_probe(runtime)
    except Exception as e:  # noqa: BLE001
        fix = ("install g++ (apt-get install g++) or set TRITON_METAL_SIM_CXX" if runtime.capabilities.simulated
               else "install the Xcode command line tools (xcode-select --install)")
        return Check(name, FAIL, f"the probe kernel did not build or run: {type(e).__name__}: {e}", fix)
    expected = [2.0 * i + 1.0 for i in range(PROBE_GROUPS * PROBE_THREADS)]
    if got != expected:
        return Check(name, FAIL, "the probe kernel ran but computed wrong values",
                     "report a bug with the --report block")
    where = "simulator (g++)" if runtime.capabilities.simulated else f"GPU ({runtime.name} runtime)"
    return Check(name, OK, f"probe kernel compiled to a pipeline and ran on the {where}")


def check_triton(info) -> Check:
    version = _version("triton")
    info["triton"] = version or "not installed"
    info["triton_metal"] = _version("triton-metal") or "not installed"
    if version is None:
        return Check("Triton", FAIL, "triton is not installed", f"pip install triton=={PINNED_TRITON} "
                     "(on macOS: build the v3.9.0 tag from source, see README)")
    if version != PINNED_TRITON:
        return Check("Triton", WARN, f"triton {version}; triton-metal is tested with {PINNED_TRITON}",
                     f"pip install triton=={PINNED_TRITON}")
    return Check("Triton", OK, f"triton {version}")


def check_registration(info) -> Check:
    try:
        import triton
        from triton.backends import backends

        from triton_metal.compiler import MetalBackend
        from triton_metal.driver import MetalDriver
    except Exception as e:  # noqa: BLE001
        return Check("Backend registration", FAIL, f"importing Triton failed: {e}", "reinstall triton and triton-metal")
    entry = backends.get("metal")
    if entry is None or entry.compiler is not MetalBackend:
        return Check("Backend registration", FAIL, "Triton did not discover the 'metal' backend",
                     "pip install -e . (registers the triton.backends entry point 'metal = triton_metal')")
    try:
        active = triton.runtime.driver.active.get_current_target().backend
    except Exception as e:  # noqa: BLE001
        return Check("Backend registration", FAIL, f"no active Triton driver: {e}",
                     "set TRITON_METAL_DEVICE=sim (or TRITON_DEFAULT_BACKEND=metal)")
    if active != "metal" or not isinstance(triton.runtime.driver.active, MetalDriver):
        return Check("Backend registration", WARN, f"registered, but the active Triton driver is '{active}'",
                     "set TRITON_METAL_DEVICE=sim|metal to make Metal the active backend")
    return Check("Backend registration", OK, "'metal' backend registered and active")


CHECKS = {"Python": check_python, "macOS": check_os, "Metal": check_metal, "MLX": check_mlx, "GPU": check_device,
          "Metal compiler": check_compiler, "Triton": check_triton, "Backend registration": check_registration}


def check_environment(verbose: bool = True) -> EnvironmentReport:
    """Run every check; prints the report unless ``verbose=False``; returns it."""
    info: dict = {}
    checks = []
    for name, check in CHECKS.items():
        try:
            checks.append(check(info))
        except Exception as e:  # noqa: BLE001  # a broken check is a finding too, never a crash of the checker
            checks.append(Check(name, FAIL, f"{type(e).__name__}: {e}", "report a bug with the --report block"))
    report = EnvironmentReport(checks, info)
    if verbose:
        print(report)
    return report
