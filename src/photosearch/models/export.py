"""Export an open_clip model to the immich model layout (needs the optional `[export]` extra).

Same files as immich's exporter (`config.json`, `visual/`, `textual/` with a `save_pretrained`
tokenizer), but with a dynamic batch axis on both towers, and for causal CLIP text towers also a
dynamic sequence axis: a 5-token query then costs 5 positions instead of 77 (same embedding,
because the causal mask means padding after the end token never influences it).
torch and open_clip are imported lazily so the rest of photosearch never needs them.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

from photosearch.models.errors import ModelError


def _require_torch() -> tuple[Any, Any]:
    try:
        import torch
    except ImportError as exc:
        raise ModelError(
            f"model export needs torch and open_clip ({exc.name} is not installed): pip install 'photosearch[export]'"
        ) from exc
    try:
        import open_clip
    except ImportError as exc:
        raise ModelError(
            f"model export needs open_clip ({exc.name} is not installed): pip install 'photosearch[export]'"
        ) from exc
    except RuntimeError as exc:
        if "torchvision" not in str(exc):
            raise
        open_clip = _import_open_clip_without_torchvision_ops()
    return torch, open_clip


def _import_open_clip_without_torchvision_ops():
    """A torchvision whose compiled ops do not match torch (e.g. a CUDA build next to a CPU torch)
    fails at import while registering fake kernels for detection ops CLIP never uses: skip those."""
    import sys

    import torch.library

    register_fake = torch.library.register_fake

    def tolerant(op, *args, **kwargs):
        if isinstance(op, str) and op.startswith("torchvision::"):
            return lambda fn: fn
        return register_fake(op, *args, **kwargs)

    torch.library.register_fake = tolerant
    for mod in [m for m in sys.modules if m.split(".")[0] in ("torchvision", "open_clip")]:
        del sys.modules[mod]
    import open_clip

    return open_clip


def create_open_clip(name: str, pretrained: str | None = None, model_cfg: dict | None = None, seed: int = 0):
    """An open_clip model in eval mode; `model_cfg` registers a custom architecture under `name`."""
    torch, open_clip = _require_torch()
    if model_cfg is not None:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / f"{name}.json").write_text(json.dumps(model_cfg))
            open_clip.add_model_config(tmp)
    torch.manual_seed(seed)
    try:
        model = open_clip.create_model(name, pretrained=pretrained or None)
    except Exception as exc:  # noqa: BLE001 - unknown name, weights not downloadable, bad checkpoint
        raise ModelError(f"cannot create open_clip model {name!r} (pretrained={pretrained!r}): {exc}") from exc
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


CLIP_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
SOT, EOT = "<|startoftext|>", "<|endoftext|>"


def write_clip_bpe_tokenizer(textual_dir: Path, context_length: int = 77) -> None:
    """Write the OpenAI CLIP BPE tokenizer exactly as `save_pretrained` of `openai/clip-vit-base-patch32`
    lays it out, built offline from the vocabulary open_clip ships (same ids as open_clip's tokenizer)."""
    from open_clip.tokenizer import bytes_to_unicode, default_bpe
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges] + [SOT, EOT]
    ids = {t: i for i, t in enumerate(vocab)}
    tok = Tokenizer(
        models.BPE(
            vocab=ids,
            merges=[tuple(m.split()) for m in merges],
            unk_token=EOT,
            continuing_subword_prefix="",
            end_of_word_suffix="</w>",
            fuse_unk=False,
        )
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(
        (EOT, ids[EOT]), (SOT, ids[SOT]), trim_offsets=False, add_prefix_space=False
    )
    tok.add_special_tokens([SOT, EOT])
    textual_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(textual_dir / "tokenizer.json"), pretty=False)
    (textual_dir / "vocab.json").write_text(json.dumps(ids, ensure_ascii=False))
    (textual_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    special = {"bos_token": SOT, "eos_token": EOT, "pad_token": EOT, "unk_token": EOT}
    (textual_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    cfg = {
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": True,
        "do_lower_case": True,
        "errors": "replace",
        "model_max_length": context_length,
        "tokenizer_class": "CLIPTokenizer",
        **special,
    }
    (textual_dir / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")


def save_tokenizer(text_cfg: dict, textual_dir: Path) -> None:
    name = text_cfg.get("hf_tokenizer_name")
    if not name:
        write_clip_bpe_tokenizer(textual_dir, text_cfg.get("context_length", 77))
        return
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name)
    except OSError as exc:
        raise ModelError(f"cannot fetch the tokenizer {name!r} from Hugging Face: {exc}") from exc
    tok.save_pretrained(textual_dir)


def _dynamic_text_ok(model) -> bool:
    """Trimming padding is exact only for causal, argmax-pooled CLIP text towers."""
    import open_clip

    return (
        type(model) is open_clip.CLIP
        and getattr(model, "text_pool_type", "argmax") == "argmax"
        and getattr(model, "attn_mask", None) is not None
    )


def _towers(model, dynamic_text: bool):
    torch, _ = _require_torch()
    import torch.nn.functional as F

    class Visual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, image):
            return self.m.encode_image(image, normalize=True)

    class Textual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, text):
            if not dynamic_text:
                return self.m.encode_text(text, normalize=True)
            m, n = self.m, text.shape[1]
            x = m.token_embedding(text)
            x = x + m.positional_embedding[:n]
            x = m.transformer(x, attn_mask=m.attn_mask[:n, :n])
            x = m.ln_final(x)
            x = x[torch.arange(x.shape[0]), text.argmax(dim=-1)]
            x = m.text_projection(x) if isinstance(m.text_projection, torch.nn.Linear) else x @ m.text_projection
            return F.normalize(x, dim=-1)

    return Visual().eval(), Textual().eval()


def export_towers(
    model, out_dir: Path, image_size: int, context_length: int, *, dynamic: bool = True, opset: int = 17
) -> None:
    """Write visual/model.onnx and textual/model.onnx (inputs `image`/`text`, output `embedding`)."""
    torch, _ = _require_torch()
    import warnings

    torch.backends.mha.set_fastpath_enabled(False)
    dynamic_text = dynamic and _dynamic_text_ok(model)
    visual, textual = _towers(model, dynamic_text)
    (out_dir / "visual").mkdir(parents=True, exist_ok=True)
    (out_dir / "textual").mkdir(parents=True, exist_ok=True)
    image = torch.randn(2 if dynamic else 1, 3, image_size, image_size)
    text = torch.ones(2 if dynamic else 1, context_length, dtype=torch.int32)
    img_axes = {"image": {0: "batch"}, "embedding": {0: "batch"}} if dynamic else None
    txt_axes = None
    if dynamic:
        txt_axes = {"text": {0: "batch", 1: "tokens"} if dynamic_text else {0: "batch"}, "embedding": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            visual, (image,), str(out_dir / "visual" / "model.onnx"), input_names=["image"],
            output_names=["embedding"], opset_version=opset, dynamic_axes=img_axes, dynamo=False,
        )  # fmt: skip
        text_path = out_dir / "textual" / "model.onnx"
        if dynamic_text:
            # the TorchScript exporter bakes the traced sequence length into attention reshapes;
            # torch.export keeps it symbolic
            tokens = torch.export.Dim("tokens", min=2, max=context_length)
            batch = torch.export.Dim("batch", min=1, max=4096)
            torch.onnx.export(
                textual, (text,), str(text_path), input_names=["text"], output_names=["text_embedding"],
                opset_version=18, dynamic_shapes=({0: batch, 1: tokens},), dynamo=True, external_data=False,
            )  # fmt: skip
            _rename_output(text_path, "text_embedding", "embedding")
        else:
            torch.onnx.export(
                textual, (text,), str(text_path), input_names=["text"], output_names=["embedding"],
                opset_version=opset, dynamic_axes=txt_axes, dynamo=False,
            )  # fmt: skip


def _rename_output(path: Path, old: str, new: str) -> None:
    """Rename a graph output (torch.export may already use `new` for an internal value), and drop
    the per-node stack traces torch.export records (absolute paths; they make builds unreproducible)."""
    import onnx

    m = onnx.load(str(path))

    def rename(name: str) -> str:
        return f"{new}__internal" if name == new else (new if name == old else name)

    for node in m.graph.node:
        del node.metadata_props[:]
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for coll in (m.graph.input, m.graph.output, m.graph.value_info):
        for v in coll:
            v.name = rename(v.name)
    for init in m.graph.initializer:
        init.name = rename(init.name)
    onnx.save(m, str(path))


def export_model(
    name: str,
    out_dir: Path,
    *,
    pretrained: str | None = None,
    model_cfg: dict | None = None,
    dynamic: bool = True,
    seed: int = 0,
    model=None,
) -> Path:
    """Export `name` (open_clip architecture, optional pretrained tag) to `out_dir` in the immich layout."""
    _, open_clip = _require_torch()
    if model is None:
        model = create_open_clip(name, pretrained, model_cfg, seed)
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ModelError(f"unknown open_clip model {name!r}; see open_clip.list_models()")
    out_dir = Path(out_dir)
    (out_dir / "visual").mkdir(parents=True, exist_ok=True)
    (out_dir / "textual").mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    pre = open_clip.get_model_preprocess_cfg(model)
    (out_dir / "visual" / "preprocess_cfg.json").write_text(json.dumps(pre, indent=2) + "\n")
    save_tokenizer(cfg["text_cfg"], out_dir / "textual")
    size = pre["size"][0] if isinstance(pre["size"], list | tuple) else pre["size"]
    export_towers(model, out_dir, int(size), int(cfg["text_cfg"].get("context_length", 77)), dynamic=dynamic)
    return out_dir
