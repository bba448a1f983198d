"""The CLIP embedding engine: immich-layout models on ONNX Runtime, no torch at run time."""

from photosearch.models.clip import ClipModel, load_clip
from photosearch.models.errors import ModelError
from photosearch.models.preprocess import Preprocessor

__all__ = ["ClipModel", "ModelError", "Preprocessor", "load_clip"]
