"""Coverage tables (schema `coverage`). Filled in by the coverage issue."""

from __future__ import annotations
