"""What we know about each Apple GPU the backend targets.

Only limits that Apple documents for every family are filled in here (the Metal Feature Set
Tables): 1024 threads per threadgroup, 32 KiB threadgroup memory, SIMD width 32.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chip:
    id: str
    metal_family: str
    max_threads_per_threadgroup: int = 1024
    max_threadgroup_memory: int = 32 * 1024
    simd_width: int = 32
    buffer_argument_slots: int = 31
    supports_bfloat: bool = False  # native `bfloat` needs Metal 3.1 (Apple7+ with macOS 14)


# Apple GPU family per generation (Metal Feature Set Tables).
CHIPS = {
    "apple-m1": Chip("apple-m1", "apple7", supports_bfloat=True),
    "apple-m2": Chip("apple-m2", "apple8", supports_bfloat=True),
    "apple-m3": Chip("apple-m3", "apple9", supports_bfloat=True),
    "apple-m4": Chip("apple-m4", "apple9", supports_bfloat=True),
}

DEFAULT_SIMULATED_CHIP = "apple-m1"


def chip(chip_id: str) -> Chip:
    base = chip_id
    for suffix in ("-pro", "-max", "-ultra"):
        base = base.removesuffix(suffix)
    try:
        return CHIPS[base]
    except KeyError:
        raise ValueError(f"unknown Apple chip '{chip_id}'; known: {', '.join(sorted(CHIPS))}") from None
