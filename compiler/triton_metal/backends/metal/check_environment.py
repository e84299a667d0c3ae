"""``python -m triton_metal.backends.metal.check_environment [--json] [--report]``: the troubleshooting
guide's command (the code is triton_metal/tools/check_environment_cli.py).

Only a command. Python binds an imported submodule on its package, so importing this module would
replace the function ``triton_metal.backends.metal.check_environment`` by a module: it refuses instead.
"""
import sys

if __name__ != "__main__":
    raise ImportError("triton_metal.backends.metal.check_environment is a command: run it with "
                      "`python -m triton_metal.backends.metal.check_environment`; from Python call "
                      "`triton_metal.backends.metal.check_environment()` (or import main from "
                      "triton_metal.tools.check_environment_cli)")

from triton_metal.tools.check_environment_cli import main

sys.exit(main())
