"""One torch thread in the pearl tests: the models are tiny and the CI machine has two shared cores."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
