"""The package version (one home: pyproject.toml reads nothing from here; keep them equal)."""

__version__ = "0.1.0"
