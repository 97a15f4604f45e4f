"""A :class:`~windtunnel.simulators.TierProfile` as a file: JSON (``.json``) or YAML (``.yaml``, ``.yml``).

The file holds the profile's fields and nothing else, so that what ``windtunnel
calibrate`` writes is what a config takes: ``Config(profile="calibrated.json")``,
``{name = "cal", profile = "calibrated.json"}`` under ``[tool.windtunnel]``, or
``windtunnel run --config calibrated.json``.

Example:
    >>> import tempfile
    >>> from windtunnel.simulators import DEFAULT_TIERS
    >>> path = write_profile(DEFAULT_TIERS["mid"], Path(tempfile.mkdtemp()) / "mid.json")
    >>> read_profile(path) == DEFAULT_TIERS["mid"]
    True
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from windtunnel.orchestrator import InvalidArgument
from windtunnel.simulators import TierProfile

__all__ = ["PROFILE_SUFFIXES", "is_profile_file", "read_profile", "write_profile"]

PROFILE_SUFFIXES = (".json", ".yaml", ".yml")
"""The suffixes a profile file may have; the suffix says the format."""


def is_profile_file(name: str | Path) -> bool:
    """Whether ``name`` reads as a profile file's path (by its suffix), not a tier or ladder spec."""
    return Path(name).suffix.lower() in PROFILE_SUFFIXES


def read_profile(path: str | Path) -> TierProfile:
    """The profile in ``path``, validated.

    Raises:
        InvalidArgument: the file is missing or unreadable, has another suffix, is not
            JSON/YAML, or is not a valid profile (naming the first bad field).
    """
    file = Path(path)
    _check_suffix(file)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"profile {str(file)!r}: cannot read it: {exc.strerror or exc}") from None
    try:
        data: Any = json.loads(text) if file.suffix.lower() == ".json" else YAML(typ="safe").load(text)
    except (ValueError, YAMLError) as exc:
        raise InvalidArgument(f"profile {str(file)!r}: not valid {file.suffix[1:].upper()}: {exc}") from None
    try:
        return TierProfile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(the whole file)"
        raise InvalidArgument(f"profile {str(file)!r}: {where}: {first['msg']}") from None


def write_profile(profile: TierProfile, path: str | Path) -> Path:
    """Write ``profile`` to ``path`` (JSON or YAML by its suffix), creating its folder; returns the path.

    Raises:
        InvalidArgument: ``path`` has another suffix.
    """
    file = Path(path)
    _check_suffix(file)
    data = profile.model_dump(mode="json")
    if file.suffix.lower() == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        buffer = io.StringIO()
        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
        yaml.dump(data, buffer)
        text = buffer.getvalue()
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text, encoding="utf-8")
    return file


def _check_suffix(file: Path) -> None:
    if not is_profile_file(file):
        raise InvalidArgument(
            f"profile {str(file)!r}: name it with one of {list(PROFILE_SUFFIXES)}; the suffix says the format"
        )
