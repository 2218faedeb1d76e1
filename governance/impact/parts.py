"""Every part of an impact preview, in the order a preview shows them (governance/impact/engine.py)."""

from governance.impact.declarations import DeclarationPart
from governance.impact.engine import CapabilityPart, Part
from governance.impact.runs import RunsPart

PARTS: list[Part] = [
    CapabilityPart(),
    DeclarationPart(),
    RunsPart(),
]
