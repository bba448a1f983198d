"""`photosearch models ...`: install, inspect and switch CLIP models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from photosearch.cli._common import CliError, console, output, state
from photosearch.config import DEFAULT_MODEL

models_app = typer.Typer(help="CLIP models: download, import, inspect, switch, export.", no_args_is_help=True)


@models_app.command("list")
def list_cmd(ctx: typer.Context) -> None:
    """Installed models (the active one marked)."""
    from photosearch.models.registry import list_models

    st = state(ctx)
    rows = list_models(st.settings)
    output(st, rows, columns=["name", "active", "embed_dim", "languages", "size", "status", "source"], title="models")


@models_app.command("download")
def download_cmd(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help=f"Model name (default: {DEFAULT_MODEL}).")] = None,
    repo: Annotated[str | None, typer.Option(help="Hugging Face repo (default immich-app/NAME).")] = None,
    revision: Annotated[str | None, typer.Option(help="Branch, tag or commit.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an installed copy.")] = False,
) -> None:
    """Download an immich-format model from Hugging Face into the model cache."""
    from photosearch.models.layout import missing_files
    from photosearch.models.registry import download_model, model_path

    st = state(ctx)
    name = name or DEFAULT_MODEL
    dest = model_path(st.settings, name)
    if dest.is_dir() and not missing_files(dest) and not force:
        if not st.json:
            console.print(f"model [bold]{name}[/bold] is already installed in {dest} (--force to fetch again)")
            return
    path = download_model(st.settings, name, repo=repo, revision=revision, force=force, progress=not st.json)
    _done(st, name, path)


@models_app.command("import")
def import_cmd(
    ctx: typer.Context,
    src: Annotated[Path, typer.Argument(help="A model folder in the immich layout.")],
    name: Annotated[str | None, typer.Option(help="Install under this name (default: folder name).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an installed copy.")] = False,
) -> None:
    """Check a model folder (files present, ONNX loads) and copy it into the model cache."""
    from photosearch.models.registry import import_model

    st = state(ctx)
    path = import_model(st.settings, src, name=name, force=force)
    _done(st, path.name, path)


@models_app.command("info")
def info_cmd(
    ctx: typer.Context, name: Annotated[str | None, typer.Argument(help="Model (default: active).")] = None
) -> None:
    """Dimensions, context length and batch axes, read from the model's own files."""
    from photosearch.models.registry import model_info

    st = state(ctx)
    output(st, model_info(st.settings, name), title=name or st.settings.model_name)


@models_app.command("use")
def use_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Installed model to make active.")],
    reembed: Annotated[
        bool, typer.Option("--reembed", help="Drop embeddings of the old model and re-embed every photo.")
    ] = False,
) -> None:
    """Make NAME the active model (database column and settings file)."""
    from photosearch.config import default_config_file
    from photosearch.db.embedding import ensure_embedding_model
    from photosearch.models.registry import model_info, save_active_model

    st = state(ctx)
    info = model_info(st.settings, name)
    switched = ensure_embedding_model(st.db(), name, int(info["embed_dim"]), reembed=reembed)
    cfg = default_config_file()
    save_active_model(cfg, name)
    env = os.environ.get("PHOTOSEARCH_MODEL_NAME")
    result = {"model": name, "embed_dim": info["embed_dim"], "switched": switched, "config": str(cfg)}
    if st.json:
        output(st, result)
        return
    msg = "switched to" if switched else "already using"
    console.print(f"{msg} [bold]{name}[/bold] ({info['embed_dim']}-d); saved in {cfg}")
    if switched and reembed:
        console.print("every photo is marked for re-embedding: run the indexer to rebuild embeddings")
    if env and env != name:
        console.print(f"[yellow]note:[/yellow] PHOTOSEARCH_MODEL_NAME={env} overrides the settings file")


@models_app.command("quantize")
def quantize_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Installed model to copy with int8 weights.")],
    as_name: Annotated[str | None, typer.Option("--name", help="Install the copy as (default NAME-int8).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an installed copy.")] = False,
) -> None:
    """Install an int8 copy of a model and print how closely it agrees with the original (opt-in)."""
    from photosearch.models.quantize import quantize_model

    st = state(ctx)
    path, agree = quantize_model(st.settings, name, as_name, force=force)
    if st.json:
        output(st, {"model": path.name, "path": str(path), **agree})
        return
    console.print(
        f"model [bold]{path.name}[/bold] installed in {path}; agreement with {name}: cosine "
        f"text min {agree['text_cosine_min']:.4f} mean {agree['text_cosine_mean']:.4f}, "
        f"images min {agree['image_cosine_min']:.4f} mean {agree['image_cosine_mean']:.4f}"
    )
    console.print(f"nothing uses it yet: `photosearch models use {path.name} --reembed` switches to it")


@models_app.command("export")
def export_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="open_clip model, e.g. ViT-B-32__openai (ARCH__PRETRAINED).")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the model cache).")] = None,
    fixed_batch: Annotated[
        bool, typer.Option("--fixed-batch", help="Batch size 1 and full-length text, like immich's exports.")
    ] = False,
) -> None:
    """Export open_clip weights to the immich layout (needs `pip install 'photosearch[export]'`)."""
    from photosearch.models.export import export_model

    st = state(ctx)
    arch, _, pretrained = name.partition("__")
    if not arch:
        raise CliError("give a model as ARCH or ARCH__PRETRAINED, e.g. ViT-B-32__openai")
    dest = out or (st.settings.model_cache_dir / name)
    if dest.exists() and any(dest.iterdir()):
        raise CliError(f"{dest} exists and is not empty")
    path = export_model(arch, dest, pretrained=pretrained or None, dynamic=not fixed_batch)
    _done(st, name, path)


def _done(st, name: str, path: Path) -> None:
    if st.json:
        output(st, {"model": name, "path": str(path)})
    else:
        console.print(f"model [bold]{name}[/bold] installed in {path}")
