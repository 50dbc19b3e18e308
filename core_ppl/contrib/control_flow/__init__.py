"""Control flow primitives whose bodies may contain random sites."""

from core_ppl.contrib.control_flow.scan import scan

__all__ = ["scan"]
