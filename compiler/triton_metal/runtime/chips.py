"""What we know about each Apple GPU the backend targets, and which one this machine has.

Two tables:

* ``CHIPS``: one row per GPU generation (M1 ... M5): the Metal GPU family and the limits codegen
  relies on. Apple documents the same limits for every family in the Metal Feature Set Tables
  (``triton_metal.abi``: 1024 threads per threadgroup, 32 KiB threadgroup memory, SIMD width 32).
* ``CHIP_CONFIGS``: one row per shipped configuration (variant x GPU core count): peak DRAM
  bandwidth and FP32 peak, each with its public source. ``None`` means Apple has not published
  the figure (we never fill a gap with an estimate): the benchmarks then report no peak fraction.

The Metal and MLX runtimes identify the chip (``detect_chip``: Metal device name, else
``sysctl machdep.cpu.brand_string``; IORegistry ``gpu-core-count``). ``ChipIdentity`` turns that into
the benchmark baseline folder id: binned parts of one variant differ in cores and sometimes in
bandwidth, so the id carries the core count (``apple-m2-pro-19c``). Off Apple GPUs the benchmarks
run on the simulator, whose speed is the host CPU's: the baseline id is ``<system>-<arch>-sim-<cpu>``
(``linux-x86_64-sim-intel-xeon-processor``), the CPU model as the OS names it.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import dataclass, replace

from triton_metal import abi
from triton_metal.debug import log
from triton_metal.errors import MetalNotSupportedError


@dataclass(frozen=True)
class Chip:
    id: str
    metal_family: str
    max_threads_per_threadgroup: int = abi.MAX_THREADS_PER_THREADGROUP
    max_threadgroup_memory: int = abi.MAX_THREADGROUP_MEMORY
    simd_width: int = abi.SIMD_WIDTH
    buffer_argument_slots: int = abi.BUFFER_SLOTS
    supports_bfloat: bool = False  # native `bfloat` needs Metal 3.1 (Apple7+ with macOS 14)
    # simdgroup_matrix (8x8 multiply-accumulate): Apple7 and later (Metal Feature Set Tables, MSL 2.3).
    supports_simdgroup_matrix: bool = True


# Apple GPU family per generation (Metal Feature Set Tables: M1 = Apple7, M2 = Apple8, M3 and M4 =
# Apple9, M5 = Apple10). bfloat: MSL 3.1 `bfloat` on Apple7+ (Metal Shading Language spec 3.1, 2.1.1).
CHIPS = {
    "apple-m1": Chip("apple-m1", "apple7", supports_bfloat=True),
    "apple-m2": Chip("apple-m2", "apple8", supports_bfloat=True),
    "apple-m3": Chip("apple-m3", "apple9", supports_bfloat=True),
    "apple-m4": Chip("apple-m4", "apple9", supports_bfloat=True),
    "apple-m5": Chip("apple-m5", "apple10", supports_bfloat=True),
}

DEFAULT_SIMULATED_CHIP = "apple-m1"
VARIANTS = ("pro", "max", "ultra")


def chip(chip_id: str) -> Chip:
    """The generation row of a chip id (``apple-m2``, ``apple-m2-pro``, ``apple-m2-pro-19c``)."""
    base = re.sub(r"-\d+c$", "", chip_id)
    for suffix in VARIANTS:
        base = base.removesuffix(f"-{suffix}")
    try:
        return CHIPS[base]
    except KeyError:
        raise ValueError(f"unknown Apple chip '{chip_id}'; known: {', '.join(sorted(CHIPS))}") from None


def metal_family(chip_id: str) -> str:
    """The Metal GPU family codegen targets for a Triton arch (a chip id); an Apple chip newer than the
    table is taken to be of the newest family (as detect_chip takes its limits), anything else is ''."""
    try:
        return chip(chip_id).metal_family
    except ValueError:
        return list(CHIPS.values())[-1].metal_family if _APPLE_CHIP_ID.match(chip_id or "") else ""


_APPLE_CHIP_ID = re.compile(r"apple-m\d+\b")


@dataclass(frozen=True)
class ChipConfig:
    variant: str                        # apple-m2-pro
    gpu_cores: int | None
    dram_bandwidth_gbs: float | None    # peak unified-memory bandwidth, GB/s (10^9 bytes/s)
    fp32_tflops: float | None           # peak FP32 throughput, TFLOP/s
    source: str

    @property
    def generation(self) -> Chip:
        return chip(self.variant)


# Sources, cited by key in the table below.
_SRC = {
    "m1": "Apple newsroom 2020-11-10 'Apple unleashes M1' (7/8-core GPU, 2.6 TFLOPS); 68.25 GB/s = 128-bit "
          "LPDDR4X-4266 (AnandTech M1 review; Apple publishes no M1 bandwidth)",
    "m1-pro-max": "Apple newsroom 2021-10-18 'Introducing M1 Pro and M1 Max' (200/400 GB/s, up to 16/32 GPU "
                  "cores) and the same day's keynote (5.2 / 10.4 TFLOPS); binned 14/24-core: MacBook Pro tech specs",
    "m1-ultra": "Apple newsroom 2022-03-08 'Apple unveils M1 Ultra' (800 GB/s, 48/64-core GPU)",
    "m2": "Apple newsroom 2022-06-06 'Apple unveils M2' (100 GB/s, up to 10-core GPU); 8-core: MacBook Air specs",
    "m2-pro-max": "Apple newsroom 2023-01-17 'Apple unveils M2 Pro and M2 Max' (200/400 GB/s, up to 19/38 GPU "
                  "cores); binned 16/30-core: MacBook Pro tech specs",
    "m2-ultra": "Apple newsroom 2023-06-05 'Apple introduces M2 Ultra' (800 GB/s, 60/76-core GPU)",
    "m3": "Apple newsroom 2023-10-30 'Apple unveils M3, M3 Pro, and M3 Max' and MacBook Pro tech specs "
          "(M3 100 GB/s 8/10-core; M3 Pro 150 GB/s 14/18-core; M3 Max 300 GB/s 30-core, 400 GB/s 40-core)",
    "m3-ultra": "Apple newsroom 2025-03-05 'Apple reveals M3 Ultra' and Mac Studio tech specs (819 GB/s, 60/80-core)",
    "m4": "Apple newsroom 2024-05-07 'Apple introduces M4 chip' (120 GB/s, 10-core GPU); 8-core: iMac/MacBook "
          "Air tech specs",
    "m4-pro-max": "Apple newsroom 2024-10-30 'Apple introduces M4 Pro and M4 Max' and MacBook Pro tech specs "
                  "(M4 Pro 273 GB/s 16/20-core; M4 Max 410 GB/s 32-core, 546 GB/s 40-core)",
    "m5": "Apple newsroom 2025-10-15 'Apple unleashes M5' (153 GB/s, 10-core GPU)",
    "m5-pro-max": "Apple newsroom 2026-03 'M5 Pro and M5 Max' (up to 20-core GPU and 307 GB/s; up to 40-core "
                  "GPU and 614 GB/s); binned configurations not published there",
    "no-m4-ultra": "Apple has released no M4 Ultra (Mac Studio 2025 pairs M4 Max with M3 Ultra: newsroom 2025-03-05)",
    "unpublished": "not announced by Apple at the time of writing",
}

# variant, GPU cores, DRAM GB/s, FP32 TFLOP/s, source key. FP32 peaks: only where Apple stated one.
_CONFIG_ROWS = (
    ("apple-m1", 7, 68.25, None, "m1"),
    ("apple-m1", 8, 68.25, 2.6, "m1"),
    ("apple-m1-pro", 14, 200, None, "m1-pro-max"),
    ("apple-m1-pro", 16, 200, 5.2, "m1-pro-max"),
    ("apple-m1-max", 24, 400, None, "m1-pro-max"),
    ("apple-m1-max", 32, 400, 10.4, "m1-pro-max"),
    ("apple-m1-ultra", 48, 800, None, "m1-ultra"),
    ("apple-m1-ultra", 64, 800, None, "m1-ultra"),
    ("apple-m2", 8, 100, None, "m2"),
    ("apple-m2", 10, 100, None, "m2"),
    ("apple-m2-pro", 16, 200, None, "m2-pro-max"),
    ("apple-m2-pro", 19, 200, None, "m2-pro-max"),
    ("apple-m2-max", 30, 400, None, "m2-pro-max"),
    ("apple-m2-max", 38, 400, None, "m2-pro-max"),
    ("apple-m2-ultra", 60, 800, None, "m2-ultra"),
    ("apple-m2-ultra", 76, 800, None, "m2-ultra"),
    ("apple-m3", 8, 100, None, "m3"),
    ("apple-m3", 10, 100, None, "m3"),
    ("apple-m3-pro", 14, 150, None, "m3"),
    ("apple-m3-pro", 18, 150, None, "m3"),
    ("apple-m3-max", 30, 300, None, "m3"),
    ("apple-m3-max", 40, 400, None, "m3"),
    ("apple-m3-ultra", 60, 819, None, "m3-ultra"),
    ("apple-m3-ultra", 80, 819, None, "m3-ultra"),
    ("apple-m4", 8, 120, None, "m4"),
    ("apple-m4", 10, 120, None, "m4"),
    ("apple-m4-pro", 16, 273, None, "m4-pro-max"),
    ("apple-m4-pro", 20, 273, None, "m4-pro-max"),
    ("apple-m4-max", 32, 410, None, "m4-pro-max"),
    ("apple-m4-max", 40, 546, None, "m4-pro-max"),
    ("apple-m4-ultra", None, None, None, "no-m4-ultra"),
    ("apple-m5", 10, 153, None, "m5"),
    ("apple-m5-pro", 20, 307, None, "m5-pro-max"),
    ("apple-m5-max", 40, 614, None, "m5-pro-max"),
    ("apple-m5-ultra", None, None, None, "unpublished"),
)

CHIP_CONFIGS = tuple(ChipConfig(v, cores, bw, fp32, _SRC[src]) for v, cores, bw, fp32, src in _CONFIG_ROWS)


def chip_config(variant: str, gpu_cores: int | None) -> ChipConfig | None:
    """The published configuration of a variant with that many GPU cores (None when not in the table)."""
    for config in CHIP_CONFIGS:
        if config.variant == variant and config.gpu_cores == gpu_cores:
            return config
    return None


@dataclass(frozen=True)
class ChipIdentity:
    variant: str            # apple-m2-pro
    gpu_cores: int | None

    @property
    def baseline_id(self) -> str:
        """The folder under baselines/ (binned parts differ in speed, so the core count is part of it)."""
        return f"{self.variant}-{self.gpu_cores}c" if self.gpu_cores else self.variant

    @property
    def config(self) -> ChipConfig | None:
        return chip_config(self.variant, self.gpu_cores)


HOST_CPU_ENV = "TRITON_METAL_HOST_CPU"  # overrides the CPU model (tests; hosts whose CPU reports no model)


def _proc_cpuinfo_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    except OSError:
        return None
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    if fields.get("model name"):  # x86, and most ARM kernels
        return fields["model name"]
    if fields.get("CPU implementer") and fields.get("CPU part"):  # ARM without a model name: the part numbers
        return f"arm {fields['CPU implementer']} {fields['CPU part']}"
    return None


def _sysctl_brand() -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                             timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def host_cpu_model() -> str:
    """The host CPU's model name as the OS reports it (what a simulator run's speed depends on)."""
    return (os.environ.get(HOST_CPU_ENV) or (_sysctl_brand() if platform.system() == "Darwin" else
                                             _proc_cpuinfo_model()) or platform.processor() or "unknown cpu")


def cpu_slug(model: str) -> str:
    """``Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz`` -> ``intel-core-i7-8700``: the part, without marks or clock."""
    text = re.sub(r"\((r|tm|c)\)|@.*$|\bcpu\b", " ", model.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown-cpu"


def simulator_baseline_id(system: str | None = None, machine: str | None = None, cpu: str | None = None) -> str:
    """Baseline folder id of simulator runs: the host they ran on, with its CPU model (the simulator's speed
    is the CPU's), e.g. ``linux-x86_64-sim-intel-xeon-processor``."""
    host = f"{(system or platform.system()).lower()}-{(machine or platform.machine()).lower()}"
    return f"{host}-sim-{cpu_slug(cpu or host_cpu_model())}"


# ---- which chip this machine has (pure parsers, unit-tested with recorded outputs) ----------------

_APPLE_CHIP = re.compile(r"\bApple\s+(M\d+)(?:\s+(Pro|Max|Ultra))?\b", re.IGNORECASE)
_GPU_CORES = re.compile(r'"gpu-core-count"\s*=\s*(\d+)')


def chip_id_from_name(name: str) -> str | None:
    """``"Apple M2 Pro"`` (sysctl machdep.cpu.brand_string or MTLDevice.name) -> ``"apple-m2-pro"``."""
    m = _APPLE_CHIP.search(name or "")
    if m is None:
        return None
    return "-".join(["apple", m.group(1).lower()] + ([m.group(2).lower()] if m.group(2) else []))


def gpu_core_count_from_ioreg(ioreg_output: str) -> int | None:
    """The ``"gpu-core-count" = N`` entry of ``ioreg -l`` (the AGX accelerator node)."""
    m = _GPU_CORES.search(ioreg_output or "")
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class DetectedChip:
    id: str  # baselines/<id>/ and the Triton target arch, e.g. apple-m2-pro
    chip: Chip
    gpu_cores: int | None
    source: str  # what the id was read from


def _run(args: list) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def detect_chip(device_name: str | None = None, brand_string: str | None = None, ioreg_output: str | None = None,
                run=_run) -> DetectedChip:
    """Which Apple chip this is: the Metal device name, else ``sysctl -n machdep.cpu.brand_string``;
    GPU cores from ``ioreg -l``. Outputs not given are read by running the commands (macOS only)."""
    source = "Metal device name"
    chip_id = chip_id_from_name(device_name or "")
    if chip_id is None:
        if brand_string is None:
            brand_string = run(["sysctl", "-n", "machdep.cpu.brand_string"])
        chip_id, source = chip_id_from_name(brand_string), "sysctl machdep.cpu.brand_string"
    if chip_id is None:
        raise MetalNotSupportedError(
            f"cannot tell which Apple GPU this is (Metal device {device_name!r}, CPU {brand_string!r}): the Metal "
            "runtime supports Apple Silicon (M1 and later). Use TRITON_METAL_DEVICE=sim to run on the CPU.")
    if ioreg_output is None:
        ioreg_output = run(["ioreg", "-l"])
    try:
        info = chip(chip_id)
    except ValueError:
        # A chip newer than our table: every Apple GPU family shares the limits the table holds.
        newest = list(CHIPS.values())[-1]
        log(1, "chip %s is not in triton-metal's chip table; using the limits of %s", chip_id, newest.id)
        info = replace(newest, id=chip_id)
    else:
        info = replace(info, id=chip_id)
    return DetectedChip(chip_id, info, gpu_core_count_from_ioreg(ioreg_output), source)
