"""What the GPU in use can do: limits, features and the chip table's peak figures.

On the simulator the values are those of the chip it emulates (``TRITON_METAL_SIM_CHIP``),
marked ``simulated=True``; peaks are the chip's, not the CPU's.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

# Apple GPU family from which a feature exists (Metal Feature Set Tables / MSL specification).
FLOAT_ATOMICS_FAMILY = 7     # atomic<float> fetch_add on device memory: MSL 3.0, Apple7 and later


@dataclass(frozen=True)
class HardwareCapabilities(Mapping):
    """A frozen record that is also a read-only mapping of its fields, as the troubleshooting guide
    uses it: ``caps.supports_fast_atomics`` and ``caps["supports_fast_atomics"]``, ``in``, ``.get``,
    ``dict(caps)``, iteration over the field names."""

    chip: str
    metal_family: str
    simulated: bool
    runtime: str
    gpu_cores: int | None
    simd_width: int
    max_threads_per_threadgroup: int
    threadgroup_memory_bytes: int
    supports_bfloat: bool
    supports_fast_atomics: bool  # native float atomics (no compare-exchange loop)
    supports_simdgroup_matrix: bool
    peak_bandwidth_gbs: float | None
    peak_fp32_tflops: float | None
    unified_memory_bytes: int | None
    memory_source: str
    chip_source: str = ""  # where the peak figures come from
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    # The Mapping protocol (keys, items, values, get, `in` come from collections.abc.Mapping). The
    # dataclass's own __eq__, __hash__ and __repr__ stay: they are generated into this class.
    def __getitem__(self, key):
        if isinstance(key, str) and key in self.__dataclass_fields__:
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self):
        return (f.name for f in fields(self))

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)

    def __str__(self) -> str:
        width = max(len(k) for k in self.as_dict())
        return "\n".join(f"{k:<{width}}  {_show(v)}" for k, v in self.as_dict().items())


def _show(value) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1 << 30:
        return f"{value / (1 << 30):.1f} GiB"
    return str(value)


def family_number(family: str) -> int:
    m = re.search(r"(\d+)$", family or "")
    return int(m.group(1)) if m else 0


def _first(obj, *names):
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _host_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _identity(runtime):
    """(variant, GPU cores, note) of the chip in use."""
    from triton_metal.runtime import chips
    capabilities = runtime.capabilities
    if not capabilities.simulated:  # the runtime detected the chip (device name, ioreg core count)
        return re.sub(r"-\d+c$", "", capabilities.chip.id), capabilities.gpu_cores, ""
    # The simulator emulates TRITON_METAL_SIM_CHIP, e.g. apple-m2-pro or apple-m2-pro-19c.
    emulated = os.environ.get("TRITON_METAL_SIM_CHIP") or runtime.chip.id
    m = re.fullmatch(r"(.*?)(?:-(\d+)c)?", emulated)
    variant, cores = m.group(1), int(m.group(2)) if m.group(2) else None
    if cores is None:
        known = [c.gpu_cores for c in chips.CHIP_CONFIGS if c.variant == variant and c.gpu_cores]
        if known:
            cores = max(known)
            return variant, cores, (f"no core count in TRITON_METAL_SIM_CHIP={emulated}: the full {cores}-core "
                                    f"configuration (set e.g. {variant}-{min(known)}c for another)")
    return variant, cores, ""


def get_hardware_capabilities(runtime=None) -> HardwareCapabilities:
    """Capabilities of the device the active runtime uses (``runtime`` defaults to it)."""
    from triton_metal.runtime import chips
    if runtime is None:
        from triton_metal.runtime import get_runtime
        runtime = get_runtime()
    chip = runtime.chip
    variant, cores, note = _identity(runtime)
    config = chips.chip_config(variant, cores)
    family = family_number(chip.metal_family)
    simulated = runtime.capabilities.simulated
    memory = runtime.capabilities.device_memory_bytes
    source = "the Metal device" if memory is not None else (
        "the host's RAM (what simulated kernels use)" if simulated else "the host's physical memory")
    if memory is None:
        memory = _host_memory_bytes()
    return HardwareCapabilities(
        chip=variant,
        metal_family=chip.metal_family,
        simulated=simulated,
        runtime=runtime.name,
        gpu_cores=cores,
        simd_width=chip.simd_width,
        max_threads_per_threadgroup=chip.max_threads_per_threadgroup,
        threadgroup_memory_bytes=chip.max_threadgroup_memory,
        supports_bfloat=bool(chip.supports_bfloat),
        supports_fast_atomics=bool(_first(chip, "supports_fast_atomics") or family >= FLOAT_ATOMICS_FAMILY),
        supports_simdgroup_matrix=bool(_first(chip, "supports_simdgroup_matrix")),
        peak_bandwidth_gbs=config.dram_bandwidth_gbs if config else None,
        peak_fp32_tflops=config.fp32_tflops if config else None,
        unified_memory_bytes=memory,
        memory_source=source,
        chip_source=config.source if config else "no row for this chip in runtime/chips.py CHIP_CONFIGS",
        note=note,
    )
