"""An IM emulator: plays the Tencent IM backend against any callback receiver (docs/emulator.md).

Kept light: importing the package loads the emulator, never Flask.
"""

from .im import Emulator
from .report import ClientEvent, Exchange, Report, StepReport
from .scenario import Scenario, load_scenario, parse_scenario

__all__ = ["ClientEvent", "Emulator", "Exchange", "Report", "Scenario", "StepReport", "load_scenario",
           "parse_scenario"]
