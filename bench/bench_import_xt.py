"""Benchmark (issue 11): `invoke config.import-xt` of a generated 300-target XT config.

Goal: the import takes under 1 s, as a user runs it (a fresh `.venv/bin/invoke` process, in a temp
folder with its own HOME); printed with its ratio against `invoke --version` measured in the same
run, round by round, so a loaded machine shows as such. The generated config is XT's own shape
(xtlib 0.0.342 factory_config.yaml records): Singularity targets on three workspaces and their
virtual clusters, wrapped docker records with a base sha256, setups with activate/pip, Batch
targets (left out, with a note each), general.env-vars with `$$NAME`, and nodes > 1 here and there.

    .venv/bin/python bench/bench_import_xt.py [--rounds 9] [--targets 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INVOKE = str(Path(sys.executable).with_name("invoke"))
GOAL_SECONDS = 1.0
SIZES = ["ND12_H100_v5", "ND96_H100_v5", "NC24ad_A100_v4", "ND12_v4", "ND96_v4", "ND5_v2g1", "ND96isr_MI300X_v5"]
CLUSTERS = ["msrresrchvc", "msroctovc", "msrresrchbasicvc", "msroctobasicvc"]


def xt_config(targets: int) -> str:
    """An XT config in XT's flow style, `targets` compute targets (every tenth an Azure Batch one)."""
    lines = ["external-services:"]
    for w in range(3):
        lines.append(f'    ws{w}: {{type: "singularity", subscription-id: "3f2a9c1e-7b4d-4e8a-9c21-5d6e7f8a9b0{w}", '
                     f'resource-group: "rg{w}", user-identity-client-id: "c94f51a6-5fb9-4a73-b8b2-4e6e722fd0f{w}"}}')
    lines += [f'    {c}: {{type: "virtual_cluster", subscription-id: "notused", resource-group: "notused"}}' for c in CLUSTERS]
    lines += ['    batchsvc: {type: "batch", url: "https://b.eastus.batch.azure.com", azure-login: true}',
              '    acr: {type: "registry", login-server: "myacr.azurecr.io", username: "myacr", password: "$vault"}',
              "dockers:"]
    for d in range(50):
        lines.append(f'    img{d}: {{registry: "acr", image: "team/torch{d}:2.{d}", sha256: "{d:02x}' + "ab" * 31 +
                     '", sing-wrap: true, post-sing-steps: ["RUN pip install xtlib"]}')
    lines += ["setups:", '    singd: {activate: "$call conda activate $current_conda_env", pip-packages: ["xtlib==*"], use-sudo: true}',
              "compute-targets:"]
    for t in range(targets):
        if t % 10 == 9:
            lines.append(f'    t{t:03d}: {{service: "batchsvc", vm-size: "Standard_NC6s_v3", azure-image: "dsvm22", nodes: 1, low-pri: true}}')
            continue
        sla = "" if t % 3 == 0 else f', sla: {("premium", "standard")[t % 2]}'
        lines.append(f'    t{t:03d}: {{service: "ws{t % 3}", compute: "{CLUSTERS[t % 4]}", vm-size: "{SIZES[t % len(SIZES)]}", '
                     f'locations: ["eastus"], nodes: {1 + (t % 5 == 0)}{sla}, setup: "singd", docker: "img{t % 50}"}}')
    lines += ["general:", '    experiment: "exp-$username"', "    maximize-metric: false", '    primary-metric: "dev-loss"',
              '    env-vars: {WANDB_API_KEY: $$WANDB_API_KEY, WANDB_PROJECT: "bench"}', '    workspace: "ws1"']
    return "\n".join(lines) + "\n"


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[1:])} failed (exit {done.returncode}):\n{done.stderr.decode()[-1500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="import / --version pairs")
    parser.add_argument("--targets", type=int, default=300, help="compute targets in the generated XT config")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-import-xt-"))
    try:
        source = root / "xt_config.yaml"
        source.write_text(xt_config(args.targets))
        (root / "tasks.py").write_text("from singkit.tasks import ns  # noqa: F401\n")  # as the repo's tasks.py
        env = {k: v for k, v in os.environ.items() if k not in ("SINGKIT_CONFIG", "SINGKIT_HOME", "XDG_CACHE_HOME")}
        env["HOME"] = str(root / "home")
        out = root / "singkit.yaml"
        version = [INVOKE, "--version"]
        convert = [INVOKE, "config.import-xt", str(source), f"--out={out}", "--force"]
        for argv in (version, convert):
            timed(argv, root, env)  # page cache and .pyc files
        carried = out.read_text().count("\n    service: ")
        base, took = [], []
        for _ in range(args.rounds):
            base.append(timed(version, root, env))
            took.append(timed(convert, root, env))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    med = statistics.median
    print(f"config.import-xt of a {args.targets}-target XT config ({carried} targets carried; "
          f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
    print(f"{'measurement':34} {'runs':>4} {'best s':>8} {'median s':>9}")
    for name, values in (("invoke --version", base), ("invoke config.import-xt", took)):
        print(f"{name:34} {len(values):4} {min(values):8.3f} {med(values):9.3f}")
    print(f"import: {med(took):.3f} s, {med(took) / med(base):.2f} × invoke --version (goal < {GOAL_SECONDS:.0f} s) "
          f"-> {'MET' if med(took) < GOAL_SECONDS else 'MISSED'}")
    return 0 if med(took) < GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
