"""XT users are our users: both spellings of an XT config convert to a valid singkit config."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from clirunner import run_singkit

DATA = Path(__file__).parent / "data"


def convert(tmp_path: Path, name: str, problem: str | None = None):
    out = tmp_path / "configs" / "singkit.yaml"
    out.parent.mkdir(parents=True)
    result = run_singkit(["config.import-xt", str(DATA / name), f"--out={out}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    validated = run_singkit(["config.validate"], cwd=tmp_path)
    if problem is None:
        assert validated.returncode == 0 and "warning" not in validated.stderr, validated.stderr + out.read_text()
    else:  # exactly that one problem (and a warning for each image not pinned yet: image.wrap pins it)
        errors = [line for line in validated.stderr.splitlines()
                  if not (line.startswith("warning: ") and "is not pinned by digest yet" in line)]
        assert validated.returncode == 2 and len(errors) == 1 and problem in errors[0], validated.stderr
    return YAML(typ="safe").load(out.read_text()), out.read_text(), result.stderr


def test_import_2022_spellings(tmp_path):
    config, text, messages = convert(tmp_path, "xt_config_2022.yaml")
    assert config["compute-targets"] == {"eus-v100": {
        "service": "msrresrchws", "compute": "msrresrchvc", "vm-size": "ND40rs_v2", "location": "eastus",
        "nodes": 1, "sla": "premium", "setup": "singularity", "docker": "sing-pytorch"}}
    docker = config["dockers"]["sing-pytorch"]
    assert docker["post-sing-steps"] == ["RUN pip install torch==1.8.1"] and docker["sing-wrap"] is True
    assert docker["sha256"].startswith("sha256:5a1f")
    registry = config["external-services"]["xtsandboxcr"]
    assert registry["password"] == "$env:SINGKIT_XTSANDBOXCR_PASSWORD"
    assert config["external-services"]["msrresrchvc"]["type"] == "singularity"
    assert config["external-services"]["xtsandboxstorage"]["connection-string"] == "$env:SINGKIT_XTSANDBOXSTORAGE_CONNECTION_STRING"
    assert "phillyinstance" not in config["external-services"]
    assert config["setups"]["singularity"]["pip"] == ["torch==1.8.1", "xtlib==*"]
    assert "SINGKIT_XTSANDBOXCR_PASSWORD" in messages and "SINGKIT_XTSANDBOXCR_PASSWORD" in text.splitlines()[2]
    assert "philly" in messages  # what did not carry over is said
    assert text.startswith("# yaml-language-server: $schema=singkit.schema.json")
    assert config["general"] == {"experiment": "exper5"} and "general.workspace: not used" in messages


def test_import_does_not_overwrite_without_force(tmp_path):
    out = tmp_path / "configs" / "singkit.yaml"
    out.parent.mkdir(parents=True)
    out.write_text("# mine\n")
    args = ["config.import-xt", str(DATA / "xt_config_2024.yaml"), f"--out={out}"]
    refused = run_singkit(args, cwd=tmp_path)
    assert refused.returncode == 2 and "--force" in refused.stderr and out.read_text() == "# mine\n"
    assert run_singkit([*args, "--force"], cwd=tmp_path).returncode == 0
    assert "sandboxcr" in out.read_text()


def test_import_2024_spellings(tmp_path):
    # XT runs a target with no docker record in Singularity's default container; the import does not
    # say which one yet (the XT-import issue), so validate names the one thing left to fill in
    config, _text, messages = convert(tmp_path, "xt_config_2024.yaml",
                                      problem=":33:5: target `any-a100` has no `docker:` record and no `image-version:`")
    target = config["compute-targets"]["wus3-a100"]
    assert target["vm-size"] == "ND96amr_A100_v4" and target["location"] == "westus3" and target["sla"] == "standard"
    assert config["compute-targets"]["any-a100"]["locations"] == ["westus3", "eastus"]
    assert config["dockers"]["sing-torch2"]["post-sing-steps"] == ["RUN pip install torch==2.1"]
    assert config["external-services"]["sandboxcr"]["password"] == "$env:SINGKIT_SANDBOXCR_PASSWORD"
    assert config["setups"]["sing"]["pip"] == ["xtlib"]
    assert "export these before use: SINGKIT_SANDBOXCR_PASSWORD=…" in messages
