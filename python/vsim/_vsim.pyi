"""Type stubs of the native module `vsim._vsim` (structured results cross as JSON text;
the `vsim` package decodes them)."""

from typing import Callable, List, Optional, Sequence, Tuple

__version__: str

class VsimError(Exception):
    """Base class of every error vsim raises."""

class InputError(VsimError):
    """vsim refused what it was asked: a bad argument, file or setting (exit code 2)."""

class RunFailed(VsimError):
    """Something failed while running: a backend, the network, a file (exit code 1)."""

class MockServer:
    def __init__(self, *, seed: int = 0, latency_ms: int = 0, error_rate: float = 0.0) -> None: ...
    @property
    def base_url(self) -> str: ...
    def close(self) -> None: ...

def run(
    scenario: str,
    *,
    population: Optional[str] = None,
    split: Optional[str] = None,
    n: Optional[int] = None,
    replicates: int = 1,
    model: Optional[str] = None,
    role_method: Optional[Sequence[Tuple[str, str]]] = None,
    role_k: Optional[Sequence[Tuple[str, str]]] = None,
    role_selection: Optional[Sequence[Tuple[str, str]]] = None,
    role_model: Optional[Sequence[Tuple[str, str]]] = None,
    seed: int = 0,
    concurrency: int = 4,
    out: Optional[str] = None,
    resume: bool = False,
    shard: Optional[str] = None,
    max_tokens_total: Optional[int] = None,
    max_cost: Optional[float] = None,
    prices: Optional[Sequence[Tuple[str, float, float]]] = None,
    max_consecutive_failures: int = 10,
    no_cache: bool = False,
    cache_dir: Optional[str] = None,
    max_requests: int = 8,
    rpm: Optional[int] = None,
    timeout: int = 120,
    max_retries: Optional[int] = None,
    threads: Optional[int] = None,
    deterministic: bool = False,
    progress: Optional[Callable[[str], None]] = None,
) -> Tuple[str, List[str]]:
    """Runs a scenario; returns (summary JSON, notes)."""

def tables(run_dir: str) -> str:
    """{"turns": {column: [...]}, "candidates": {column: [...]}} as JSON."""

def manifest(run_dir: str) -> str:
    """The run's config.json, as JSON."""

def evaluate(
    run_dir: str,
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
) -> Tuple[str, List[str]]:
    """Evaluates a run; returns (metrics JSON, notes)."""

def sample(
    prompt: str,
    *,
    method: str = "vs-standard",
    k: str = "5",
    k_max: int = 10,
    n: Optional[int] = None,
    selection: str = "weighted",
    min_prob: Optional[float] = None,
    min_keep: int = 1,
    tau: Optional[float] = None,
    model: str = "local",
    seed: int = 0,
    temperature: Optional[float] = None,
    max_tokens: Optional[int] = None,
    system: str = "You are a helpful assistant.",
    no_cache: bool = False,
    threads: Optional[int] = None,
) -> str:
    """Draws responses to one prompt; returns the method sample as JSON."""

def parse(text: str, k: Optional[int] = None) -> str:
    """Parses a raw reply; returns {"candidates": [...], "reasoning": ...} as JSON."""

def distances() -> str: ...
def distance(key: str, a: List[float], b: List[float], bins: Optional[Tuple[float, float, int]] = None) -> float: ...
def test(key: str, a: List[float], b: List[float], mode: str = "auto") -> Tuple[float, float, str]: ...

def tune(
    tune_file: str,
    *,
    model: Optional[str] = None,
    population: Optional[str] = None,
    out: Optional[str] = None,
    resume: bool = False,
    replicates: Optional[int] = None,
    bootstrap: int = 1000,
    shard: Optional[str] = None,
    stage_only: bool = False,
    max_tokens_total: Optional[int] = None,
    max_cost: Optional[float] = None,
    prices: Optional[Sequence[Tuple[str, float, float]]] = None,
    max_consecutive_failures: int = 10,
    no_cache: bool = False,
    cache_dir: Optional[str] = None,
    max_requests: int = 8,
    timeout: int = 120,
    progress: Optional[Callable[[str], None]] = None,
) -> Tuple[str, List[str]]:
    """Runs a tune file; returns (summary JSON, notes)."""
