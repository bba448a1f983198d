"""Import torch + open_clip for the fixture scripts, tolerating a torchvision without usable ops.

The only torchvision wheel on some offline mirrors is the CUDA build, whose compiled ops cannot
load next to a CPU torch; photosearch.models.export works around it (see there).
"""

from __future__ import annotations

from photosearch.models.export import _require_torch

torch, open_clip = _require_torch()
