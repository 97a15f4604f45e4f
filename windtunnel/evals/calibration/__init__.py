"""Calibration: a simulated tier's profile measured from recorded runs (live, replayed or simulated).

`calibrate` reads one config's runs in a results directory, fits every parameter of a
:class:`~windtunnel.simulators.TierProfile` in the family the simulated model draws
it from, and keeps (with a warning) what the data cannot identify.
"""

from .fit import MIN_RUNS, Calibration, ParameterFit, calibrate
from .observe import Observations, observe

__all__ = ["MIN_RUNS", "Calibration", "Observations", "ParameterFit", "calibrate", "observe"]
