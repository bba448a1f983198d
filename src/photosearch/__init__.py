"""photosearch: self-hosted semantic photo search."""

__version__ = "0.1.0"
