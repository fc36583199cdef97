"""The distances vsim reports, for your own arrays: the same code as ``vsim eval``.

>>> from vsim import stats
>>> stats.ks([0.1, 0.5, 1.0], [0.0, 0.2, 0.3])
KsResult(statistic=..., pvalue=..., method='exact')
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

from . import _vsim

__all__ = ["KsResult", "jensen_shannon", "ks", "l1", "l1_density_pfg", "l1_histogram", "l1_paired", "total_variation", "wasserstein1"]


class KsResult(NamedTuple):
    """A two-sample Kolmogorov–Smirnov test."""

    statistic: float
    """D = sup |F_a − F_b|."""
    pvalue: float
    """Two-sided p-value (as SciPy's ``ks_2samp``)."""
    method: str
    """``exact`` or ``asymptotic``: the distribution actually used."""


def _floats(xs: Iterable[float]) -> list:
    return [float(x) for x in xs]


def ks(a: Iterable[float], b: Iterable[float], mode: str = "auto") -> KsResult:
    """Two-sample KS test; ``mode`` is ``auto`` (exact up to 10,000 values, as SciPy),
    ``exact`` or ``asymptotic``."""
    return KsResult(*_vsim.ks(_floats(a), _floats(b), mode))


def l1(a: Iterable[float], b: Iterable[float], kind: str = "paired", **bins: float) -> float:
    """The L1 distance ``vsim eval`` reports under ``kind``: ``paired`` (mean absolute
    difference of each simulated person and the same person's real value; :func:`l1_paired`),
    ``density`` (PersuasionForGood's 20 bins over [0, 2]; :func:`l1_density_pfg`) or
    ``histogram`` (``lo``, ``hi``, ``bins`` given; :func:`l1_histogram`)."""
    if kind == "paired":
        return l1_paired(a, b)
    if kind == "density":
        return l1_density_pfg(a, b)
    if kind == "histogram":
        return l1_histogram(a, b, **bins)  # type: ignore[arg-type]
    raise _vsim.InputError(f"kind must be paired, density or histogram, got {kind!r}")


def l1_paired(simulated: Iterable[float], human: Iterable[float]) -> float:
    """Mean absolute difference of paired values: each simulated person against the same
    person's real answer (equal lengths, same order)."""
    return _vsim.l1_paired(_floats(simulated), _floats(human))


def l1_histogram(a: Iterable[float], b: Iterable[float], lo: float, hi: float, bins: int = 10) -> float:
    """L1 distance between the proportions of two samples in ``bins`` equal bins of
    [lo, hi] (edges as ``numpy.linspace``)."""
    return _vsim.l1_histogram(_floats(a), _floats(b), float(lo), float(hi), int(bins))


def l1_density_pfg(a: Iterable[float], b: Iterable[float]) -> float:
    """The PersuasionForGood donation-density L1: 20 bins of $0.10 over [0, 2]."""
    return _vsim.l1_density_pfg(_floats(a), _floats(b))


def wasserstein1(a: Iterable[float], b: Iterable[float]) -> float:
    """Wasserstein-1 (earth mover's) distance of two samples."""
    return _vsim.wasserstein1(_floats(a), _floats(b))


def total_variation(p: Iterable[float], q: Iterable[float]) -> float:
    """Total variation distance of two probability vectors over the same categories."""
    return _vsim.total_variation(_floats(p), _floats(q))


def jensen_shannon(p: Iterable[float], q: Iterable[float]) -> float:
    """Jensen–Shannon divergence of two probability vectors over the same categories."""
    return _vsim.jensen_shannon(_floats(p), _floats(q))
