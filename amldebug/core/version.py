"""amldebug's version (kept in one place below every layer that reports it)."""

__version__ = "0.1.0"
