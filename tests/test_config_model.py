"""Layering, provenance, write-back fidelity, the JSON Schema, and start-up weight."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobtools import make_env
from singkit.config import load_config, resolve_secret
from singkit.config.schema import json_schema
from singkit.environment import Environment
from singkit.exceptions import ConfigError, UsageError

ROOT = Path(__file__).resolve().parents[1]

PROJECT = """\
# project config — keep this comment
general:
  experiment: proj   # trailing comment
dockers:
  py:
    image: "python:3.11"     # quoted on purpose
    post_sing_steps:          # XT spelling
      - RUN echo one
      - RUN echo two
    sing_wrap: true
compute-targets:
  eus:
    service: local
    nodes: 1
    sla: premium
"""


def config_env(tmp_path: Path, environ: dict[str, str] | None = None) -> Environment:
    """HOME tmp_path/home and `environ`, no variable of this process's: no user config leaks in."""
    return make_env(tmp_path, home=tmp_path / "home", inherit=False, **(environ or {}))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_layers_merge_key_by_key_with_provenance(tmp_path):
    project = write(tmp_path / "configs" / "singkit.yaml", PROJECT)
    user = write(tmp_path / "home" / ".config" / "singkit" / "config.yaml", "compute-targets:\n  eus:\n    nodes: 2\n")
    extra1 = write(tmp_path / "a.yaml", "compute-targets:\n  eus:\n    sla: basic\n  mine:\n    service: local\n")
    extra2 = write(tmp_path / "b.yaml", "compute-targets:\n  eus:\n    sla: standard\n")
    env = config_env(tmp_path, {"SINGKIT_CONFIG": f"{extra1}:{extra2}"})
    config = load_config(env)
    target = config.target("eus")
    assert (target["nodes"], target["sla"], target["service"]) == (2, "standard", "local")
    assert config.where("compute-targets", "eus", "nodes").file == user
    assert config.where("compute-targets", "eus", "sla").file == extra2
    assert config.where("compute-targets", "eus", "service").file == project
    assert config.where("compute-targets", "eus", "service").line == 13
    assert "mine" in config.targets and config.target("local")["service"] == "local"  # built-ins stay
    docker = config.docker("py")
    assert docker["post-sing-steps"] == ["RUN echo one", "RUN echo two"] and docker["sing-wrap"] is True


def test_unknown_record_suggests(tmp_path):
    write(tmp_path / "configs" / "singkit.yaml", PROJECT)
    with pytest.raises(UsageError, match="did you mean `py`"):
        load_config(config_env(tmp_path)).docker("pyy")


def test_write_back_keeps_comments_order_and_quoting(tmp_path):
    project = write(tmp_path / "configs" / "singkit.yaml", PROJECT)
    config = load_config(config_env(tmp_path))
    digest = "sha256:" + "ab" * 32
    assert config.write_back("dockers", "py", "sha256", digest) == project
    text = project.read_text()
    assert text == PROJECT.replace("    sing_wrap: true\n", f"    sing_wrap: true\n    sha256: {digest}\n")
    # an existing key is replaced in place, under the spelling the user wrote
    load_config(config_env(tmp_path)).write_back("dockers", "py", "sing-wrap", False)
    assert "    sing_wrap: false\n    sha256:" in project.read_text()
    assert load_config(config_env(tmp_path)).docker("py")["sha256"] == digest


def test_write_back_goes_to_the_defining_layer(tmp_path):
    project = write(tmp_path / "configs" / "singkit.yaml", PROJECT)
    extra = write(tmp_path / "mine.yaml", "# mine\ndockers:\n  mydocker: {image: 'busybox:1', sing-wrap: false}\n")
    config = load_config(config_env(tmp_path, {"SINGKIT_CONFIG": str(extra)}))
    before = project.read_text()
    config.write_back("dockers", "mydocker", "sha256", "sha256:" + "0" * 64)
    assert project.read_text() == before
    assert extra.read_text() == "# mine\ndockers:\n  mydocker: {image: 'busybox:1', sing-wrap: false, sha256: sha256:" + "0" * 64 + "}\n"


def test_write_back_of_shipped_config_is_byte_identical_but_for_the_key(tmp_path):
    shipped = (ROOT / "configs" / "singkit.yaml").read_text()
    project = write(tmp_path / "configs" / "singkit.yaml", shipped)
    load_config(config_env(tmp_path)).write_back("dockers", "pytorch", "sha256", "sha256:" + "f" * 64)
    after = project.read_text().splitlines()
    before = shipped.splitlines()
    added = [line for line in after if line not in before]
    assert added == ["    sha256: sha256:" + "f" * 64]
    assert [line for line in after if line in before] == before


def test_secrets_resolve_only_when_used_and_name_the_variable(tmp_path):
    write(tmp_path / "configs" / "singkit.yaml",
          "external-services:\n  reg:\n    type: registry\n    login-server: r\n    password: $env:MY_PW\n")
    config = load_config(config_env(tmp_path))  # loading needs no variable
    password = config.service("reg")["password"]
    assert resolve_secret(password, {"MY_PW": "x1"}) == "x1"
    with pytest.raises(ConfigError) as caught:
        resolve_secret(password, {})
    assert str(caught.value).endswith("singkit.yaml:5:15: environment variable MY_PW is not set; export MY_PW=… (the value is never printed)")
    shown = config.provenance("external-services", "reg")
    assert shown["password"][0] == "$env:MY_PW"


def test_literal_secret_allowed_in_user_layer_but_masked(tmp_path):
    write(tmp_path / "configs" / "singkit.yaml", "external-services:\n  reg:\n    type: registry\n    login-server: r\n")
    write(tmp_path / "home" / ".config" / "singkit" / "config.yaml", "external-services:\n  reg:\n    password: hunter2\n")
    config = load_config(config_env(tmp_path))
    assert config.service("reg")["password"] == "hunter2"
    assert config.provenance("external-services", "reg")["password"][0] == "******"


def test_config_show_json_masks_and_cites(tmp_path):
    from clirunner import cli

    write(tmp_path / "configs" / "singkit.yaml", "external-services:\n  reg:\n    type: registry\n    login-server: r\n")
    write(tmp_path / "home" / ".config" / "singkit" / "config.yaml", "external-services:\n  reg:\n    password: hunter2\n")
    result = cli(["config.show", "--service=reg", "--json"], cwd=tmp_path, env={"HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["external-services.reg"]
    assert data["password"] == {"value": "******", "from": "home/.config/singkit/config.yaml:3"}
    assert data["login-server"]["from"] == "configs/singkit.yaml:4"
    assert "hunter2" not in result.stdout + result.stderr


def test_shipped_schema_is_current_and_named_in_a_modeline():
    shipped = json.loads((ROOT / "configs" / "singkit.schema.json").read_text())
    assert shipped == json_schema(), "run `invoke config.schema --out configs/singkit.schema.json`"
    assert (ROOT / "configs" / "singkit.yaml").read_text().startswith("# yaml-language-server: $schema=singkit.schema.json")


def test_schema_accepts_shipped_config_and_rejects_a_typo():
    import jsonschema
    from ruamel.yaml import YAML

    shipped = YAML(typ="safe").load((ROOT / "configs" / "singkit.yaml").read_text())
    jsonschema.validate(shipped, json_schema())
    shipped["compute-targets"]["eus-v100"]["vm_sise"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(shipped, json_schema())


HEAVY = ("azure", "docker", "pandas", "matplotlib", "seaborn", "numpy")


@pytest.mark.parametrize("argv", [["--list"], ["config.validate"], ["config.show", "--target=local"]])
def test_cli_start_imports_nothing_heavy(argv):
    probe = (
        "import sys, runpy; sys.argv = ['invoke'] + %r\n"
        "try:\n    runpy.run_module('invoke', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & set(%r))\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    ) % (argv, HEAVY)
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "HEAVY=\n" in result.stderr, result.stderr[-2000:]


def test_user_skus_refine_the_shipped_catalog_whatever_the_spelling(tmp_path):
    write(tmp_path / "configs" / "singkit.yaml",
          "skus:\n  Singularity.nd40rs_v2:\n    price-per-hour: 1.5\n  MyBox_v1:\n    gpus: 2\n")
    skus = load_config(config_env(tmp_path)).skus
    assert skus["ND40rs_v2"]["price-per-hour"] == 1.5 and skus["ND40rs_v2"]["gpus"] == 8
    assert "Singularity.nd40rs_v2" not in skus and skus["MyBox_v1"] == {"gpus": 2}


def test_secret_env_values_from_the_user_layer_are_masked(tmp_path):
    write(tmp_path / "configs" / "singkit.yaml", "setups:\n  s:\n    env: {LOG_LEVEL: info, HF_TOKEN: $env:HF_TOKEN}\n")
    write(tmp_path / "home" / ".config" / "singkit" / "config.yaml", "setups:\n  s:\n    env: {LOG_LEVEL: info, HF_TOKEN: hf_literal}\n")
    shown = load_config(config_env(tmp_path)).provenance("setups", "s")["env"][0]
    assert shown == {"LOG_LEVEL": "info", "HF_TOKEN": "******"}


def test_write_back_follows_a_symlinked_config(tmp_path):
    real = write(tmp_path / "dotfiles" / "singkit.yaml", "dockers:\n  d: {image: 'busybox:1'}\n")
    link = tmp_path / "home" / ".config" / "singkit" / "config.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    load_config(config_env(tmp_path)).write_back("dockers", "d", "sha256", "sha256:" + "1" * 64)
    assert link.is_symlink() and "sha256:" + "1" * 64 in real.read_text()
