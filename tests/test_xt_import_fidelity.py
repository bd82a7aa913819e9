"""What an XT config means, carried exactly: `NAME==*` pins (XT's "the version on my machine"),
setup pip entries pip would refuse (found at validate, at their line), XT's storage records, and
the SLA of a target that names none (xtlib 0.0.342 backends/backend_singularity.py)."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from clirunner import cli, run_singkit

STAR = """setups:
  s:
    pip-packages: ["torch==2.1", "xtlib==*", "tabulate==*"]
"""


def imported(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> tuple[dict, str, str]:
    source = tmp_path / "xt_config.yaml"
    source.write_text(text)
    out = tmp_path / "configs" / "singkit.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    # PYTHONPATH (a package installed where the import runs) needs an interpreter of its own
    run = run_singkit if env and "PYTHONPATH" in env else cli
    done = run(["config.import-xt", str(source), f"--out={out}", "--force"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    return YAML(typ="safe").load(out.read_text()), out.read_text(), done.stderr


def fake_install(root: Path, name: str, version: str) -> str:
    """A package's installed metadata (what importlib.metadata reads, as XT does): a folder for PYTHONPATH."""
    info = root / "site" / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return str(root / "site")


def test_star_pins_take_the_version_installed_where_the_import_runs(tmp_path):
    from importlib.metadata import version as installed

    config, text, messages = imported(tmp_path, STAR)
    # tabulate is installed here (singkit needs it); xtlib is not: unpinned, never `==*`
    version = installed("tabulate")
    assert config["setups"]["s"]["pip"] == ["torch==2.1", "xtlib", f"tabulate=={version}"]
    assert "==*" not in text
    assert f"`tabulate==*` means the version installed on the submitting machine in XT (pip refuses `==*`): pinned to {version}" in messages
    assert "xtlib is not installed where this import ran, so it is written unpinned" in messages
    # with xtlib 0.0.342 installed where the import runs, that version is written, as XT's runner did
    site = fake_install(tmp_path, "xtlib", "0.0.342")
    config, _, messages = imported(tmp_path, STAR, env={"PYTHONPATH": site})
    assert config["setups"]["s"]["pip"][1] == "xtlib==0.0.342" and "pinned to 0.0.342" in messages


def test_a_pip_entry_pip_would_refuse_is_an_error_at_its_line(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "singkit.yaml").write_text(
        "setups:\n  s:\n    pip-packages:\n      - torch==2.1\n      - \"xtlib==*\"\n      - -r requirements.txt\n"
        "      - git+https://github.com/microsoft/ExperimentTools\n      - numpy<2; python_version>\"3.8\"\n"
        "      - torch torchvision\n")
    done = cli(["config.validate"], cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("configs/")]
    assert lines == [
        "configs/singkit.yaml:5:9: setups.s.pip: `xtlib==*` is XT's \"the version installed on my machine\", which pip "
        "refuses; write `xtlib==<version>` (e.g. the one `pip show xtlib` names) or `xtlib` unpinned",
        "configs/singkit.yaml:9:9: setups.s.pip: `torch torchvision` is not a requirement pip can read (Expected semicolon "
        "(after name with no version specifier) or end); write NAME, NAME==VERSION or NAME>=VERSION (PEP 508)"]
    # a target using the setup refuses to submit with the same line (the job would fail after it queued)
    (tmp_path / "configs" / "singkit.yaml").write_text(
        "setups:\n  s: {pip: [\"xtlib==*\"]}\ncompute-targets:\n  here: {service: local, setup: s}\n")
    refused = cli(["job.submit", "--target=here", "--cmd", "true"], cwd=tmp_path)
    assert refused.returncode == 2 and "configs/singkit.yaml:2:13: setups.s.pip: `xtlib==*`" in refused.stderr, refused.stderr


def test_a_dry_run_names_the_secret_variables_it_will_add_never_their_values(tmp_path):
    text = ("external-services:\n  ws: {type: singularity, subscription-id: 00000000-0000-4000-8000-000000005ab5, "
            "resource-group: rg, user-identity-id: x, user-identity-client-id: y}\n"
            "dockers:\n  d: {image: \"research/torch:2.1@sha256:" + "cd" * 32 + "\"}\n"
            "compute-targets:\n  sing: {service: ws, compute: vc1, vm-size: NC6_v3, sla: basic, docker: d}\n"
            "general:\n  env-vars: {WANDB_API_KEY: $$WANDB_API_KEY, WANDB_PROJECT: bb, HF_TOKEN: hf_literal}\n")
    imported(tmp_path, text)
    env = {"WANDB_API_KEY": "wandb-value-1", "HF_TOKEN": "hf-value-2"}
    done = cli(["job.submit", "--target=sing", "--dry-run", "--cmd", "python train.py"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    job = done.stdout.strip()
    assert (f"{job}: secret variables added at submit, not written into the spec: HF_TOKEN ($env:HF_TOKEN), "
            "WANDB_API_KEY ($env:WANDB_API_KEY)") in done.stderr.splitlines()
    spec = (tmp_path / ".singkit" / "jobs" / job / "azureml" / f"{job}.1.yaml").read_text()
    assert "WANDB_PROJECT: bb" in spec and "WANDB_API_KEY" not in spec  # secrets are never written
    for value in env.values():
        assert value not in done.stderr + done.stdout + spec
