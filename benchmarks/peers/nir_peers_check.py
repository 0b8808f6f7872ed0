"""The check of the NIR importers' venv (setup_nir_peers.sh): each imports, torch is CPU."""

from importlib.metadata import version

import nir  # noqa: F401
import norse.torch  # noqa: F401
import sinabs.nir  # noqa: F401
import snntorch.import_nir  # noqa: F401
import torch

assert torch.__version__.startswith('2.13.0'), torch.__version__
assert not torch.cuda.is_available() or torch.version.cuda is None, torch.version.cuda
print(f"setup_nir_peers.sh: torch {torch.__version__}, nir {version('nir')}, "
      f"snntorch {version('snntorch')}, sinabs {version('sinabs')}, norse {version('norse')}")
