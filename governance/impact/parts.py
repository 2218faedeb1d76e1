"""Every part of an impact preview, in the order a preview shows them (governance/impact/engine.py)."""

from governance.impact.declarations import DeclarationPart
from governance.impact.engine import CapabilityPart, Part
from governance.impact.runs import RunsPart
from governance.impact.settings_part import SettingsPart

PARTS: list[Part] = [
    CapabilityPart(),
    DeclarationPart(),
    SettingsPart(),
    RunsPart(),
]
