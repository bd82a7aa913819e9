"""Malformed configs: each mistake is one line `file:line:col: message`, exit 2, no traceback, file untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from clirunner import cli

GOOD = """\
external-services:
  reg:
    type: registry
    login-server: 127.0.0.1:5000
    username: me
    password: $env:REG_PASSWORD
dockers:
  py:
    image: python:3.11
    registry: reg
compute-targets:
  eus:
    service: local
    docker: py
setups:
  s1:
    pip: [numpy]
"""

# (name, config text, expected line, expected col, words the message must contain)
CASES = [
    ("bad yaml", "compute-targets:\n  eus: {service: local\n", 3, 1, ["invalid YAML"]),
    ("bad indent", "dockers:\n  py:\n    image: a\n   registry: b\n", 4, 4, ["invalid YAML", "indentation does not line up"]),
    ("unknown key", "compute-targets:\n  eus:\n    service: local\n    vm_sise: ND40rs_v2\n", 4, 5, ["unknown key", "`vm_sise`", "did you mean `vm-size`?"]),
    ("unknown section", "compute_target:\n  eus: {service: local}\n", 1, 1, ["unknown section", "did you mean `compute-targets`?"]),
    ("wrong type", "compute-targets:\n  eus:\n    service: local\n    nodes: two\n", 4, 12, ["must be an integer", "`two`"]),
    ("bad enum", "compute-targets:\n  eus:\n    service: local\n    sla: gold\n", 4, 10, ["`gold` is not a valid sla", "`premium`, `standard`, `basic`"]),
    ("bad service type", "external-services:\n  x:\n    type: philly\n", 3, 11, ["`philly` is not a valid type", "`registry`"]),
    ("missing required", "external-services:\n  reg:\n    type: registry\n    username: me\n", 2, 3, ["`external-services.reg` (type registry) needs `login-server`"]),
    ("dangling docker", GOOD.replace("    docker: py", "    docker: pytorhc"), 14, 13, ["names no docker record", "`docker: pytorhc`"]),
    ("dangling service", GOOD.replace("    service: local", "    service: lokal"), 13, 14, ["names no external service", "did you mean `local`?"]),
    ("dangling registry", GOOD.replace("    registry: reg", "    registry: regg"), 10, 15, ["names no registry record", "did you mean `reg`?"]),
    ("duplicate key", "compute-targets:\n  eus:\n    service: local\n    nodes: 1\n    nodes: 2\n", 5, 5, ["duplicate key `nodes`", "first defined on line 4"]),
    ("literal secret", GOOD.replace("$env:REG_PASSWORD", "hunter2-literal"), 6, 15, ["literal secret", "$env:NAME"]),
    ("bad env ref", GOOD.replace("$env:REG_PASSWORD", "$env:REG-PASSWORD"), 6, 15, ["not a valid reference"]),
    ("xt vault", GOOD.replace("$env:REG_PASSWORD", "$vault"), 6, 15, ["`$vault`", "import-xt"]),
    ("bad sha256", "dockers:\n  py:\n    image: a\n    sha256: abc\n", 4, 13, ["`sha256` must be `sha256:`"]),
    ("minimum", "compute-targets:\n  eus:\n    service: local\n    nodes: 0\n", 4, 12, ["at least 1"]),
    ("both spellings of a key", "compute-targets:\n  a:\n    service: local\n    vm-size: ND40rs_v2\n    vm_size: NC6_v3\n",
     5, 5, ["`vm_size` and `vm-size` are one key", "keep one"]),
    ("both spellings of a section", "compute-targets:\n  a:\n    service: local\ncompute_targets:\n  b:\n    service: local\n",
     4, 1, ["`compute_targets` and `compute-targets` are one key"]),
    # submit would refuse each of these; validate says so first (issue 9: validates exactly when it submits)
    ("docker record without image", "dockers:\n  py:\n    sing-wrap: false\n", 3, 5, ["`dockers.py` needs `image:`"]),
    ("unreadable image", "dockers:\n  py:\n    image: \"Not An::Image\"\n", 3, 12, ["`Not An::Image` is not an image reference"]),
    ("docker target without docker", "compute-targets:\n  a:\n    service: docker\n", 3, 14, ["runs on docker but names no image", "`docker: <a record in dockers>`"]),
    ("registered environment on docker", "compute-targets:\n  a:\n    service: docker\n    docker: env\n"
     "dockers:\n  env:\n    image: azureml:sklearn:3\n", 4, 13, ["is a registered Azure ML environment, which only a Singularity"]),
    ("boolean processes", "compute-targets:\n  a:\n    service: local\n    processes-per-node: true\n", 4, 25, ["not `true`"]),
    ("zero processes", "compute-targets:\n  a:\n    service: local\n    processes-per-node: 0\n", 4, 25, ["whole number of at least 1 or `gpus`, not `0`"]),
    ("negative processes", "compute-targets:\n  a:\n    service: docker\n    docker: py\n    processes-per-node: -1\n"
     "dockers:\n  py:\n    image: python:3.11\n", 5, 25, ["not `-1`"]),
    ("processes in words", "compute-targets:\n  a:\n    service: local\n    processes-per-node: lots\n", 4, 25, ["not `lots`"]),
    ("quoted processes", "compute-targets:\n  a:\n    service: local\n    processes-per-node: \"3\"\n", 4, 25, ["quoted text", "without quotes"]),
    ("no choices to list", "dockers:\n  py:\n    image: a\n    registry: acr\n", 4, 15, ["names no registry record (type: registry)"]),
]


def write_project(root: Path, text: str) -> Path:
    config = root / "configs" / "singkit.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(text)
    return config


@pytest.mark.parametrize("name,text,line,col,words", CASES, ids=[c[0] for c in CASES])
def test_mistake_is_one_precise_line(tmp_path, name, text, line, col, words):
    config = write_project(tmp_path, text)
    before = config.read_bytes()
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configs/singkit.yaml:{line}:{col}: "), lines[0]
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert config.read_bytes() == before


def test_every_problem_is_listed(tmp_path):
    write_project(tmp_path, "compute-targets:\n  a:\n    service: local\n    sla: gold\n  b:\n    service: local\n    nodez: 1\n")
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 2
    assert [ln.split(":")[1] for ln in result.stderr.strip().splitlines()] == ["4", "7"]


def test_verbose_shows_traceback(tmp_path):
    write_project(tmp_path, "compute-targets:\n  a:\n    sla: gold\n")
    result = cli(["config.validate", "--verbose"], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_missing_env_variable_names_it_and_its_line(tmp_path):
    write_project(tmp_path, GOOD)
    result = cli(["config.validate", "--secrets"], cwd=tmp_path, env={"REG_PASSWORD": ""})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "configs/singkit.yaml:6:15: environment variable REG_PASSWORD is not set; "
        "export REG_PASSWORD=… (the value is never printed)")
    ok = cli(["config.validate", "--secrets"], cwd=tmp_path, env={"REG_PASSWORD": "s3cret-value"})
    assert ok.returncode == 0, ok.stderr
    assert "s3cret-value" not in ok.stderr + ok.stdout


def test_mistake_in_user_layer_points_at_that_file(tmp_path):
    write_project(tmp_path, GOOD)
    user = tmp_path / "home" / ".config" / "singkit" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("compute-targets:\n  eus:\n    priority: urgent\n")
    result = cli(["config.validate"], cwd=tmp_path, env={"HOME": str(tmp_path / "home")})
    assert result.returncode == 2
    assert result.stderr.startswith("home/.config/singkit/config.yaml:3:15: `urgent` is not a valid priority")


def test_unknown_target_suggests(tmp_path):
    write_project(tmp_path, GOOD)
    result = cli(["config.show", "--target=euss"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: no compute target named `euss`; did you mean `eus`?"


def test_shipped_config_is_valid(tmp_path):
    root = Path(__file__).resolve().parents[1]
    result = cli(["config.validate"], cwd=root, env={"HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr


def test_overlay_key_checked_against_merged_record_type(tmp_path):
    write_project(tmp_path, GOOD)
    user = tmp_path / "home" / ".config" / "singkit" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("external-services:\n  reg:\n    pasword: x\n")
    result = cli(["config.validate"], cwd=tmp_path, env={"HOME": str(tmp_path / "home")})
    assert result.returncode == 2
    assert result.stderr.strip() == "home/.config/singkit/config.yaml:3:5: unknown key `pasword` for a registry record; did you mean `password`?"


def test_a_config_that_passed_once_is_checked_again_after_an_edit(tmp_path):
    config = write_project(tmp_path, GOOD)
    assert cli(["config.validate"], cwd=tmp_path).returncode == 0
    assert list((tmp_path / ".cache" / "singkit" / "validated").iterdir())  # the pass was remembered
    config.write_text(GOOD.replace("service: local", "service: local\n    sla: gold"))
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 2 and "`gold` is not a valid sla" in result.stderr


def test_literal_token_in_a_committed_env_map_is_refused(tmp_path):
    write_project(tmp_path, GOOD + "    env:\n      WANDB_API_KEY: abc123\n      LOG_LEVEL: info\n")
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("configs/singkit.yaml:19:22: `WANDB_API_KEY` holds a literal secret")


def test_an_unknown_singularity_size_warns_and_strict_refuses(tmp_path):
    write_project(tmp_path, """\
external-services:
  ws: {type: aml, subscription-id: 22da88f6-1210-4de2-a5a3-da4c7c2a1213, resource-group: r}
compute-targets:
  eus:
    service: ws
    compute: vc
    vm-size: ND40rs_v9
    image-version: pytorch
  ok:
    service: ws
    compute: vc
    vm-size: Singularity.nd40rs_v2
    image-version: pytorch
""")
    warned = cli(["config.validate"], cwd=tmp_path)
    line = ("configs/singkit.yaml:7:14: vm-size `ND40rs_v9` is not in singkit's instance-type catalog; nearest known: "
            "`ND40rs_v2`, `ND40r_v2`, `ND40s_v2g1` (the virtual cluster decides: `invoke config.skus --target=…` asks it)")
    assert warned.returncode == 0 and warned.stderr.splitlines()[0] == "warning: " + line
    # `ok` is a Singularity job only because its size is Singularity's: validate says so (configcheck.kind_notes)
    assert warned.stderr.splitlines()[1].startswith("note: configs/singkit.yaml:10:5: compute-targets.ok is a Singularity "
                                                    "job on virtual cluster `vc` (vm-size Singularity.nd40rs_v2 is a")
    assert warned.stderr.splitlines()[2].startswith("config ok (1 warning(s)): ")
    strict = cli(["config.validate", "--strict"], cwd=tmp_path)
    assert strict.returncode == 2 and [x for x in strict.stderr.splitlines() if not x.startswith("note: ")] == [line]


def test_no_choices_means_no_empty_list(tmp_path):
    write_project(tmp_path, "dockers:\n  py:\n    image: a\n    registry: acr\n")
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 2 and "expected one of" not in result.stderr, result.stderr


def test_cloud_keys_without_a_service_warn_that_the_target_runs_here(tmp_path):
    write_project(tmp_path, "compute-targets:\n  a:\n    vm-size: ND40rs_v2\n")
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("warning: configs/singkit.yaml:3:14: compute-targets.a has `vm-size:` but no `service:`")
    assert cli(["config.validate", "--strict"], cwd=tmp_path).returncode == 2
    write_project_again = tmp_path / "configs" / "singkit.yaml"
    write_project_again.write_text("compute-targets:\n  a:\n    service: local\n    vm-size: ND40rs_v2\n")
    quiet = cli(["config.validate"], cwd=tmp_path)
    assert quiet.returncode == 0 and "warning" not in quiet.stderr, quiet.stderr


def test_the_built_in_docker_target_is_not_a_mistake(tmp_path):
    write_project(tmp_path, "general:\n  experiment: e\n")
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr


@pytest.mark.parametrize("value", ["0", "lots", '"3"'])
def test_a_local_submit_refuses_what_validate_refuses(tmp_path, value):
    write_project(tmp_path, f"compute-targets:\n  a:\n    service: local\n    processes-per-node: {value}\n")
    result = cli(["job.submit", "--target=a", "--cmd=true", "--dry-run"], cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("configs/singkit.yaml:4:25: "), result.stderr


def test_a_general_key_blocks_only_the_commands_that_read_it(tmp_path):
    """A bad `credential:` is Singularity's; an unknown key in general blocks nothing; validate lists every one."""
    write_project(tmp_path, "general:\n  credential: bogus\n  nonsense: 1\ncompute-targets:\n  a:\n    service: local\n    sla: gold\n")
    checked = cli(["config.validate"], cwd=tmp_path)
    assert checked.returncode == 2 and [ln.split(":")[1] for ln in checked.stderr.splitlines()] == ["2", "3", "7"]
    local = cli(["job.submit", "--target=local", "--cmd=true", "--dry-run"], cwd=tmp_path)
    assert local.returncode == 0 and "`bogus` is not a valid credential" in local.stderr, local.stderr
    assert "(does not affect this command)" in local.stderr
    blocked = cli(["job.submit", "--target=a", "--cmd=true", "--dry-run"], cwd=tmp_path)
    assert blocked.returncode == 2 and blocked.stderr.startswith("configs/singkit.yaml:7:10: `gold`"), blocked.stderr


def test_a_general_key_every_command_reads_blocks_every_submit(tmp_path):
    write_project(tmp_path, "general:\n  code-dirs: src\n")
    result = cli(["job.submit", "--target=local", "--cmd=true", "--dry-run"], cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("configs/singkit.yaml:2:14: "), result.stderr


@pytest.mark.parametrize("where", ["target", "setup"])
def test_an_unset_variable_in_an_env_map_is_found_by_validate_and_located(tmp_path, where):
    env_map = "    env:\n      HF_TOKEN: $env:MY_HF_TOKEN\n"
    if where == "target":
        text, line = "compute-targets:\n  a:\n    service: local\n" + env_map, 5
    else:
        text, line = "compute-targets:\n  a:\n    service: local\n    setup: s\nsetups:\n  s:\n" + env_map, 8
    write_project(tmp_path, text)
    expected = f"configs/singkit.yaml:{line}:17: environment variable MY_HF_TOKEN is not set"
    checked = cli(["config.validate", "--secrets"], cwd=tmp_path, env={"MY_HF_TOKEN": ""})
    assert checked.returncode == 2 and checked.stderr.startswith(expected), checked.stderr
    submitted = cli(["job.submit", "--target=a", "--cmd=true"], cwd=tmp_path, env={"MY_HF_TOKEN": ""})
    assert submitted.returncode == 2 and submitted.stderr.startswith(expected), submitted.stderr
    ok = cli(["config.validate", "--secrets"], cwd=tmp_path, env={"MY_HF_TOKEN": "hf-secret-value"})
    assert ok.returncode == 0 and "hf-secret-value" not in ok.stderr + ok.stdout


def test_sla_and_priority_in_azures_own_case_are_fine(tmp_path):
    write_project(tmp_path, "compute-targets:\n  a:\n    service: local\n    sla: Premium\n    priority: HIGH\n")
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr


@pytest.mark.parametrize("command, warned", [
    ("torchrun --nproc_per_node 8 train.py", True),
    ("NCCL_DEBUG=INFO python -m torch.distributed.run --nproc_per_node 8 train.py", True),
    ("/opt/conda/bin/accelerate launch train.py", True),
    ("python train.py", False),
])
def test_a_launcher_with_several_processes_per_node_is_warned(tmp_path, command, warned):
    write_project(tmp_path, "compute-targets:\n  a:\n    service: local\n    processes-per-node: 2\n  one:\n    service: local\n")
    result = cli(["job.submit", "--target=a", f"--cmd={command}", "--dry-run"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ("warning: `" in result.stderr and "processes-per-node: 2 starts that many" in result.stderr) is warned, result.stderr
    single = cli(["job.submit", "--target=one", f"--cmd={command}", "--dry-run"], cwd=tmp_path)
    assert "starts its own workers" not in single.stderr


def test_a_service_hint_names_only_what_a_target_can_run_on(tmp_path):
    write_project(tmp_path, "external-services:\n  vc:\n    type: virtual_cluster\n    subscription-id: "
                  "11111111-2222-4333-8444-555555555555\n    resource-group: rg\ncompute-targets:\n  a:\n    service: singularity\n")
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.rstrip().endswith(
        "names no external service; expected one of: `docker`, `local`"), result.stderr


def test_validate_json_lists_errors_and_warnings_and_keeps_the_exit_code(tmp_path):
    import json

    write_project(tmp_path, "compute-targets:\n  a:\n    service: local\n    sla: gold\n  b:\n    vm-size: ND40rs_v2\n")
    result = cli(["config.validate", "--json"], cwd=tmp_path)
    assert result.returncode == 2
    shown = json.loads(result.stdout)  # JSON alone on stdout
    assert shown["ok"] is False
    assert [(p["line"], p["severity"]) for p in shown["problems"]] == [(4, "error"), (6, "warning")]
    assert shown["problems"][0]["file"] == "configs/singkit.yaml" and shown["problems"][0]["records"] == [["compute-targets", "a"]]
    write_project_again = tmp_path / "configs" / "singkit.yaml"
    write_project_again.write_text("compute-targets:\n  b:\n    vm-size: ND40rs_v2\n")
    fine = cli(["config.validate", "--json"], cwd=tmp_path)
    assert fine.returncode == 0 and json.loads(fine.stdout)["ok"] is True
    strict = cli(["config.validate", "--json", "--strict"], cwd=tmp_path)
    assert strict.returncode == 2 and [p["severity"] for p in json.loads(strict.stdout)["problems"]] == ["error"]
    write_project_again.write_text("compute-targets: {a: [\n")
    broken = cli(["config.validate", "--json"], cwd=tmp_path)
    assert broken.returncode == 2 and "invalid YAML" in json.loads(broken.stdout)["problems"][0]["message"]
