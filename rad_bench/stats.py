"""Interval arithmetic shared by the video leaderboard and the MQAR calibration (torch-free)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # not scipy.stats: importing it probes for torch


def ci95(x: pd.Series) -> float:
    """Half-width of the 95% t-interval of the mean: ``t_{0.975, n-1} sd / sqrt(n)`` (NaN for n < 2)."""
    x = x.dropna()
    if len(x) < 2:
        return float("nan")
    return float(stdtrit(len(x) - 1, 0.975) * x.std(ddof=1) / np.sqrt(len(x)))
