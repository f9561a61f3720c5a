"""Conditional simulation: sequential Gaussian simulation of point data onto grids.

Public API::

    from gcnn_rnn.core.simulation import SimulationConfig, SimulationResult, simulate_grid
"""

from __future__ import annotations

from .sgs import SimulationConfig, SimulationResult, practical_range, simulate_grid

__all__ = ["SimulationConfig", "SimulationResult", "practical_range", "simulate_grid"]
