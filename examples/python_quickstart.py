"""vsim from Python in one page: run the PersuasionForGood scenario against the built-in
mock model, look at the results as DataFrames, evaluate against the real participants and
plot the donation histograms (when matplotlib is installed).

    pip install ./python            # once; see the README
    vsim data fetch persuasionforgood --dir data/persuasionforgood
    python examples/python_quickstart.py [DATA_DIR] [OUT_DIR]
"""

import shutil
import sys
from pathlib import Path

import vsim

ROOT = Path(__file__).resolve().parents[1]
data = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "data" / "persuasionforgood"
out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "runs" / "python-quickstart"
if not (data / "full_info.csv").exists():
    sys.exit(f"no PersuasionForGood data in {data}: vsim data fetch persuasionforgood --dir {data}")

# The mock listens on a new port each time, so a run of an earlier mock cannot be resumed
# (its model differs): the example's own directory is made afresh.
shutil.rmtree(out, ignore_errors=True)
with vsim.MockServer() as mock:
    # 20 held-out test-split participants, each simulated once (the mock answers instantly;
    # use model="local" for the embedded model or "openai:gpt-4o-mini" for a real one).
    run = vsim.run(
        ROOT / "scenarios" / "persuasion_for_good.toml",
        population=f"pfg:{data}",
        n=20,
        model=mock.model,
        out=out,
    )

outcomes = run.outcomes()
print(outcomes[["dialogue", "population_id", "status", "persuadee.donation"]].head())
turns = run.turns()
print(f"{len(turns)} turns; mean candidates per persuadee turn: "
      f"{turns[turns.speaker == 'persuadee'].k.mean():.2f}")
candidates = run.candidates()
print(candidates[candidates.chosen][["dialogue", "turn", "probability", "text"]].head())

metrics = vsim.evaluate(run, embedder="none")
donation = next(o for o in metrics["numeric"] if o["key"] == "persuadee.donation")
comparison = donation["comparison"]
counts = comparison["counts"]
print(f"simulated {counts['simulated']}, human {counts['human']}, paired {counts['paired']}, "
      f"missing {counts['missing']}, failed {counts['failed']}")
print(f"KS D = {comparison['ks']['statistic']['estimate']:.3f} (p = {comparison['ks']['pvalue']:.3g}), "
      f"L1 paired = {comparison['l1_paired']['estimate']:.3f}")
print(f"report: {run.path / 'report.html'}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot")
else:
    human = donation["human_values"]
    fig, ax = plt.subplots()
    bins = [i / 10 for i in range(21)]
    ax.hist(outcomes["persuadee.donation"].dropna(), bins=bins, alpha=0.6, label="simulated")
    ax.hist(human, bins=bins, alpha=0.6, label="human (the same participants)")
    ax.set_xlabel("donation ($)")
    ax.set_ylabel("people")
    ax.set_title("PersuasionForGood donations: simulated vs the same participants")
    ax.legend()
    fig.savefig(run.path / "donations.png")
    print(f"plot: {run.path / 'donations.png'}")
