"""One router per resource; `photosearch.api.app` mounts them all."""
