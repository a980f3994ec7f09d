"""LeNets++ (the center-loss paper's MNIST network) in PyTorch, timed like `replicate bench`:
batch 128, f32, a training step = forward + backward + SGD (momentum 0.9, weight decay 5e-4);
inference = forward only. Prints `train img/s: X` and `inference img/s: Y`."""
import argparse
import time

import torch
import torch.nn as nn


def lenetspp(width: float, feature_dim: int = 2) -> nn.Module:
    c1, c2, c3 = (max(1, round(c * width)) for c in (32, 64, 128))
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 5, padding=2), nn.PReLU(cout), nn.Conv2d(cout, cout, 5, padding=2), nn.PReLU(cout), nn.MaxPool2d(2)]
    return nn.Sequential(*block(1, c1), *block(c1, c2), *block(c2, c3), nn.Flatten(), nn.Linear(c3 * 9, feature_dim), nn.PReLU(feature_dim), nn.Linear(feature_dim, 10, bias=False))


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
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = lenetspp(args.width)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(args.batch, 1, 28, 28) * 2 - 1
    y = torch.arange(args.batch) % 10
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
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, width {args.width}, batch {args.batch}")
    print(f"train img/s: {args.batch / train:.1f}")
    print(f"inference img/s: {args.batch / inference:.1f}")


if __name__ == "__main__":
    main()
