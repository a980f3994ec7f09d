"""LeNets++ (the center-loss paper's MNIST network) in PyTorch, timed like `replicate bench`:
batch 128, f32, a training step = forward + backward + SGD (momentum 0.9, weight decay 5e-4);
inference = forward only. Prints `train img/s: X` and `inference img/s: Y`. With --face, the
project's face backbone instead (the same layers with 3×3 kernels on 32×32 faces, a 128-D
feature, 1,184 classes: deepid2-lfw's quick setting)."""
import argparse
import time

import torch
import torch.nn as nn


def backbone(width: float, feature_dim: int, kernel: int, side: int, classes: int) -> nn.Module:
    c1, c2, c3 = (max(1, round(c * width)) for c in (32, 64, 128))
    def block(cin, cout):
        pad = kernel // 2
        return [nn.Conv2d(cin, cout, kernel, padding=pad), nn.PReLU(cout), nn.Conv2d(cout, cout, kernel, padding=pad), nn.PReLU(cout), nn.MaxPool2d(2)]
    final = side // 8
    return nn.Sequential(*block(1, c1), *block(c1, c2), *block(c2, c3), nn.Flatten(), nn.Linear(c3 * final * final, feature_dim), nn.PReLU(feature_dim), nn.Linear(feature_dim, classes, bias=False))


def lenetspp(width: float, feature_dim: int = 2) -> nn.Module:
    return backbone(width, feature_dim, 5, 28, 10)


def median_seconds(fn, warmup: int, runs: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--face", action="store_true", help="the face backbone (32×32, 3×3, 128-D, 1,184 classes)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    side, classes = (32, 1184) if args.face else (28, 10)
    model = backbone(args.width, 128, 3, side, classes) if args.face else lenetspp(args.width)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(args.batch, 1, side, side) * 2 - 1
    y = torch.arange(args.batch) % classes
    loss_fn = nn.CrossEntropyLoss()

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    def infer():
        with torch.no_grad():
            model(x).sum().item()

    train = median_seconds(train_step, 2, args.runs)
    inference = median_seconds(infer, 2, args.runs)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {'face backbone' if args.face else 'LeNets++'} width {args.width}, batch {args.batch}")
    print(f"train img/s: {args.batch / train:.1f}")
    print(f"inference img/s: {args.batch / inference:.1f}")


if __name__ == "__main__":
    main()
