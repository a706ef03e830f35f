"""Where image bytes we produce ourselves live, and the URL that serves them.

The default is a folder under Streamlit's static directory, so every stored image has a
URL that opens in a new browser tab (`app/static/media/...`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalMediaStore:
    root: Path
    url_prefix: str

    def save(self, relative_path: str, data: bytes) -> str:
        """Write `data` under the store and return the URL that serves it."""
        target = (self.root / relative_path).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise ValueError(f"path escapes the media folder: {relative_path}")
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(target.suffix + ".part")
        temporary.write_bytes(data)
        temporary.replace(target)
        return f"{self.url_prefix}/{relative_path}"

    def path_for(self, url: str) -> Path | None:
        """The file behind one of our URLs, or None for a URL we did not issue."""
        prefix = f"{self.url_prefix}/"
        if not url.startswith(prefix):
            return None
        return self.root / url.removeprefix(prefix)
