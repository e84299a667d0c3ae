"""Every Python block of docs/troubleshooting.md runs, on the simulator, each in a fresh process.

The guide's snippets use placeholders; the test fills them with a small real kernel (the README's
``add_kernel``) and its data, so a block runs as a reader would run it in a script of their own:

* names (``your_function``, ``sample_inputs``, ``metal_kernel``, ``x_metal``, ``x``, ``add_kernel``,
  ...) are defined by ``PRELUDE``, which imports neither ``triton_metal.backends`` nor anything
  the block should import itself;
* ``def name(...):`` gets the add kernel's parameters, and a body that is only comments or ``...``
  gets its body; each kernel filled so is launched after the block and its output checked;
* a ``...`` statement ("run your code") becomes a checked launch of ``add_kernel``;
* ``size_mb=N`` becomes ``size_mb=1`` (2 GiB of copies would take minutes on a simulating CPU).

An HTML comment right before a block says when it runs differently:
``<!-- doc-test: kernel-body -->``: the statements are the body of a kernel (``ptr``,
``simple_offset``, ``complex_offset_calculation`` defined, ``x`` stored), launched and checked;
``<!-- doc-test: raises: TEXT -->``: the block must fail with TEXT in its error (a spelling the doc
shows as refused, with the reason). Both can be combined, separated by ``;``.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "troubleshooting.md"
N = 4096
BLOCK = 1024

PRELUDE = f'''\
import torch
import triton
import triton.language as tl
import triton_metal
from triton.runtime.autotuner import Autotuner

n = {N}
device = triton.runtime.driver.active.get_active_torch_device()
x = torch.rand(n, device=device)
y = torch.rand(n, device=device)
out = torch.empty_like(x)
grid = (triton.cdiv(n, {BLOCK}),)
x_metal, y_metal, x_cpu, y_cpu = x, y, x.cpu(), y.cpu()


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK_SIZE: tl.constexpr):
    offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


def add(x, y):
    out = torch.empty_like(x)
    add_kernel[(triton.cdiv(x.numel(), {BLOCK}),)](x, y, out, x.numel(), BLOCK_SIZE={BLOCK})
    return out


your_function, sample_inputs, metal_kernel = add, (x, y), add


def run_example(kernel=None):
    """A checked launch where the guide writes `...`: the kernel (default add_kernel) on x and y."""
    kernel = kernel or add_kernel
    result = torch.empty_like(x)
    if isinstance(kernel, Autotuner):
        kernel[lambda meta: (triton.cdiv(n, meta["BLOCK_SIZE"]),)](x, y, result, n)
    else:
        kernel[grid](x, y, result, n, BLOCK_SIZE={BLOCK})
    torch.testing.assert_close(result.cpu(), x.cpu() + y.cpu(), rtol=0, atol=0)
    print(f"doc-test: {{getattr(kernel, '__name__', 'kernel')}} launched and checked")
'''

KERNEL_BODY = f'''
import triton_metal.language as tml


@triton.jit
def doc_kernel_body(ptr, out_ptr, n, BLOCK_SIZE: tl.constexpr):
    simple_offset = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    complex_offset_calculation = (simple_offset % 64) * (n // 64) + simple_offset // 64  # a transposing gather
{{body}}
    tl.store(out_ptr + simple_offset, x)


copied = torch.empty_like(x)
doc_kernel_body[grid](x, copied, n, BLOCK_SIZE={BLOCK})
torch.testing.assert_close(copied.cpu(), x.cpu(), rtol=0, atol=0)  # the block's last load: x[simple_offset]
'''

ADD_PARAMS = "x_ptr, y_ptr, out_ptr, n, BLOCK_SIZE: tl.constexpr"
ADD_BODY = ("offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)",
            "mask = offs < n",
            "tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)")
# Blocks that need an optional package, by the import that needs it.
OPTIONAL_IMPORTS = {"import mlx": "mlx"}


@dataclass
class Block:
    id: str
    code: str
    kernel_body: bool = False
    raises: str | None = None


def python_blocks(text: str) -> list[Block]:
    blocks, heading, counts = [], "top", {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = re.sub(r"[^a-z0-9]+", "-", line.lstrip("#").strip().lower()).strip("-")[:40]
        if line.strip() == "```python":
            end = lines.index("```", i + 1)
            marker = lines[i - 1].strip() if i else ""
            options = re.fullmatch(r"<!-- doc-test: (.*) -->", marker)
            options = [o.strip() for o in options.group(1).split(";")] if options else []
            raises = next((o.removeprefix("raises:").strip() for o in options if o.startswith("raises:")), None)
            counts[heading] = counts.get(heading, 0) + 1
            blocks.append(Block(f"{heading}-{counts[heading]}", "\n".join(lines[i + 1:end]) + "\n",
                                "kernel-body" in options, raises))
            i = end
        i += 1
    return blocks


def _placeholder_body(lines: list[str]) -> bool:
    return all(not s or s == "..." or s.startswith("#") for s in (line.strip() for line in lines))


def fill(code: str) -> tuple[str, list[str]]:
    """The block with its placeholders filled, and the kernels filled with the add kernel (to launch)."""
    lines, result, filled = code.splitlines(), [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"(\s*)def (\w+)\((.*)\):\s*(.*)$", line)
        if m:
            indent, name, params, inline = m.groups()
            body = []
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > len(indent)):
                body.append(lines[j])
                j += 1
            while body and not body[-1].strip():  # blank lines after the body belong to the module
                body.pop()
                j -= 1
            placeholder = inline in ("", "...") and _placeholder_body(body)
            params = ADD_PARAMS if params == "..." else params
            if placeholder:
                result.append(f"{indent}def {name}({params}):")
                result += [f"{indent}    {stmt}" for stmt in ADD_BODY]
                filled.append(name)
            else:
                result.append(f"{indent}def {name}({params}):" + (f" {inline}" if inline else ""))
                result += body
            i = j
            continue
        if line.strip() == "...":
            line = line.replace("...", "run_example()")
        result.append(re.sub(r"size_mb=\d+", "size_mb=1", line))
        i += 1
    return "\n".join(result) + "\n", filled


def script_for(block: Block) -> str:
    if block.kernel_body:
        return PRELUDE + KERNEL_BODY.format(body=textwrap.indent(block.code, "    "))
    code, filled = fill(block.code)
    return PRELUDE + "\n" + code + "".join(f"\nrun_example({name})\n" for name in filled)


BLOCKS = python_blocks(DOC.read_text())


@pytest.fixture(scope="module")
def private_dirs(tmp_path_factory):
    """Caches and shader dumps of these runs (clear_cache() empties them: never the user's)."""
    root = tmp_path_factory.mktemp("doc-blocks")
    return {"TRITON_CACHE_DIR": str(root / "triton-cache"), "TRITON_METAL_SIM_CACHE_DIR": str(root / "sim-cache"),
            "TRITON_METAL_SHADER_DUMP_DIR": str(root / "shaders"), "TRITON_METAL_DEVICE": "sim"}


def test_the_doc_has_python_blocks_and_markers_parse():
    assert len(BLOCKS) >= 20
    assert sum(b.kernel_body for b in BLOCKS) == 2 and sum(b.raises is not None for b in BLOCKS) == 2


def test_fill_replaces_placeholder_signature_and_body():
    code, filled = fill("@triton_metal.jit\ndef my_kernel(...):\n    # Kernel code\n    ...\n\nprint(1)\n")
    assert filled == ["my_kernel"]
    assert f"def my_kernel({ADD_PARAMS}):" in code and ADD_BODY[-1] in code and "\nprint(1)" in code
    code, filled = fill("def my_kernel(...):\n    result = tl.operation1(x)\n...\n")
    assert filled == [] and "result = tl.operation1(x)" in code and code.endswith("run_example()\n")


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block_runs_on_the_simulator(block, private_dirs, tmp_path):
    for needle, module in OPTIONAL_IMPORTS.items():
        if needle in block.code and importlib.util.find_spec(module) is None:
            pytest.skip(f"the block imports {module}, which is not installed")
    script = tmp_path / f"{block.id}.py"
    script.write_text(script_for(block))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=False,
                          cwd=tmp_path, env=dict(os.environ, **private_dirs))
    output = proc.stdout + proc.stderr
    if block.raises is None:
        assert proc.returncode == 0, f"{block.id} failed:\n{block.code}\n{output}"
    else:
        assert proc.returncode != 0, f"{block.id} should fail with {block.raises!r}:\n{output}"
        assert block.raises in output, output
