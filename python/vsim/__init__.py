"""vsim from Python: dialogue simulation with Verbalized Sampling, results as DataFrames.

Runs go through the same Rust engine as the ``vsim`` command line and write the same run
directory (``config.json``, ``transcripts.jsonl``, ``outcomes.csv``), so a run started here
can be resumed, evaluated or reported from either side.

>>> import vsim
>>> with vsim.MockServer() as mock:
...     run = vsim.run("scenarios/persuasion_for_good.toml", n=4, model=f"openai:mock@{mock.base_url}")
>>> run.outcomes()        # one row per dialogue
>>> run.turns()           # one row per turn
>>> run.candidates()      # one row per candidate, with `chosen` and the probabilities
>>> vsim.evaluate(run, human="pfg:data/persuasionforgood")

Errors: :class:`InputError` when vsim refuses what it was asked (a bad argument, file or
setting), :class:`RunFailed` when something fails while running; both derive from
:class:`VsimError`. Ctrl-C (or a notebook's interrupt) stops a run cleanly: finished
dialogues stay on disk, ``KeyboardInterrupt`` is raised, and ``resume=True`` continues.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _vsim, stats
from ._vsim import InputError, RunFailed, VsimError

__all__ = [
    "InputError",
    "MockServer",
    "Run",
    "RunFailed",
    "VsimError",
    "evaluate",
    "open_run",
    "parse",
    "run",
    "sample",
    "stats",
    "tune",
    "Tune",
]

__version__: str = _vsim.__version__

PathLike = Union[str, "os.PathLike[str]"]
Progress = Union[bool, Callable[[Dict[str, Any]], None], None]


def _pandas():
    try:
        import pandas
    except ImportError as e:  # pragma: no cover - pandas is a dependency
        raise ImportError("vsim's tables need pandas: pip install pandas") from e
    return pandas


class Run:
    """A run directory: its manifest, outcomes, turns and candidates.

    Obtained from :func:`run` or :func:`open_run`. The tables are read from the files each
    time they are asked for, so a run resumed elsewhere shows its new dialogues.
    """

    def __init__(self, path: PathLike, summary: Optional[Dict[str, Any]] = None, notes: Sequence[str] = ()):
        self.path = Path(path)
        #: What the call of :func:`run` that produced this object did (None for open_run).
        self.summary = summary
        #: Notes worth knowing that did not stop the run.
        self.notes = list(notes)

    def __repr__(self) -> str:
        return f"vsim.Run({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def manifest(self) -> Dict[str, Any]:
        """The run's manifest (``config.json``): kind, n, seed, models, pinned inputs."""
        return json.loads(_vsim.manifest(str(self.path)))

    def outcomes(self):
        """One row per dialogue, as ``outcomes.csv``: ``dialogue``, ``index``, ``seed``,
        ``population_id``, ``status`` (completed, unanswered, failed), turns, tokens, and a
        column per outcome (``role.name``; missing values are NaN, never 0)."""
        path = self.path / "outcomes.csv"
        if not path.exists():
            raise InputError(f"{path}: no outcomes here; is it a run directory?")
        # Only empty cells are missing: a category named "NA" stays a category.
        text_columns = {"dialogue": str, "population_id": str, "status": str, "end_reason": str}
        return _pandas().read_csv(path, dtype=text_columns, keep_default_na=False, na_values=[""])

    def turns(self):
        """One row per turn of the latest attempt of every dialogue: ``dialogue``, ``index``,
        ``turn``, ``speaker``, ``method``, ``k`` (candidates given), ``chosen`` (its position),
        ``chosen_probability``, ``selection``, ``min_prob``, ``draw``, ``text``, ``reasoning``,
        ``next_speaker``, ``calls``, tokens and ``latency_ms``."""
        return _pandas().DataFrame(self._tables()["turns"])

    def candidates(self):
        """One row per candidate of every turn: ``dialogue``, ``index``, ``turn``, ``speaker``,
        ``candidate`` (position, from 0), ``text``, ``probability`` (normalised),
        ``raw_probability`` (as stated; NaN when unstated), ``chosen``, ``eligible`` (passed
        the rule's floor) and ``repairs`` (the parser's repairs, comma-separated)."""
        return _pandas().DataFrame(self._tables()["candidates"])

    def evaluate(self, **kwargs: Any) -> Dict[str, Any]:
        """:func:`evaluate` of this run."""
        return evaluate(self, **kwargs)

    def _tables(self) -> Dict[str, Dict[str, list]]:
        return json.loads(_vsim.tables(str(self.path)))


def open_run(path: PathLike) -> Run:
    """Opens an existing run directory (written by :func:`run` or ``vsim run``)."""
    p = Path(path)
    if not (p / "transcripts.jsonl").exists() and not (p / "config.json").exists():
        raise InputError(f"{p}: not a run directory (no config.json or transcripts.jsonl)")
    return Run(p)


class _DefaultProgress:
    """A bar: tqdm's (a widget in notebooks) when tqdm is installed, else a line on stderr
    every few seconds."""

    def __init__(self) -> None:
        self.bar = None
        self.last = 0.0
        try:
            from tqdm.auto import tqdm

            self.tqdm = tqdm
        except ImportError:
            self.tqdm = None

    def _say(self, msg: str) -> None:
        """A line above the bar, or on stderr without one."""
        if self.bar is not None:
            self.bar.write(msg)
        else:
            print(msg, file=sys.stderr)

    def __call__(self, event: Dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "started":
            total, already = event["total"], event["already"]
            if self.tqdm is not None:
                self.bar = self.tqdm(total=total, initial=already, unit=event["unit"][:-1], desc=event["unit"])
            else:
                print(f"vsim: {total} {event['unit']} ({already} already done)", file=sys.stderr)
            self.done, self.failed = already, 0
        elif kind in ("finished", "tick"):
            done = self.done = event["done"]
            self.failed = event["failed"]
            if self.bar is not None:
                self.bar.update(done - self.bar.n)
                self.bar.set_postfix(failed=event["failed"], tokens=event["spend"]["tokens"], refresh=False)
            else:
                import time

                now = time.monotonic()
                if kind == "finished" and now - self.last >= 5:
                    self.last = now
                    print(f"vsim: {done} done, {event['failed']} failed", file=sys.stderr)
            if kind == "finished" and event.get("error"):
                msg = f"vsim: {event['id']} failed: {event['error']}"
                self._say(msg)
        elif kind in ("budget_stop", "halted"):
            msg = f"vsim: stopping ({kind.replace('_', ' ')}): {event['reason']}"
            self._say(msg)
        elif kind == "ended":
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            elif hasattr(self, "done"):
                print(f"vsim: {self.done} done, {self.failed} failed", file=sys.stderr)


def _progress_callback(progress: Progress) -> Optional[Callable[[str], None]]:
    if progress is None or progress is False:
        return None
    handler = _DefaultProgress() if progress is True else progress
    return lambda line: handler(json.loads(line))


def run(
    scenario: PathLike,
    *,
    population: Optional[str] = None,
    model: Optional[str] = None,
    n: Optional[int] = None,
    replicates: int = 1,
    out: Optional[PathLike] = None,
    concurrency: int = 4,
    seed: int = 0,
    split: Optional[str] = None,
    resume: bool = False,
    shard: Optional[str] = None,
    role_method: Optional[Mapping[str, str]] = None,
    role_k: Optional[Mapping[str, Union[int, str]]] = None,
    role_selection: Optional[Mapping[str, str]] = None,
    role_model: Optional[Mapping[str, str]] = None,
    max_tokens_total: Optional[int] = None,
    max_cost: Optional[float] = None,
    prices: Optional[Mapping[str, Tuple[float, float]]] = None,
    max_consecutive_failures: int = 10,
    no_cache: bool = False,
    cache_dir: Optional[PathLike] = None,
    max_requests: int = 8,
    rpm: Optional[int] = None,
    timeout: int = 120,
    max_retries: Optional[int] = None,
    threads: Optional[int] = None,
    deterministic: bool = False,
    progress: Progress = True,
) -> Run:
    """Runs (or with ``resume=True`` continues) a scenario, as ``vsim run`` does.

    Args:
        scenario: the scenario file (TOML).
        population: a persona directory or ``pfg:DIR`` (PersuasionForGood); default: the
            scenario's ``population``.
        model: the model of every role without its own: ``local`` (the embedded default),
            ``local:PATH.gguf``, ``openai:MODEL`` or ``openai:MODEL@BASE_URL``.
        n: number of dialogues (default: one per population member).
        replicates: simulate each person this many times (seeds from the experiment seed,
            the person and the replicate); ``vsim eval`` then reports per-person
            calibration (PIT, coverage) and the between/within-person variance split.
        out: the run directory (default ``runs/SCENARIO-seedS``).
        concurrency: dialogues in flight at once (results do not depend on it, except the
            embedded model's batched replies: see `deterministic`).
        seed: the experiment seed; every dialogue's seed derives from it and its index.
        split: for ``pfg:`` populations, ``test`` (default), ``train`` or ``all``.
        resume: run only the dialogues missing or failed in ``out``.
        shard: ``"I/N"``: only the dialogues whose index i has i % N == I.
        role_method, role_k, role_selection, role_model: per-role overrides, e.g.
            ``role_k={"persuadee": "model-decided"}``.
        max_tokens_total, max_cost, prices: budgets; ``prices`` maps a model to dollars per
            million input and output tokens.
        max_consecutive_failures: stop starting dialogues after this many failed in a row.
        deterministic: keep the embedded model on its bit-exact path (one request at a
            time); by default it decodes the requests of concurrent dialogues in one batch,
            which is faster but lets a reply depend on what shared its batches.
        progress: True for a bar (tqdm when installed), False for none, or a callable that
            receives each event as a dict (``event``: started, finished, tick, budget_stop,
            halted, interrupted, ended).

    Returns:
        The :class:`Run`; ``run.summary`` counts what happened (completed, unanswered,
        failed, skipped, tokens); its ``stop`` says why the run stopped early, or is None:
        ``{"cause": "budget", "reason": ...}`` or ``{"cause": "consecutive_failures",
        "reason": ...}``. Failed dialogues are counted there and warned about; they
        rerun with ``resume=True``.

    Raises:
        InputError: a bad argument, scenario, population or model spec.
        RunFailed: the run could not start or write its directory.
        KeyboardInterrupt: Ctrl-C; finished dialogues are saved, ``resume=True`` continues.
    """

    def pairs(m: Optional[Mapping[str, Any]]) -> Optional[List[Tuple[str, str]]]:
        return None if m is None else [(str(k), str(v)) for k, v in m.items()]

    summary_json, notes = _vsim.run(
        os.fspath(scenario),
        population=population,
        split=split,
        n=n,
        replicates=replicates,
        model=model,
        role_method=pairs(role_method),
        role_k=pairs(role_k),
        role_selection=pairs(role_selection),
        role_model=pairs(role_model),
        seed=seed,
        concurrency=concurrency,
        out=None if out is None else os.fspath(out),
        resume=resume,
        shard=shard,
        max_tokens_total=max_tokens_total,
        max_cost=max_cost,
        prices=None if prices is None else [(k, float(v[0]), float(v[1])) for k, v in prices.items()],
        max_consecutive_failures=max_consecutive_failures,
        no_cache=no_cache,
        cache_dir=None if cache_dir is None else os.fspath(cache_dir),
        max_requests=max_requests,
        rpm=rpm,
        timeout=timeout,
        max_retries=max_retries,
        threads=threads,
        deterministic=deterministic,
        progress=_progress_callback(progress),
    )
    summary = json.loads(summary_json)
    counts = summary["counts"]
    for note in notes:
        warnings.warn(note, stacklevel=2)
    stop = summary.get("stop") or {}
    if stop.get("cause") == "consecutive_failures":
        warnings.warn(f"stopped after repeated failures: {stop['reason']}; fix the cause, then resume=True", stacklevel=2)
    elif counts["failed"]:
        warnings.warn(f"{counts['failed']} dialogues failed; resume=True runs them again", stacklevel=2)
    if stop.get("cause") == "budget":
        warnings.warn(f"stopped for budget: {stop['reason']}", stacklevel=2)
    return Run(summary["out_dir"], summary, notes)



class Tune:
    """A finished (or stopped) tune: ``vsim tune``'s summary, read from the library.

    ``trials`` has one row per candidate per search stage (train split only): stage,
    people, candidate, objective and its interval, kept. ``chosen`` is the chosen setting,
    ``held_out`` one row per arm run on the held-out people (the choice, then the
    baselines) with the objective, KS, paired and density L1 and the counts (for a survey
    tune: per candidate, the objective and representativeness per subgroup);
    ``optimism_gap`` and ``stability`` are as in the report.
    """

    def __init__(self, summary: Dict[str, Any], notes: List[str]):
        self.summary = summary
        self.notes = notes
        self.path = Path(summary["out_dir"])
        self.chosen: Optional[Dict[str, Any]] = summary.get("chosen")
        self.optimism_gap: Optional[float] = summary.get("optimism_gap")
        self.stability: Optional[float] = summary.get("stability")
        self.stop: Optional[Dict[str, Any]] = summary.get("stop")
        #: Where the tune paused as asked (``shard``, ``stage_only``): its stage, the shard
        #: run, and whether that stage is scored; ``None`` when it ran to its end.
        self.paused: Optional[Dict[str, Any]] = summary.get("paused")

    @property
    def is_survey(self) -> bool:
        """Whether this tune chose how survey respondents answer (items split into train and
        held-out items) rather than a dialogue role's settings (people split)."""
        return "train_items" in self.summary

    def _survey_rows(self, trials):
        rows = []
        for t in trials:
            row = {"candidate": t["cell"]["name"], "objective": t.get("score"),
                   "respondents": t["respondents"], "missing_answers": t["missing_answers"], "dir": t["dir"]}
            row.update({f"representativeness: {g}": r for g, r in t["representativeness"].items()})
            rows.append(row)
        return _pandas().DataFrame(rows)

    @property
    def trials(self):
        if self.is_survey:
            return self._survey_rows(self.summary["trials"])
        rows = []
        for t in self.summary["trials"]:
            ci = t["score"].get("ci") or [None, None]
            rows.append({
                "stage": t["stage"], "split": t["split"], "people": t["people"],
                "candidate": t["cell"]["name"], "objective": t["score"].get("value"),
                "ci_lo": ci[0], "ci_hi": ci[1], "kept": t["kept"], "dir": t["dir"],
            })
        return _pandas().DataFrame(rows)

    @property
    def held_out(self):
        if self.is_survey:
            return self._survey_rows(self.summary["held_out"])

        def est(m):
            return None if not m or m.get("estimate") is None else m["estimate"]
        rows = []
        for h in self.summary["held_out"]:
            counts = h.get("counts") or {}
            rows.append({
                "arm": h["cell"]["name"], "kind": h["kind"], "objective": h["score"].get("value"),
                "ks": est(h.get("ks")), "ks_pvalue": h.get("ks_pvalue"),
                "l1_paired": est(h.get("l1_paired")), "l1_density": est(h.get("l1_density")),
                "simulated": counts.get("simulated"), "human": counts.get("human"),
                "paired": counts.get("paired"), "missing": counts.get("missing"), "failed": counts.get("failed"),
            })
        return _pandas().DataFrame(rows)

    def __repr__(self) -> str:
        chosen = self.chosen["name"] if self.chosen else None
        return f"Tune({str(self.path)!r}, chosen={chosen!r}, optimism_gap={self.optimism_gap!r})"


def tune(
    tune_file: PathLike,
    *,
    model: Optional[str] = None,
    population: Optional[str] = None,
    out: Optional[PathLike] = None,
    resume: bool = False,
    replicates: Optional[int] = None,
    bootstrap: int = 1000,
    shard: Optional[str] = None,
    stage_only: bool = False,
    max_tokens_total: Optional[int] = None,
    max_cost: Optional[float] = None,
    prices: Optional[Mapping[str, Tuple[float, float]]] = None,
    max_consecutive_failures: int = 10,
    no_cache: bool = False,
    cache_dir: Optional[PathLike] = None,
    max_requests: int = 8,
    timeout: int = 120,
    progress: Progress = True,
) -> Tune:
    """Chooses a role's settings on the train split and proves the choice on held-out
    people, as ``vsim tune`` does (see the README's "Choosing settings without fooling
    yourself"). Every search stage reads only the train split; the test split is read once,
    at the end. A file naming a ``survey`` tunes how respondents answer instead: its items
    are split into train and held-out items. Returns a :class:`Tune` (``trials`` and
    ``held_out`` as DataFrames).

    ``shard="I/N"`` runs only that shard of the current stage and returns (``paused``
    says which); ``resume=True, stage_only=True`` merges the stage's shards, scores it and
    stops before the next stage (see the README's "Shards across machines").

    Raises:
        InputError: a bad tune file, model spec or argument (e.g. a tune that would search
            on the test split).
        RunFailed: a backend or file failed.
        KeyboardInterrupt: Ctrl-C; finished dialogues are saved, ``resume=True`` continues.
    """
    summary_json, notes = _vsim.tune(
        os.fspath(tune_file),
        model=model,
        population=population,
        out=None if out is None else os.fspath(out),
        resume=resume,
        replicates=replicates,
        bootstrap=bootstrap,
        shard=shard,
        stage_only=stage_only,
        max_tokens_total=max_tokens_total,
        max_cost=max_cost,
        prices=None if prices is None else [(k, float(v[0]), float(v[1])) for k, v in prices.items()],
        max_consecutive_failures=max_consecutive_failures,
        no_cache=no_cache,
        cache_dir=None if cache_dir is None else os.fspath(cache_dir),
        max_requests=max_requests,
        timeout=timeout,
        progress=_progress_callback(progress),
    )
    for note in notes:
        warnings.warn(note, stacklevel=2)
    summary = json.loads(summary_json)
    stop = summary.get("stop")
    if stop:
        warnings.warn(f"tune stopped ({stop['cause']}): {stop.get('reason', '')}; resume=True continues", stacklevel=2)
    if summary.get("unscored"):
        warnings.warn(f"no choice: {summary['unscored']}", stacklevel=2)
    return Tune(summary, notes)

def evaluate(
    run: Union[Run, PathLike],
    *,
    human: Optional[str] = None,
    split: Optional[str] = None,
    other_split: bool = False,
    allow_changed_inputs: bool = False,
    seed: int = 0,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    embedder: str = "minilm",
    embed_max: int = 200,
    write: bool = True,
) -> Dict[str, Any]:
    """Evaluates a run against human data, as ``vsim eval`` does, and returns the metrics
    (the content of ``metrics.json``) as a dict.

    ``human`` defaults to the run's own ``pfg:`` population as pinned at run time; the
    simulated people are then compared with the same people's real answers. Every figure
    comes with its counts (simulated, human, paired, missing, invalid, failed). With
    ``write`` (the default) ``metrics.json``, ``report.md`` and ``report.html`` are written
    into the run directory. ``embedder="none"`` skips semantic diversity.
    """
    path = run.path if isinstance(run, Run) else Path(run)
    metrics_json, notes = _vsim.evaluate(
        str(path),
        human=human,
        split=split,
        other_split=other_split,
        allow_changed_inputs=allow_changed_inputs,
        seed=seed,
        bootstrap=bootstrap,
        confidence=confidence,
        embedder=embedder,
        embed_max=embed_max,
        write=write,
    )
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return json.loads(metrics_json)


def sample(
    prompt: str,
    *,
    method: str = "vs-standard",
    k: Union[int, str] = 5,
    n: Optional[int] = None,
    selection: str = "weighted",
    model: str = "local",
    seed: int = 0,
    k_max: int = 10,
    min_prob: Optional[float] = None,
    min_keep: int = 1,
    tau: Optional[float] = None,
    temperature: Optional[float] = None,
    max_tokens: Optional[int] = None,
    system: str = "You are a helpful assistant.",
    no_cache: bool = False,
    threads: Optional[int] = None,
) -> Dict[str, Any]:
    """Asks a model for ``n`` responses to one prompt with one method (under the paper's
    Table 1 call budget) and chooses one by ``selection``, as ``vsim sample`` does.

    Returns a dict: ``candidates`` (each with ``text``, ``probability``,
    ``raw_probability``, ``repairs``), ``choice`` (``index``, ``draw``, ``rule``),
    ``calls`` (every raw reply), ``usage``, ``method``, ``k``.
    """
    return json.loads(
        _vsim.sample(
            prompt,
            method=method,
            k=str(k),
            k_max=k_max,
            n=n,
            selection=selection,
            min_prob=min_prob,
            min_keep=min_keep,
            tau=tau,
            model=model,
            seed=seed,
            temperature=temperature,
            max_tokens=max_tokens,
            system=system,
            no_cache=no_cache,
            threads=threads,
        )
    )


def parse(text: str, k: Optional[int] = None) -> List[Dict[str, Any]]:
    """Parses a raw model reply into candidates, repairing what it can (code fences,
    single quotes, percentages, ...); each candidate lists the repairs applied."""
    return json.loads(_vsim.parse(text, k))["candidates"]


class MockServer:
    """The built-in OpenAI-compatible mock model on 127.0.0.1, for trying runs offline:
    ``model=f"openai:mock@{server.base_url}"``. A context manager; stops when closed."""

    def __init__(self, *, seed: int = 0, latency_ms: int = 0, error_rate: float = 0.0):
        self._server = _vsim.MockServer(seed=seed, latency_ms=latency_ms, error_rate=error_rate)
        #: ``http://127.0.0.1:PORT/v1``
        self.base_url: str = self._server.base_url

    @property
    def model(self) -> str:
        """The model spec of this server: ``openai:mock@BASE_URL``."""
        return f"openai:mock@{self.base_url}"

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> "MockServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
