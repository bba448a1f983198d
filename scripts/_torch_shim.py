"""Let open_clip import when the installed torchvision has no usable compiled ops.

The only torchvision wheel on some offline mirrors is the CUDA build, whose `_C` extension cannot
load next to a CPU torch; torchvision then fails at import while registering fake kernels for ops
(nms, roi_align...) that CLIP never uses. Skipping those registrations is harmless for export.
"""

from __future__ import annotations

import torch
import torch.library

_register_fake = torch.library.register_fake


def _tolerant_register_fake(op, *args, **kwargs):
    if isinstance(op, str) and op.startswith("torchvision::"):
        return lambda fn: fn
    return _register_fake(op, *args, **kwargs)


torch.library.register_fake = _tolerant_register_fake
