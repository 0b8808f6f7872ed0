"""The check of the BindsNET venv (setup_bindsnet.sh): the pinned set imports, torch is CPU."""

from importlib.metadata import version

import llvmlite  # noqa: F401
import numba  # noqa: F401
import safetensors  # noqa: F401
import scipy  # noqa: F401
import torch
import yaml  # noqa: F401

assert torch.__version__.startswith('2.13.0'), torch.__version__
assert not torch.cuda.is_available() or torch.version.cuda is None, torch.version.cuda
print(f"setup_bindsnet.sh: torch {torch.__version__}, numba {version('numba')}, "
      f"bindsnet {version('bindsnet')}")
