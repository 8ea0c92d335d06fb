"""Where the server is and which token to use: flags, then environment, then the config file."""

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """The configuration is missing or unreadable (a usage error, exit code 2)."""


def config_path() -> Path:
    """``$BLOBFORGE_CONFIG``, else ``$XDG_CONFIG_HOME/blobforge/client.toml`` (``~/.config`` by default)."""
    if explicit := os.environ.get("BLOBFORGE_CONFIG"):
        return Path(explicit).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "blobforge" / "client.toml"


@dataclass(frozen=True)
class Config:
    server_url: str
    api_token: str


def load(server_url: str | None = None, api_token: str | None = None) -> Config:
    """Resolve the settings; raises ConfigError naming what is missing and where it was looked for."""
    path = config_path()
    file_values: dict = {}
    if path.is_file():
        try:
            file_values = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
    url = server_url or os.environ.get("BLOBFORGE_SERVER_URL") or file_values.get("server_url") or ""
    token = api_token or os.environ.get("BLOBFORGE_API_TOKEN") or file_values.get("api_token") or ""
    if not url:
        raise ConfigError(f"no server: set BLOBFORGE_SERVER_URL, pass --server or put server_url in {path}")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"server URL must start with http:// or https:// (got {url!r})")
    if not token:
        raise ConfigError(f"no API token: set BLOBFORGE_API_TOKEN, pass --token or put api_token in {path}")
    return Config(url.rstrip("/"), token)
