"""The distances vsim reports, for your own arrays: the same code as ``vsim eval``.

Every distance of the library's registry is a function here, named by its key (as in
``metrics.json``), with the registry's help as its docstring; :data:`DISTANCES` lists them
and :func:`distance` computes any of them by key.

>>> from vsim import stats
>>> stats.ks([0.1, 0.5, 1.0], [0.0, 0.2, 0.3])
KsResult(statistic=..., pvalue=..., method='exact')
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterable, NamedTuple, Optional

from . import _vsim

DISTANCES: Dict[str, Dict[str, Any]] = {d["key"]: d for d in json.loads(_vsim.distances())}
"""The registry: key -> {key, command, symbol, about, help, inputs}."""

__all__ = ["DISTANCES", "KsResult", "distance", "l1", *DISTANCES]


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


def distance(
    key: str,
    a: Iterable[float],
    b: Iterable[float],
    lo: Optional[float] = None,
    hi: Optional[float] = None,
    bins: Optional[int] = None,
) -> float:
    """The registry's distance ``key`` (see :data:`DISTANCES`) of ``a`` and ``b``; a binned
    one takes ``lo``, ``hi`` and ``bins`` (a test gives its statistic)."""
    given = None if lo is None and hi is None else (float(lo or 0.0), float(hi or 0.0), int(bins or 10))
    return _vsim.distance(key, _floats(a), _floats(b), given)


def _doc(key: str) -> str:
    d = DISTANCES[key]
    return f"{d['about']}\n\n{d['help']}"


def ks(a: Iterable[float], b: Iterable[float], mode: str = "auto") -> KsResult:
    """Two-sample KS test; ``mode`` is ``auto`` (exact up to 10,000 values, as SciPy),
    ``exact`` or ``asymptotic``."""
    return KsResult(*_vsim.test("ks", _floats(a), _floats(b), mode))


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
    return distance("l1_paired", simulated, human)


def l1_histogram(a: Iterable[float], b: Iterable[float], lo: float, hi: float, bins: int = 10) -> float:
    return distance("l1_histogram", a, b, lo=lo, hi=hi, bins=bins)


def l1_density_pfg(a: Iterable[float], b: Iterable[float]) -> float:
    return distance("l1_density_pfg", a, b)


def wasserstein1(a: Iterable[float], b: Iterable[float]) -> float:
    return distance("wasserstein1", a, b)


def total_variation(p: Iterable[float], q: Iterable[float]) -> float:
    return distance("total_variation", p, q)


def jensen_shannon(p: Iterable[float], q: Iterable[float]) -> float:
    return distance("jensen_shannon", p, q)


def _of_key(key: str) -> Callable[..., float]:
    def f(a: Iterable[float], b: Iterable[float], **bins: float) -> float:
        return distance(key, a, b, **bins)  # type: ignore[arg-type]

    f.__name__ = f.__qualname__ = key
    return f


# Every registry entry is a function with the registry's help; those written out above keep
# their signatures.
for _key in DISTANCES:
    _f = globals().get(_key) or _of_key(_key)
    if _key != "ks":
        _f.__doc__ = _doc(_key)
    globals()[_key] = _f
del _key, _f
