"""TODO: datapool routes."""

from __future__ import annotations

from sandbox.http import Op

ROUTES: list[Op] = []
