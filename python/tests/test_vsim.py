"""The Python module against the built-in mock: DataFrames equal the run's files, errors
come as the right classes, Ctrl-C stops a run that then resumes, and evaluation follows the
command line's protocol."""

import csv
import json
import math
import os
import signal
import threading
from pathlib import Path

import pytest

import vsim

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "persuasion_for_good.toml"
PFG = Path(os.environ.get("VSIM_PFG_DIR", ROOT.parent / "shared" / "data" / "persuasionforgood"))


@pytest.fixture(scope="module")
def mock():
    with vsim.MockServer(seed=3) as server:
        yield server


@pytest.fixture(scope="module")
def finished(mock, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pfg"
    return vsim.run(SCENARIO, n=6, model=mock.model, out=out, no_cache=True, progress=False)


def latest_attempts(path):
    """Every dialogue's events from its last `begin` on, read straight from the file."""
    attempts = {}
    with open(path / "transcripts.jsonl", encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            if e["event"] == "begin":
                attempts[e["dialogue"]] = [e]
            else:
                attempts[e["dialogue"]].append(e)
    return sorted(attempts.values(), key=lambda events: events[0]["index"])


def test_outcomes_equal_outcomes_csv(finished):
    df = finished.outcomes()
    with open(finished.path / "outcomes.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(df) == len(rows) == 6
    assert list(df.columns) == list(rows[0].keys())
    for (_, got), want in zip(df.iterrows(), rows):
        assert got["dialogue"] == want["dialogue"]
        assert got["status"] == want["status"] == "completed"
        assert int(got["seed"]) == int(want["seed"])
        donation = want["persuadee.donation"]
        if donation == "":
            assert math.isnan(got["persuadee.donation"])
        else:
            assert got["persuadee.donation"] == pytest.approx(float(donation))
    assert finished.summary["counts"]["completed"] == 6


def test_turns_and_candidates_equal_the_transcript(finished):
    turns, candidates = finished.turns(), finished.candidates()
    want_turns = [e for events in latest_attempts(finished.path) for e in events if e["event"] == "turn"]
    assert len(turns) == len(want_turns) > 0
    assert list(turns["text"]) == [t["text"] for t in want_turns]
    assert list(turns["chosen"]) == [t["choice"]["index"] for t in want_turns]
    assert list(turns["k"]) == [len(t["candidates"]) for t in want_turns]

    want_candidates = [(t, i, c) for t in want_turns for i, c in enumerate(t["candidates"])]
    assert len(candidates) == len(want_candidates)
    for (_, row), (t, i, c) in zip(candidates.iterrows(), want_candidates):
        assert (row["dialogue"], row["turn"], row["candidate"]) == (t["dialogue"], t["turn"], i)
        assert row["text"] == c["text"]
        assert row["probability"] == pytest.approx(c["probability"])
        assert bool(row["chosen"]) == (i == t["choice"]["index"])
    # Exactly one chosen candidate per turn, and it is the turn's text.
    chosen = candidates[candidates["chosen"]]
    assert len(chosen) == len(turns)
    assert list(chosen["text"]) == list(turns["text"])


def test_open_run_reads_the_same_directory(finished):
    again = vsim.open_run(finished.path)
    assert again.outcomes().equals(finished.outcomes())
    assert again.manifest["kind"] == "dialogue"
    assert again.manifest["n"] == 6


def test_bad_input_and_failures_raise_their_own_classes(mock, tmp_path):
    assert issubclass(vsim.InputError, vsim.VsimError) and issubclass(vsim.RunFailed, vsim.VsimError)
    with pytest.raises(vsim.InputError, match="cannot read scenario file"):
        vsim.run(tmp_path / "missing.toml", progress=False)
    with pytest.raises(vsim.InputError, match="concurrency"):
        vsim.run(SCENARIO, model=mock.model, concurrency=0, progress=False)
    with pytest.raises(vsim.InputError):
        vsim.run(SCENARIO, model="nonsense:spec", out=tmp_path / "x", progress=False)
    with pytest.raises(vsim.InputError, match="k"):
        vsim.sample("hi", k=0, model=mock.model)
    with pytest.raises(vsim.InputError):
        vsim.stats.ks([], [1.0])
    with pytest.raises(vsim.InputError):
        vsim.open_run(tmp_path)
    # A server nobody listens on fails the check before any dialogue starts.
    with pytest.raises(vsim.RunFailed, match="cannot reach"):
        vsim.run(SCENARIO, model="openai:mock@http://127.0.0.1:1/v1", out=tmp_path / "dead", n=2, progress=False)


def test_ctrl_c_stops_a_run_that_then_resumes(tmp_path):
    out = tmp_path / "interrupted"
    # Python leaves SIGINT ignored when it started ignored (as under `cmd &` in a script);
    # a terminal or a notebook kernel turns it into KeyboardInterrupt, as this does.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_and_resume(out)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_and_resume(out):
    with vsim.MockServer(seed=5, latency_ms=40) as slow:
        events = []
        # Ctrl-C from another thread once dialogues are finishing, as a terminal sends it.
        timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))

        def progress(event):
            events.append(event)
            if event["event"] == "finished" and timer.ident is None:
                timer.start()

        try:
            with pytest.raises(KeyboardInterrupt, match="resume=True"):
                vsim.run(SCENARIO, n=12, concurrency=2, model=slow.model, out=out, no_cache=True, progress=progress)
        finally:
            timer.cancel()
        assert any(e["event"] == "interrupted" for e in events)
        done = len(vsim.open_run(out).outcomes())
        assert 0 < done < 12
        # Every line of the transcript is whole.
        with open(out / "transcripts.jsonl", encoding="utf-8") as f:
            for line in f:
                json.loads(line)
        resumed = vsim.run(SCENARIO, n=12, concurrency=2, model=slow.model, out=out, no_cache=True, resume=True, progress=False)
    assert resumed.summary["skipped"] == done
    assert resumed.summary["counts"]["completed"] == 12


def test_progress_reaches_a_callback(mock, tmp_path):
    events = []
    vsim.run(SCENARIO, n=3, model=mock.model, out=tmp_path / "p", no_cache=True, progress=events.append)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "ended"
    assert kinds.count("finished") == 3
    assert events[0]["total"] == 3


def test_stats_match_scipy():
    r = vsim.stats.ks([1, 2, 3], [2, 3, 4, 5])
    assert r.statistic == pytest.approx(0.5)
    assert r.pvalue == pytest.approx(0.6571428571428571)  # scipy.stats.ks_2samp, exact
    assert r.method == "exact"
    assert vsim.stats.l1_paired([1.0, 2.0], [1.0, 3.0]) == pytest.approx(0.5)
    assert vsim.stats.l1([1.0, 2.0], [1.0, 3.0]) == pytest.approx(0.5)
    assert vsim.stats.l1([0.5], [1.5], kind="histogram", lo=0, hi=2, bins=2) == pytest.approx(2.0)
    with pytest.raises(vsim.InputError):
        vsim.stats.l1([1.0], [1.0], kind="nonsense")
    assert vsim.stats.total_variation([0.5, 0.5], [1.0, 0.0]) == pytest.approx(0.5)
    assert vsim.stats.wasserstein1([0.0], [1.0]) == pytest.approx(1.0)
    assert vsim.stats.l1_density_pfg([0.0, 0.0], [2.0, 2.0]) > 0


def test_parse_and_sample(mock):
    candidates = vsim.parse('{"responses": [{"text": "Hi", "probability": "70%"}, {"text": "Hello"}]}', k=2)
    assert [c["text"] for c in candidates] == ["Hi", "Hello"]
    assert candidates[0]["probability"] == pytest.approx(0.7)
    s = vsim.sample("Tell me a joke", k=3, model=mock.model, seed=1, no_cache=True)
    assert len(s["candidates"]) == 3
    assert 0 <= s["choice"]["index"] < 3
    again = vsim.sample("Tell me a joke", k=3, model=mock.model, seed=1, no_cache=True)
    assert again["choice"] == s["choice"]


@pytest.mark.skipif(not (PFG / "full_info.csv").exists(), reason="PersuasionForGood data not present")
def test_evaluate_compares_the_simulated_people_with_themselves(mock, tmp_path):
    run = vsim.run(SCENARIO, population=f"pfg:{PFG}", n=8, model=mock.model, out=tmp_path / "pfg", no_cache=True, progress=False)
    metrics = vsim.evaluate(run, embedder="none", bootstrap=50)
    donation = next(o for o in metrics["numeric"] if o["key"] == "persuadee.donation")
    counts = donation["comparison"]["counts"]
    assert counts["simulated"] + counts["missing"] + counts["invalid"] + counts["failed"] == 8
    assert counts["human"] == 8
    assert counts["paired"] == counts["simulated"]
    assert (run.path / "metrics.json").exists() and (run.path / "report.html").exists()
    with pytest.raises(vsim.InputError):
        vsim.evaluate(run, embedder="none", human="pfg:/nonexistent")


def test_an_exception_in_the_progress_callback_stops_the_run(mock, tmp_path):
    out = tmp_path / "callback"

    def fail(event):
        if event["event"] == "finished":
            raise ValueError("callback broke")

    with pytest.raises(ValueError, match="callback broke"):
        vsim.run(SCENARIO, n=12, concurrency=2, model=mock.model, out=out, no_cache=True, progress=fail)
    # The run stopped and let go of its directory: a resume finishes it.
    resumed = vsim.run(SCENARIO, n=12, concurrency=2, model=mock.model, out=out, no_cache=True, resume=True, progress=False)
    assert resumed.summary["counts"]["completed"] == 12
    # Once more without resume: refused, with this module's words for what to do.
    with pytest.raises(vsim.InputError, match=r"already holds a run(.|\n)*hint: pass resume=True"):
        vsim.run(SCENARIO, n=12, concurrency=2, model=mock.model, out=out, no_cache=True, progress=False)


def test_the_gil_is_released_while_a_run_works(tmp_path):
    ticks = 0
    running = True

    def count():
        nonlocal ticks
        while running:
            ticks += 1

    with vsim.MockServer(seed=7, latency_ms=20) as slow:
        counter = threading.Thread(target=count)
        counter.start()
        try:
            vsim.run(SCENARIO, n=2, model=slow.model, out=tmp_path / "gil", no_cache=True, progress=False)
        finally:
            running = False
            counter.join()
    # A Python thread kept running through the whole run (about a second of model calls).
    assert ticks > 10_000, ticks


def test_replicates_give_per_person_calibration(mock, tmp_path):
    run = vsim.run(SCENARIO, population=f"pfg:{PFG}", n=4, replicates=3, model=mock.model, out=tmp_path / "rep", no_cache=True, progress=False)
    assert run.summary["planned"] == 12
    metrics = vsim.evaluate(run, embedder="none", bootstrap=20)
    donation = next(o for o in metrics["numeric"] if o["key"] == "persuadee.donation")
    assert donation["comparison"]["counts"]["human"] == 4
    calibration = donation["calibration"]
    assert calibration["people"] + calibration["people_single"] <= 4
    assert len(calibration["pit_histogram"]) == 10


def test_tune_searches_on_train_and_reports_the_held_out_people(mock, tmp_path):
    scenario = SCENARIO.read_text()
    (tmp_path / "scenario.toml").write_text(scenario.replace('population = ', '# population = '))
    (tmp_path / "tune.toml").write_text(f"""
scenario = "scenario.toml"
role = "persuadee"
population = "pfg:{PFG}"
seed = 1
concurrency = 8
[[arms]]
name = "k3"
method = "vs-standard"
k = 3
[[arms]]
name = "k5"
method = "vs-standard"
k = 5
[tune]
objective = "l1_paired"
measure = "answer"
strategy = "grid"
train_n = 4
test_n = 3
bootstrap = 20
[[baselines]]
name = "direct"
method = "direct"
""")
    t = vsim.tune(tmp_path / "tune.toml", model=mock.model, out=tmp_path / "out", no_cache=True, bootstrap=20, progress=False)
    assert t.chosen["name"] in ("000-k3", "001-k5")
    assert list(t.trials["split"]) == ["train", "train"]
    assert list(t.held_out["kind"]) == ["chosen", "baseline"]
    assert list(t.held_out["human"]) == [3, 3]
    assert (t.path / "report.md").exists() and (t.path / "tune.json").exists()
    with pytest.raises(vsim.InputError):
        (tmp_path / "bad.toml").write_text((tmp_path / "tune.toml").read_text().replace('seed = 1', 'seed = 1\nsplit = "test"'))
        vsim.tune(tmp_path / "bad.toml", model=mock.model, progress=False)
    # The same tune as two shards per stage, merged stage by stage, chooses the same.
    for _ in range(3):
        for i in range(2):
            s = vsim.tune(tmp_path / "tune.toml", model=mock.model, out=tmp_path / "sharded", no_cache=True,
                          bootstrap=20, shard=f"{i}/2", progress=False)
            assert s.paused["shard"] == {"index": i, "count": 2}, s.paused
        merged = vsim.tune(tmp_path / "tune.toml", model=mock.model, out=tmp_path / "sharded", no_cache=True,
                           bootstrap=20, resume=True, stage_only=True, progress=False)
        if merged.paused is None:
            break
    assert merged.paused is None and merged.chosen["name"] == t.chosen["name"]
    assert list(merged.held_out["objective"]) == list(t.held_out["objective"])


def test_a_survey_tune_reports_held_out_items_per_subgroup(mock, tmp_path):
    wave = ROOT.parent / "shared" / "data" / "opinionqa" / "W26"
    if not wave.exists():
        pytest.skip("no OpinionQA wave")
    (tmp_path / "survey.toml").write_text(f"""kind = "survey"
name = "t"
opinionqa = "{wave}"
attribute = "POLIDEOLOGY"
groups = ["Liberal", "Very conservative"]
items = ["SAFECRIME_W26", "GUN_W26", "WORLDDANGER_W26", "GUN1_W26", "GUNSOCIETY_W26", "WORRYG_W26"]
per_group = 2
method = "vs-standard"
k = 3
system = "You are an American whose {{{{ attribute }}}} is {{{{ group }}}}."
""")
    (tmp_path / "tune.toml").write_text("""survey = "survey.toml"
[grid]
selection = ["weighted", "uniform"]
[tune]
held_out = 0.5
[[baselines]]
name = "direct"
method = "direct"
""")
    t = vsim.tune(tmp_path / "tune.toml", model=mock.model, out=tmp_path / "out", no_cache=True, progress=False)
    assert t.is_survey
    assert len(t.trials) == 2 and len(t.held_out) == 2
    assert "representativeness: Liberal" in t.held_out.columns or "representativeness: Very conservative" in t.held_out.columns
    assert t.summary["train_items"] and t.summary["held_out_items"]
