"""One typed settings object: environment variables first, then `st.secrets`-style values.

The app hands in its secrets mapping (`load_settings(secrets=st.secrets)`); this module
never imports Streamlit. Every value is validated once at start-up, and a bad one raises
`SettingsError` naming the setting.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from lora_core.data.db import DatabaseTarget
from lora_core.data.turso import REMOTE_SCHEMES, is_remote_url
from lora_core.errors import SettingsError

APP_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = f"sqlite:///{APP_ROOT / 'data' / 'lora_studio.db'}"
# Streamlit serves `<app root>/static/` at `app/static/` when static serving is on.
DEFAULT_MEDIA_DIR = APP_ROOT / "static" / "media"
DEFAULT_MEDIA_URL_PREFIX = "app/static/media"


class Settings(BaseSettings):
    """Field names are the setting names, matched case-insensitively in the environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: str = Field(DEFAULT_DATABASE_URL, min_length=1)
    # Turso's own names, as the original app reads them; when set they win over DATABASE_URL.
    turso_database_url: str | None = None
    turso_auth_token: SecretStr | None = None
    # Optional: read through an embedded replica file synced from the Turso server.
    turso_replica_path: str | None = None
    fal_key: SecretStr | None = None
    # fal's other form of credentials (as fal_client reads them): a key id and its secret.
    fal_key_id: SecretStr | None = None
    fal_key_secret: SecretStr | None = None
    generation_limit: int = Field(8, ge=1)
    # fal's published price of fal-ai/flux-lora, in US dollars per output megapixel
    # (fal.ai's model page, read 2026-12-01): spend figures are estimates from it.
    fal_price_per_megapixel: float = Field(0.035, ge=0)
    generation_window_hours: float = Field(24, gt=0)
    # X/Y sweeps (`lora_core.lab`): at most this many cells (images) per sweep, and this
    # many fal calls at once per app process (fal limits concurrent requests per account).
    sweep_max_cells: int = Field(16, ge=1, le=64)
    sweep_concurrency: int = Field(4, ge=1, le=16)
    # How many LoRAs the Generate dialog may add to the one it is opened for (fal's
    # `loras` list merges them all).
    max_stacked_loras: int = Field(3, ge=0, le=8)
    # Training costs far more than generating: its own, smaller allowance.
    training_limit: int = Field(2, ge=1)
    training_window_hours: float = Field(24, gt=0)
    # Registering a LoRA checks its weights URL from the server: never a private address
    # (cloud metadata, localhost) unless the weights really live on such a network.
    allow_private_weights_urls: bool = False
    exempt_users: Annotated[frozenset[str], NoDecode] = frozenset()
    admin_users: Annotated[frozenset[str], NoDecode] = frozenset()
    require_login: bool = False
    local_user: str = Field("guest", min_length=1)
    media_dir: Path = DEFAULT_MEDIA_DIR
    media_url_prefix: str = DEFAULT_MEDIA_URL_PREFIX
    fal_timeout_seconds: float = Field(180, gt=0)
    # How long a job fal accepted is followed when fal gives no answer about it at all:
    # fal keeps a request for at most this long (payload storage: 30 days), and says "not
    # found" itself once it has forgotten one; this only bounds an fal that never answers.
    fal_follow_hours: float = Field(720, gt=0)
    # How often each app process follows fal's jobs nobody waits on (batches whose wait ran
    # out or whose process died, every training) and settles what never reached fal;
    # 0: only at start and when a page that shows them is opened.
    recovery_sweep_seconds: float = Field(5, ge=0)
    storage_backend: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_public_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_prefix: str = "media"
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the secrets file handed in as init values.
        return (env_settings, init_settings)

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, value: str) -> str:
        try:
            dialect = make_url(value).get_dialect()
        except NoSuchModuleError:  # before ArgumentError, its base class
            raise ValueError(f"no SQLAlchemy dialect for {value.split(':', 1)[0]!r}") from None
        except ArgumentError:
            raise ValueError("not a database URL, e.g. sqlite:///data/lora_studio.db") from None
        try:
            dialect.import_dbapi()
        except ImportError:
            raise ValueError(f"the database driver for {dialect.name!r} is not installed") from None
        return value

    @field_validator("turso_database_url")
    @classmethod
    def _libsql_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not is_remote_url(value):
            schemes = ", ".join(REMOTE_SCHEMES)
            raise ValueError(f"a libSQL server address starting with one of {schemes}")
        return value

    @field_validator("turso_replica_path")
    @classmethod
    def _replica_client_installed(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            import libsql  # noqa: F401
        except ImportError:
            raise ValueError(
                "an embedded replica needs the libsql package: pip install 'lora-studio[replica]'"
            ) from None
        return value.strip()

    @field_validator(
        "fal_key",
        "fal_key_id",
        "fal_key_secret",
        "turso_database_url",
        "turso_auth_token",
        "turso_replica_path",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("exempt_users", "admin_users", mode="before")
    @classmethod
    def _split_identities(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("media_url_prefix")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        return value.strip("/")

    @model_validator(mode="after")
    def _replica_needs_a_server(self) -> Settings:
        if self.turso_replica_path and not self.turso_database_url:
            raise ValueError("TURSO_REPLICA_PATH needs TURSO_DATABASE_URL, the server it copies")
        return self

    @model_validator(mode="after")
    def _key_id_needs_its_secret(self) -> Settings:
        if (self.fal_key_id is None) != (self.fal_key_secret is None):
            raise ValueError("FAL_KEY_ID and FAL_KEY_SECRET go together: set both, or FAL_KEY")
        return self

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> Settings:
        if self.storage_backend == "s3":
            for name in ("s3_bucket", "s3_public_url"):
                if not getattr(self, name):
                    raise ValueError(f"{name.upper()} is required when STORAGE_BACKEND is s3")
        return self

    @property
    def database(self) -> DatabaseTarget:
        """The database in use: the Turso server when `TURSO_DATABASE_URL` is set."""
        if self.turso_database_url:
            token = self.turso_auth_token.get_secret_value() if self.turso_auth_token else None
            return DatabaseTarget(
                self.turso_database_url, auth_token=token, replica_path=self.turso_replica_path
            )
        return DatabaseTarget(self.database_url)

    @property
    def uses_embedded_database(self) -> bool:
        """Nothing configured: the SQLite file in the app's own folder (`data/`)."""
        return self.database.url == DEFAULT_DATABASE_URL

    @property
    def generation_window(self) -> timedelta:
        return timedelta(hours=self.generation_window_hours)

    @property
    def training_window(self) -> timedelta:
        return timedelta(hours=self.training_window_hours)

    @property
    def fal_credentials(self) -> str | None:
        """The key fal accepts: `FAL_KEY`, or `FAL_KEY_ID` and `FAL_KEY_SECRET` joined as
        fal_client joins them (`auth._resolve_env_or_colab_auth`); None without either."""
        if self.fal_key is not None:
            return self.fal_key.get_secret_value()
        if self.fal_key_id is not None and self.fal_key_secret is not None:
            return f"{self.fal_key_id.get_secret_value()}:{self.fal_key_secret.get_secret_value()}"
        return None

    @property
    def preview_mode(self) -> bool:
        """No fal credentials: images come from the offline preview generator."""
        return self.fal_credentials is None


def read_secrets_file(path: Path = APP_ROOT / ".streamlit" / "secrets.toml") -> dict[str, Any]:
    """The app's secrets file as a mapping, for code that runs outside Streamlit."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"Invalid secrets file {path}: {error}") from None


def load_settings(secrets: Mapping[str, Any] | None = None) -> Settings:
    """Read settings from the environment, falling back to `secrets` (same names)."""
    known = set(Settings.model_fields)
    fallback = {
        name.lower(): value
        for name, value in (secrets or {}).items()
        if name.lower() in known and not isinstance(value, Mapping)
    }
    try:
        return Settings(**fallback)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        # A rule across settings (no single field) names them in its own message.
        message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{str(item['loc'][0]).upper()}: {message}" if item["loc"] else message)
    return "Invalid setting " + "; ".join(problems)
