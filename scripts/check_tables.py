"""Opens every results table under a results directory with pandas (pyarrow) and checks the
columns a reader relies on. Used by `just test` on the smoke runs and on the committed results."""
import json
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

RUNS = ["run_id", "experiment", "seed", "status", "config_hash", "git_commit", "git_dirty", "crate_versions"]
CURVES = ["run_id", "step", "epoch", "lr", "loss"]
FEATURES = ["run_id", "split", "index", "label", "f0"]
FOLDS = ["run_id", "view", "fold", "accuracy", "threshold"]


def check(path: Path, required: list[str]) -> pd.DataFrame:
    df = pd.read_parquet(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        sys.exit(f"{path}: missing columns {missing} (has {list(df.columns)})")
    if df.empty:
        sys.exit(f"{path}: no rows")
    meta = pq.read_metadata(path).metadata or {}
    if b"replicate.manifests" not in meta:
        sys.exit(f"{path}: no run manifest in the parquet key-value metadata")
    return df


def main() -> None:
    root = Path(sys.argv[1])
    experiments = sorted(p for p in root.iterdir() if (p / "runs.parquet").exists())
    if not experiments:
        sys.exit(f"no results under {root}")
    for exp in experiments:
        runs = check(exp / "runs.parquet", RUNS)
        bad = runs[~runs["status"].isin(["finished", "diverged", "collapsed"])]
        if not bad.empty:
            sys.exit(f"{exp}: runs with unknown status {bad['status'].tolist()}")
        if "iterations" in runs.columns:
            curves = check(exp / "curves.parquet", CURVES)
            # A run stopped by divergence before its first logged step has no curve rows.
            finished = set(runs.loc[runs["status"] == "finished", "run_id"])
            named = set(curves["run_id"])
            if not finished <= named or not named <= set(runs["run_id"]):
                sys.exit(
                    f"{exp}: curves and runs name different runs (finished runs without curves: "
                    f"{sorted(finished - named)}; curves of unknown runs: {sorted(named - set(runs['run_id']))})"
                )
            rows = f"{len(curves)} curve rows"
        else:
            # Nothing trained (LFW's baselines): the per-fold accuracies instead of curves.
            folds = check(exp / "folds.parquet", FOLDS)
            if set(folds["run_id"]) != set(runs["run_id"]) or set(folds["view"]) != {"view1", "view2"}:
                sys.exit(f"{exp}: folds and runs name different runs, or a view is missing")
            rows = f"{len(folds)} fold rows"
        if (exp / "features.parquet").exists():
            check(exp / "features.parquet", FEATURES)
        figures = list(exp.glob("*.png"))
        if not figures or any(f.stat().st_size < 1000 or f.read_bytes()[1:4] != b"PNG" for f in figures):
            sys.exit(f"{exp}: missing or empty PNG figures")
        print(f"{exp.name}: {len(runs)} runs, {rows}, figures {sorted(f.name for f in figures)}")
    selections = pd.read_parquet(root / "selections.parquet")
    # Selections read by later sweeps: the leaderboard's settings from its validation split,
    # deepid2-lfw's View 1 λ for View 2, and leaderboard-lfw's View 1 choices for its View 2.
    for name, keys in {"leaderboard-settings": {"contrastive_lambda", "center_lambda", "sphere_m",
                                                "cosface_margin", "arcface_margin"},
                       "deepid2-lfw-best-lambda": {"lambda"},
                       "leaderboard-lfw-settings": {"center_lambda", "lsoftmax_m"}}.items():
        chosen = selections[selections["name"] == name]
        if chosen.empty or not all(json.loads(v).keys() >= keys for v in chosen["values"]):
            sys.exit(f"{root}/selections.parquet: no {name} selection ({selections.to_dict('records')})")
        print(f"selection {name}: {chosen[['profile', 'values']].to_dict('records')}")

if __name__ == "__main__":
    main()
