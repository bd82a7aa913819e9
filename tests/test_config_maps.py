"""Maps inside records (`env`, `build-args`, `inputs`, `ai-super-computer`) merge key by key across
layers, as records do, and config.show cites each key's own file:line (issue 16, "Also")."""

from __future__ import annotations

import io
import json
from pathlib import Path

from singkit.config import EnvRef, load_config
from singkit.environment import Environment

PROJECT = """\
setups:
  s:
    env:
      LOG_LEVEL: info
      HF_TOKEN: $env:HF_TOKEN
      WANDB_API_KEY: $env:WANDB_API_KEY
dockers:
  d:
    image: busybox
    build-args: {A: "1", B: "2"}
compute-targets:
  t:
    service: local
    env: {FROM_PROJECT: "yes"}
    inputs: {data: "azureml://datastores/ds/paths/a"}
"""

USER = """\
setups:
  s:
    env: {LOG_LEVEL: debug, MINE: "1"}
dockers:
  d:
    build-args: {B: "3"}
compute-targets:
  t:
    env: {FROM_USER: "yes"}
    inputs: {more: "azureml://datastores/ds/paths/b"}
"""


def setup_project(tmp_path: Path) -> Environment:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "singkit.yaml").write_text(PROJECT)
    user = tmp_path / "home" / ".config" / "singkit" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text(USER)
    return Environment(project_root=tmp_path, environ={"HOME": str(tmp_path / "home")},
                       stdout=io.StringIO(), stderr=io.StringIO())


def test_a_user_layer_map_adds_and_overrides_keys_without_dropping_the_projects(tmp_path):
    config = load_config(setup_project(tmp_path))
    env = config.setup("s")["env"]
    assert env == {"LOG_LEVEL": "debug", "HF_TOKEN": "$env:HF_TOKEN", "WANDB_API_KEY": "$env:WANDB_API_KEY", "MINE": "1"}
    assert isinstance(env["HF_TOKEN"], EnvRef) and env["HF_TOKEN"].line == 5  # the reference still knows its line
    assert config.docker("d")["build-args"] == {"A": "1", "B": "3"}
    target = config.target("t")
    assert target["env"] == {"FROM_PROJECT": "yes", "FROM_USER": "yes"}
    assert set(target["inputs"]) == {"data", "more"}
    assert config.where("setups", "s", "env", "HF_TOKEN").file.name == "singkit.yaml"
    assert config.where("setups", "s", "env", "LOG_LEVEL").file.name == "config.yaml"


def test_nested_maps_merge_too(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "singkit.yaml").write_text(
        "compute-targets:\n  t:\n    service: local\n    ai-super-computer: {interactive: false, tensorboardLogDirectory: /x}\n")
    extra = tmp_path / "extra.yaml"
    extra.write_text("compute-targets:\n  t:\n    ai-super-computer: {interactive: true}\n")
    env = Environment(project_root=tmp_path, environ={"HOME": str(tmp_path / "home"), "SINGKIT_CONFIG": str(extra)},
                      stdout=io.StringIO(), stderr=io.StringIO())
    assert load_config(env).target("t")["ai-super-computer"] == {"interactive": True, "tensorboardLogDirectory": "/x"}


def test_config_show_cites_each_key_of_a_merged_map(tmp_path):
    from clirunner import cli

    setup_project(tmp_path)
    home = {"HOME": str(tmp_path / "home")}
    result = cli(["config.show", "--setup=s", "--json"], cwd=tmp_path, env=home)
    assert result.returncode == 0, result.stderr
    keys = json.loads(result.stdout)["setups.s"]["env"]["keys"]
    assert keys["HF_TOKEN"] == {"value": "$env:HF_TOKEN", "from": "configs/singkit.yaml:5"}
    assert keys["LOG_LEVEL"] == {"value": "debug", "from": "home/.config/singkit/config.yaml:3"}
    assert keys["MINE"]["from"] == "home/.config/singkit/config.yaml:3"
    table = cli(["config.show", "--setup=s"], cwd=tmp_path, env=home)
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split()[-1] for line in table.stdout.splitlines()[2:] if line.strip()}
    assert rows["env.WANDB_API_KEY"] == "configs/singkit.yaml:6"
    assert rows["env.LOG_LEVEL"] == "home/.config/singkit/config.yaml:3"
