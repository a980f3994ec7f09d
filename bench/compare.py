"""Alternates `replicate bench --speed W` (ours) and bench/pytorch_lenetspp.py (PyTorch) on the
same machine and threads, A B A B ..., and prints the median of the per-pair ratios; the width
`face` is the face backbone (`--face` on both sides). Run through `just bench-pytorch`."""
import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def speeds(cmd: list[str]) -> tuple[float, float]:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    train = float(re.search(r"train img/s: ([0-9.]+)", out).group(1))
    infer = float(re.search(r"inference img/s: ([0-9.]+)", out).group(1))
    return train, infer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ours", required=True)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--widths", default="1.0,0.5,face")
    args = parser.parse_args()
    summary = []
    for width in args.widths.split(","):
        face = width == "face"
        ours_cmd = [args.ours, "bench", "--speed", "1.0", "--face"] if face else [args.ours, "bench", "--speed", width]
        torch_cmd = [sys.executable, str(HERE / "pytorch_lenetspp.py"), "--width", "1.0" if face else width] + (["--face"] if face else [])
        rows = []
        for pair in range(args.pairs):
            a = speeds(ours_cmd)
            b = speeds(torch_cmd)
            rows.append((a, b))
            print(f"width {width} pair {pair + 1}: ours train {a[0]:.1f} infer {a[1]:.1f} | pytorch train {b[0]:.1f} infer {b[1]:.1f} img/s", flush=True)
        med = lambda xs: statistics.median(xs)
        print(f"width {width}: ours train {med([r[0][0] for r in rows]):.1f}, inference {med([r[0][1] for r in rows]):.1f} img/s; "
              f"pytorch train {med([r[1][0] for r in rows]):.1f}, inference {med([r[1][1] for r in rows]):.1f} img/s")
        summary.append((width, med([r[0][0] / r[1][0] for r in rows]), med([r[0][1] / r[1][1] for r in rows])))
    print()
    for width, train, infer in summary:
        print(f"width {width}: train {train:.2f}, inference {infer:.2f}")
    # The closing lines, at the first width given (the paper's 1.0 by default).
    print(f"train ratio ours/pytorch: {summary[0][1]:.2f}")
    print(f"inference ratio ours/pytorch: {summary[0][2]:.2f}")


if __name__ == "__main__":
    main()
