"""singkit's default job: logistic regression by SGD on synthetic data, in pure Python (~10 s).

    python examples/train.py [--lr 0.1] [--bs 32] [--epochs 20] [--seed N] [--step-time 0.02]

Logs its hparams and, every few steps, loss/accuracy through singkit's in-job API, and writes
the trained weights to outputs/model.json. Runs anywhere: outside a singkit job the logging
calls write to a local run folder (singkit_metrics says where, on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time

import singkit_metrics as metrics  # installed with singkit; every job gets a copy (no dependencies)


def make_data(n: int, dim: int, rng: random.Random) -> list[tuple[list[float], int]]:
    """Points around two centres, labelled by which centre they come from (a little noisy)."""
    true_w = [rng.gauss(0, 1) for _ in range(dim)]
    data = []
    for _ in range(n):
        x = [rng.gauss(0, 1) for _ in range(dim)]
        margin = sum(w * xi for w, xi in zip(true_w, x))
        label = 1 if margin + rng.gauss(0, 0.3) > 0 else 0
        data.append((x, label))
    return data


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def evaluate(w: list[float], b: float, data: list[tuple[list[float], int]]) -> tuple[float, float]:
    loss = correct = 0.0
    for x, y in data:
        p = sigmoid(sum(wi * xi for wi, xi in zip(w, x)) + b)
        loss -= math.log(max(p if y else 1 - p, 1e-12))
        correct += (p > 0.5) == bool(y)
    return loss / len(data), correct / len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--bs", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--samples", type=int, default=800)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SINGKIT_REPEAT", "1")))
    parser.add_argument("--step-time", type=float, default=0.02,
                        help="pause per step (s), so the job lasts long enough to watch")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    data = make_data(args.samples, args.dim, rng)
    train, valid = data[: int(0.8 * len(data))], data[int(0.8 * len(data)):]
    metrics.log_hparams(vars(args))
    print(f"training: {len(train)} samples, dim {args.dim}, lr {args.lr}, bs {args.bs}, "
          f"{args.epochs} epochs, seed {args.seed}", flush=True)

    w, b, step = [0.0] * args.dim, 0.0, 0
    for epoch in range(1, args.epochs + 1):
        rng.shuffle(train)
        for start in range(0, len(train), args.bs):
            batch = train[start:start + args.bs]
            grad_w, grad_b = [0.0] * args.dim, 0.0
            for x, y in batch:
                err = sigmoid(sum(wi * xi for wi, xi in zip(w, x)) + b) - y
                grad_w = [g + err * xi for g, xi in zip(grad_w, x)]
                grad_b += err
            w = [wi - args.lr * g / len(batch) for wi, g in zip(w, grad_w)]
            b -= args.lr * grad_b / len(batch)
            step += 1
            if step % 5 == 0:
                loss, acc = evaluate(w, b, batch)
                metrics.log_metrics({"loss": round(loss, 5), "acc": round(acc, 4)}, step=step)
            time.sleep(args.step_time)
        val_loss, val_acc = evaluate(w, b, valid)
        # at the step the epoch ends (the x axis); the epoch number itself is no metric worth a panel
        metrics.log_metrics({"val_loss": round(val_loss, 5), "val_acc": round(val_acc, 4)}, step=step)
        print(f"epoch {epoch:3d}  step {step:5d}  val_loss {val_loss:.4f}  val_acc {val_acc:.3f}", flush=True)

    out = metrics.outputs_dir() / "model.json"
    out.write_text(json.dumps({"w": w, "b": b, "val_acc": val_acc, "hparams": vars(args)}, indent=1))
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
