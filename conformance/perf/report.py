"""The end-of-run report of the benchmarks: a text table of peer ratios and a PNG chart.

Rows come from ``baseline_plugin.collect_rows``: one per benchmark, with ``case``, ``label``,
``impl`` (triton-metal / torch / mlx), ``min`` seconds, ``baseline_min`` (triton-metal's stored
time on this chip, when compared) and the achieved ``gbps`` or ``tflops``; triton-metal's rows also carry
``work``: the case's work counters at its traffic size (conformance/perf/traffic.py ``work_summary``),
shown beside the timings: barriers per program, simdgroup_matrix loads/stores/multiply-accumulates,
the threadgroup memory of one program and the threadgroup bytes read per FMA of the workload.
"""
from __future__ import annotations

import datetime
from pathlib import Path

TRITON = "triton-metal"
PEERS = ("torch", "mlx")


def by_case(rows: list[dict]) -> dict[str, dict[str, dict]]:
    cases: dict[str, dict[str, dict]] = {}
    for row in rows:
        cases.setdefault(row["label"], {})[row["impl"]] = row
    return cases


def _ms(seconds) -> str:
    return f"{seconds * 1e3:.3f}" if seconds is not None else "-"


def _ratio(peer: dict | None, triton: dict | None) -> str:
    if not peer or not triton:
        return "-"
    return f"{peer['min'] / triton['min']:.2f}x"


def _achieved(row: dict | None) -> str:
    if not row:
        return "-"
    tflops = row.get("tflops")
    if tflops is None:
        figure = f"{row['gbps']:.2f} GB/s"
    else:
        figure = f"{tflops:.2f} TFLOP/s" if tflops >= 0.1 else f"{tflops * 1e3:.2f} GFLOP/s"
    if row.get("peak_fraction") is not None:
        figure += f" ({row['peak_fraction']:.0%} of peak)"
    return figure


def _change(row: dict | None) -> str:
    if not row or row.get("baseline_min") is None:
        return "-"
    return f"{row['min'] / row['baseline_min'] - 1:+.0%}"


WORK_HEADER = ["barriers/program", "sgm load/store/mac", "tg memory", "tg B/FMA"]


def _work(row: dict | None) -> list[str]:
    """The work-counter cells of a triton-metal row (``-`` each when it has none)."""
    work = (row or {}).get("work")
    if not work:
        return ["-"] * len(WORK_HEADER)
    per_fma = work.get("threadgroup_bytes_read_per_fma")
    sgm = "/".join(str(work[k]) for k in ("simdgroup_matrix_loads", "simdgroup_matrix_stores",
                                          "simdgroup_matrix_multiply_accumulates"))
    return [f"{work['barriers_per_program']:g}", sgm,
            f"{work['threadgroup_memory_bytes'] / 1024:.1f} KiB",
            "-" if per_fma is None else f"{per_fma:.3f}"]


def format_table(rows: list[dict]) -> list[str]:
    header = ["case", f"{TRITON} ms", "baseline ms", "change", "torch ms", "speed vs torch", "mlx ms",
              "speed vs mlx", f"{TRITON} achieved", *WORK_HEADER]
    table = [header]
    for label, impls in by_case(rows).items():
        triton = impls.get(TRITON)
        torch_row, mlx_row = impls.get("torch"), impls.get("mlx")
        table.append([label, _ms(triton and triton["min"]), _ms(triton and triton.get("baseline_min")),
                      _change(triton), _ms(torch_row and torch_row["min"]), _ratio(torch_row, triton),
                      _ms(mlx_row and mlx_row["min"]), _ratio(mlx_row, triton), _achieved(triton), *_work(triton)])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table]


def chart_path(folder: Path, chip_id: str, now: datetime.datetime) -> Path:
    return folder / chip_id / f"bench-{now:%Y%m%d-%H%M%S}.png"


def write_chart(rows: list[dict], path: Path, title: str) -> Path:
    """Horizontal bars per case: triton-metal now, its baseline, and each peer (log time axis)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = by_case(rows)
    series = [(f"{TRITON} (this run)", lambda impls: impls.get(TRITON, {}).get("min"), "tab:blue"),
              (f"{TRITON} (baseline)", lambda impls: impls.get(TRITON, {}).get("baseline_min"), "tab:gray"),
              ("torch", lambda impls: impls.get("torch", {}).get("min"), "tab:orange"),
              ("mlx", lambda impls: impls.get("mlx", {}).get("min"), "tab:green")]
    series = [s for s in series if any(s[1](impls) is not None for impls in cases.values())]
    height = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(10, 1.8 + 0.9 * len(cases)))
    labels = list(cases)
    for i, (name, get, color) in enumerate(series):
        ys = [c + i * height for c in range(len(labels))]
        values = [(get(cases[label]) or 0) * 1e3 for label in labels]
        bars = ax.barh(ys, values, height=height, label=name, color=color)
        for bar, value, label in zip(bars, values, labels):
            if not value:
                continue
            # This run's bar also shows its change against the baseline, so a regression reads at a glance.
            change = _change(cases[label].get(TRITON)) if i == 0 else "-"
            text = f" {value:.3g}" + (f" ({change} vs baseline)" if change != "-" else "")
            slower = change.startswith("+") and i == 0
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=7,
                    color="tab:red" if slower else "black")
    ax.set_yticks([c + height * (len(series) - 1) / 2 for c in range(len(labels))])
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("time per call, ms (min of rounds; log scale; shorter is faster)")
    ax.set_title(title, pad=24)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(series), fontsize=8, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
