"""Runtime behaviour of the engine: lazy sessions, batching, text cache, decoding, draft mode."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from photosearch.config import Settings
from photosearch.models import ClipModel, Preprocessor, load_clip


def test_load_clip_from_settings_is_lazy(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, models_dir=tiny_model_dir.parent, model_name=tiny_model_dir.name, threads=2)
    model = load_clip(settings)
    assert model.name == "tiny-clip"
    assert model.embed_dim == 32 and model.context_length == 77 and model.image_size == 224
    assert not model.visual.loaded and not model.textual.loaded
    model.encode_text("a dog")
    assert model.textual.loaded and not model.visual.loaded
    assert model.textual.session.get_session_options().intra_op_num_threads == 2


def test_batched_equals_one_by_one(tiny_clip: ClipModel, photos_dir: Path) -> None:
    paths = sorted((photos_dir / "albums" / "nature").glob("*.jpg"))[:5]
    batch = tiny_clip.encode_images(paths)
    single = np.concatenate([tiny_clip.encode_images([p]) for p in paths])
    assert batch.shape == (5, 32) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_fixed_batch_model_handles_any_batch(tiny_clip: ClipModel, tiny_clip_b1_dir: Path, photos_dir) -> None:
    """The model files as they are (what runs when no derived graph passes its check)."""
    tiny_clip_b1 = ClipModel(tiny_clip_b1_dir, threads=2, derive_graphs=False)
    pre = tiny_clip.preprocessor
    pixels = np.stack([pre(pre.load_image(p)) for p in sorted((photos_dir / "albums/nature").glob("*.jpg"))[:3]])
    assert tiny_clip_b1.visual.fixed_batch == 1 and tiny_clip.visual.fixed_batch is None
    np.testing.assert_allclose(tiny_clip_b1.encode_pixels(pixels), tiny_clip.encode_pixels(pixels), atol=1e-5)
    # image batches run as single-threaded inferences side by side (one image each for batch-1 models)
    for model in (tiny_clip, tiny_clip_b1):
        assert model.visual.concurrent_runs == 2
        assert model.visual.session.get_session_options().intra_op_num_threads == 1
    assert tiny_clip.encode_pixels(pixels[:0]).shape == (0, 32)


def test_trimmed_text_equals_full_context(tiny_clip: ClipModel) -> None:
    """The dynamic token axis lets short queries skip the padding; the embedding must not change."""
    texts = ["a dog", "a red mushroom in green moss", ""]
    ids = tiny_clip.tokenizer(texts)
    full = tiny_clip.textual.run(ids)  # all 77 positions
    np.testing.assert_allclose(tiny_clip.encode_texts(texts), full, atol=1e-5)


def test_text_cache_is_lru(tiny_model_dir: Path) -> None:
    model = ClipModel(tiny_model_dir, threads=1, text_cache_size=2)
    a = model.encode_text("a")
    assert model.encode_text("a") is a
    assert not a.flags.writeable  # cached arrays cannot be mutated by callers
    model.encode_text("b")
    model.encode_text("a")  # refresh "a": "b" is now the oldest
    model.encode_text("c")
    assert list(model._text_cache) == ["a", "c"]
    np.testing.assert_allclose(model.encode_text("b"), model.encode_texts(["b"])[0], atol=1e-6)


def test_load_image_sources_and_orientation(tiny_clip: ClipModel, photos_dir: Path) -> None:
    pre = tiny_clip.preprocessor
    rotated = photos_dir / "metadata/faces/portrait-orientation-6.jpg"
    raw = Image.open(rotated)
    img = pre.load_image(rotated)
    assert img.mode == "RGB"
    assert img.size == (raw.size[1], raw.size[0])  # EXIF orientation 6 = rotate 90 degrees
    from_bytes = pre.load_image(rotated.read_bytes())
    from_pil = pre.load_image(Image.open(rotated))
    assert np.array_equal(np.asarray(from_bytes), np.asarray(img))
    assert np.array_equal(np.asarray(from_pil), np.asarray(img))


def test_alpha_and_palette_images(tiny_clip: ClipModel, tmp_path: Path) -> None:
    """RGBA/LA/P decode to RGB like PIL's convert("RGB") (the reference drops alpha)."""
    pre = tiny_clip.preprocessor
    rgba = Image.new("RGBA", (300, 200), (200, 30, 40, 0))
    path = tmp_path / "a.png"
    rgba.save(path)
    img = pre.load_image(path)
    assert img.mode == "RGB" and img.getpixel((5, 5)) == (200, 30, 40)
    for mode in ("LA", "P", "L", "CMYK", "I;16"):
        x = pre(pre.load_image(rgba.convert(mode) if mode != "I;16" else Image.new("I;16", (50, 80), 1000)))
        assert x.shape == (3, 224, 224) and np.isfinite(x).all()


def test_draft_decode_keeps_embeddings(tiny_clip: ClipModel) -> None:
    """A 12 MP JPEG decoded in draft mode (DCT downscale) embeds like the full decode."""
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    buf = io.BytesIO()
    small.resize((4000, 3000), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    pre = tiny_clip.preprocessor
    full = pre.load_image(data)
    draft = pre.load_image(data, draft_to=pre.draft_size)
    assert full.size == (4000, 3000)
    assert min(draft.size) >= pre.draft_size and draft.size[0] < 4000
    a, b = pre(full), pre(draft)
    assert np.abs(a - b).mean() < 0.02
    ea, eb = tiny_clip.encode_pixels(np.stack([a, b]))
    assert float(ea @ eb) >= 0.9999


def test_preprocessor_is_picklable(tiny_clip: ClipModel, photos_dir: Path) -> None:
    pre = tiny_clip.preprocessor
    clone = pickle.loads(pickle.dumps(pre))
    assert isinstance(clone, Preprocessor) and clone.config == pre.config
    img = pre.load_image(photos_dir / "formats/webp/denali.webp")
    assert np.array_equal(clone(img), pre(img))


def test_concurrent_callers_get_consistent_results(tiny_model_dir: Path, photos_dir: Path) -> None:
    """The API serves requests from several threads with one model: sessions are created once."""
    from concurrent.futures import ThreadPoolExecutor

    model = ClipModel(tiny_model_dir, threads=2)
    paths = sorted((photos_dir / "albums" / "nature").glob("*.jpg"))[:4]
    with ThreadPoolExecutor(4) as pool:
        imgs = list(pool.map(lambda _: model.encode_images(paths), range(4)))
        txts = list(pool.map(lambda i: model.encode_text(f"query {i % 2}"), range(8)))
    for e in imgs[1:]:
        np.testing.assert_allclose(e, imgs[0], atol=1e-6)
    np.testing.assert_allclose(txts[0], txts[2], atol=1e-6)
    assert not np.allclose(txts[0], txts[1])
