"""XT users are our users: XT configs (both spellings, XT's own factory config, a user's config over
it) convert to singkit configs that mean what they meant in XT, and say what they leave out."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from clirunner import cli

DATA = Path(__file__).parent / "data"
FACTORY = DATA / "xt_factory_config.yaml"  # xtlib 0.0.342's factory_config.yaml (source in its first lines)
MINE = DATA / "xt_config_mine.yaml"
SECRETS = {"USER": "alice", "WANDB_API_KEY": "w", "HF_TOKEN": "h", "SINGKIT_MYREGISTRY_PASSWORD": "p"}
UNPINNED = "is not pinned by digest yet"


def imported(tmp_path: Path, *names: str | Path, args: tuple[str, ...] = ()):
    """Import `names` (merged, in order) into tmp_path/configs/singkit.yaml: (config, text, stderr)."""
    out = tmp_path / "configs" / "singkit.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = ",".join(str(DATA / n) for n in names)
    result = cli(["config.import-xt", paths, f"--out={out}", "--force", *args], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return YAML(typ="safe").load(out.read_text()), out.read_text(), result.stderr


def validate(tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """config.validate's exit code and its lines, less the warnings about images not pinned yet."""
    done = cli(["config.validate"], cwd=tmp_path, env=env)
    return done.returncode, [line for line in done.stderr.splitlines() if UNPINNED not in line and not line.startswith("config ok")]


def dry_run(tmp_path: Path, target: str, env: dict[str, str]) -> dict:
    """The Azure ML job spec a dry run of `target` writes (the one azure-ai-ml would send)."""
    done = cli(["job.submit", f"--target={target}", "--dry-run", "--allow-unpinned", "--cmd", "python train.py"],
                       cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    job = done.stdout.strip()
    return YAML(typ="safe").load((tmp_path / ".singkit" / "jobs" / job / "azureml" / f"{job}.1.yaml").read_text())


def test_import_2022_spellings(tmp_path):
    config, text, messages = imported(tmp_path, "xt_config_2022.yaml")
    assert validate(tmp_path) == (0, [])
    assert config["compute-targets"] == {"eus-v100": {
        "service": "msrresrchws", "compute": "msrresrchvc", "vm-size": "ND40rs_v2", "location": "eastus",
        "nodes": 1, "sla": "premium", "setup": "singularity", "docker": "sing-pytorch"}}
    docker = config["dockers"]["sing-pytorch"]
    assert docker["post-sing-steps"] == ["RUN pip install torch==1.8.1"] and docker["sing-wrap"] is True
    # XT's sha256 of a wrapped record pins the image it wraps: the base pin, not singkit's sha256
    assert docker["image"] == "amlt-sing/pytorch-1.8.0@sha256:5a1f6b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
    assert "sha256" not in docker
    registry = config["external-services"]["xtsandboxcr"]
    assert registry["password"] == "$env:SINGKIT_XTSANDBOXCR_PASSWORD"
    # XT's storage record is XT's run store (account = the record's name, no container): left out, with the lines to
    # write to mirror singkit's store there; no invented container, no key written
    assert "xtsandboxstorage" not in config["external-services"] and "XTSANDBOXSTORAGE" not in text
    assert ("not carried: external-services.xtsandboxstorage: XT's run store (storage account xtsandboxstorage, "
            "https://xtsandboxstorage.blob.core.windows.net;") in messages
    assert "add `xtsandboxstorage: {type: storage, account-url: https://xtsandboxstorage.blob.core.windows.net, container: " \
           "<a container>}` and `general.store: xtsandboxstorage`" in messages
    assert "phillyinstance" not in config["external-services"]
    # XT's `xtlib==*` = the xtlib installed where XT ran; none is installed here, so it is unpinned
    assert config["setups"]["singularity"] == {"activate": "conda activate $CONDA_DEFAULT_ENV", "pip": ["torch==1.8.1", "xtlib"]}
    assert "setups.singularity.pip: `xtlib==*` means the version installed on the submitting machine in XT" in messages
    assert "SINGKIT_XTSANDBOXCR_PASSWORD" in messages and "SINGKIT_XTSANDBOXCR_PASSWORD" in text.splitlines()[2]
    assert "not carried: compute-targets.philly-rr1: Philly" in messages
    assert text.startswith("# yaml-language-server: $schema=singkit.schema.json")
    assert config["general"] == {"experiment": "exper5"} and "not carried: general.workspace: XT's workspace" in messages


def test_import_does_not_overwrite_without_force(tmp_path):
    out = tmp_path / "configs" / "singkit.yaml"
    out.parent.mkdir(parents=True)
    out.write_text("# mine\n")
    args = ["config.import-xt", str(DATA / "xt_config_2024.yaml"), f"--out={out}"]
    refused = cli(args, cwd=tmp_path)
    assert refused.returncode == 2 and "--force" in refused.stderr and out.read_text() == "# mine\n"
    assert cli([*args, "--force"], cwd=tmp_path).returncode == 0
    assert "sandboxcr" in out.read_text()


def test_import_2024_spellings(tmp_path):
    config, text, messages = imported(tmp_path, "xt_config_2024.yaml")
    # XT runs a target with no docker record in Singularity's default container, which singkit
    # does not name for you: validate names the one thing left to fill in
    line = text.splitlines().index("  any-a100:") + 2  # the record's first key
    assert validate(tmp_path) == (2, [f"configs/singkit.yaml:{line}:5: target `any-a100` has no `docker:` "
                                      "record and no `image-version:`; Singularity jobs run in an image pinned by digest (set "
                                      "`docker:`), a registered environment (a docker record with `image: azureml:NAME:VERSION`), "
                                      "or Singularity's curated image (set `image-version:`)"])
    target = config["compute-targets"]["wus3-a100"]
    assert target["vm-size"] == "ND96amr_A100_v4" and target["location"] == "westus3" and target["sla"] == "standard"
    assert target["nodes"] == 2 and "wus3-a100.nodes: 2 now means ONE 2-node distributed job" in messages
    assert "nodes: 2  # singkit: ONE 2-node distributed job; in XT 2 independent runs" in text
    assert config["compute-targets"]["any-a100"]["locations"] == ["westus3", "eastus"]
    assert config["dockers"]["sing-torch2"]["post-sing-steps"] == ["RUN pip install torch==2.1"]
    assert config["external-services"]["sandboxcr"]["password"] == "$env:SINGKIT_SANDBOXCR_PASSWORD"
    assert config["setups"]["sing"]["pip"] == ["xtlib"]
    assert "export these before use: SINGKIT_SANDBOXCR_PASSWORD=…" in messages


def test_nodes_as_runs_writes_one_node_and_the_submit_command(tmp_path):
    config, text, messages = imported(tmp_path, "xt_config_2024.yaml", args=("--xt-nodes=runs",))
    assert config["compute-targets"]["wus3-a100"]["nodes"] == 1
    command = "invoke job.submit --target=wus3-a100 --runs=2"
    assert f"submit as XT did: {command}" in messages and f"# Submit as XT did: {command}" in text
    assert f"nodes: 1  # XT's nodes: 2 (independent runs): `{command}`" in text
    refused = cli(["config.import-xt", str(DATA / "xt_config_2024.yaml"), "--xt-nodes=nodes"], cwd=tmp_path)
    assert refused.returncode == 2 and "--xt-nodes=nodes: give one of job, runs" in refused.stderr


def test_the_issues_small_inputs(tmp_path):
    config, text, messages = imported(tmp_path, "xt_issue11.yaml")
    docker = config["dockers"]["d"]
    assert docker == {"registry": "hub", "sing-wrap": True, "image": "someuser/pytorch-xtlib-cuda11:u18.04_torch_1.10@sha256:"
                      "da59735e5bbc8cc5ed1ee3d6cf3eb997626ae54eaea43a31f74c1c9d77eec0a0"}
    assert config["general"] == {"experiment": "exp-$username", "primary-metric": "dev-loss", "maximize": False}
    assert config["setups"] == {"xt-env": {"env": {"WANDB_API_KEY": "$env:WANDB_API_KEY", "WANDB_PROJECT": "bb"}}}
    assert "export these before use: WANDB_API_KEY=…" in messages
    code, problems = validate(tmp_path)  # the registry record XT found elsewhere: named at its line
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "registry: hub" in t)
    assert code == 2 and problems == [f"configs/singkit.yaml:{line}:15: `registry: hub` in dockers.d names no registry record "
                                      "(type: registry)"]
    # with the registry and a Singularity target defined, a submit asks for image.wrap first: the base is
    # pinned, the wrapped image is not built yet
    config_file = tmp_path / "configs" / "singkit.yaml"
    config_file.write_text(text + "external-services:\n  hub: {type: registry, login-server: docker.io}\n"
                           "  ws: {type: singularity, subscription-id: 00000000-0000-4000-8000-00000000beef, resource-group: rg}\n"
                           "compute-targets:\n  sing: {service: ws, compute: vc, vm-size: NC6_v3, sla: basic, docker: d}\n")
    refused = cli(["job.submit", "--target=sing", "--dry-run"], cwd=tmp_path, env={"USER": "alice"})
    assert refused.returncode == 2 and "run `invoke image.wrap --docker=d`" in refused.stderr, refused.stderr


def test_factory_config_round_trip(tmp_path):
    """XT's own factory config: validate passes, and a dry run of each Singularity target sends what
    XT would (its node count, instance type, SLA, image, setup and the identity variable)."""
    config, text, messages = imported(tmp_path, FACTORY)
    assert validate(tmp_path, {"USER": "alice"}) == (0, [])
    factory = YAML(typ="safe").load(FACTORY.read_text())
    singularity = [n for n, t in factory["compute-targets"].items() if t["service"] == "tpx-sing-ws5"]
    assert set(singularity) <= set(config["compute-targets"]) and len(singularity) > 30
    image = "tpxsingacr5.azurecr.io/" + factory["dockers"]["singularity-xtlib"]["image"]
    for name in ("h100-1", "a100-3", "8xmi300-1", "octo-v100", "sing-a100-2"):
        xt = factory["compute-targets"][name]
        spec = dry_run(tmp_path, name, {"USER": "alice"})
        resources = spec["resources"]
        assert resources["instance_count"] == 1 and resources["instance_type"] == f"Singularity.{xt['vm-size']}"
        assert resources["properties"]["AISuperComputer"]["slaTier"] == xt["sla"].capitalize()
        assert "distribution" not in spec  # one process on one node, as XT's process_count_per_instance: 1
        assert spec["environment"] == {"image": image} and spec["experiment_name"] == "alice"
        assert spec["compute"].endswith(f"/virtualclusters/{xt['compute']}")
        assert "python -m pip install -q xtlib && exec python train.py" in spec["command"]  # never `==*`
        uai = factory["external-services"]["tpx-sing-ws5"]["user-identity-id"]
        assert spec["environment_variables"]["_AZUREML_SINGULARITY_JOB_UAI"] == uai
        assert resources.get("locations") == xt.get("locations")
    # the ARM id XT's backend builds for msrresrchvc (its `notused` record), not the workspace's group
    assert dry_run(tmp_path, "h100-1", {"USER": "alice"})["compute"] == (
        "/subscriptions/22da88f6-1210-4de2-a5a3-da4c7c2a1213/resourceGroups/gcr-singularity-resrch/providers/"
        "Microsoft.MachineLearningServices/virtualclusters/msrresrchvc")
    # the legacy wrapped record: its sha256 is the base pin
    assert config["dockers"]["pytorch-xtlib-prev"]["image"].endswith(":u18.04_torch_1.10_cuda_11.3_xtlib_255_odbc17@sha256:"
                                                                     "da59735e5bbc8cc5ed1ee3d6cf3eb997626ae54eaea43a31f74c1c9d77eec0a0")


def test_every_key_left_out_is_listed_with_why(tmp_path):
    config, text, messages = imported(tmp_path, FACTORY)
    factory = YAML(typ="safe").load(FACTORY.read_text())
    header = [line for line in text.splitlines() if line.startswith("#")]
    for section, body in factory.items():
        if section in ("external-services", "compute-targets", "dockers", "setups"):
            for name, record in body.items():
                carried = config.get(section, {}).get(name)
                for key in record if carried is not None else []:
                    if record[key] not in (None, "", [], {}) and key not in ("type", "pip-packages", "conda-packages", "locations"):
                        said = f"{section}.{name}.{key}:"
                        moved = str(record[key]) in str(carried)  # e.g. a wrapped record's sha256, now in image:
                        assert key.replace("_", "-") in carried or moved or any(said in h for h in header), said
                if carried is None:
                    assert any(f"#   {section}.{name}: " in h for h in header) and f"not carried: {section}.{name}: " in messages
        elif section in ("general", "code"):
            for key in body:
                kept = key in config.get("general", {}) or (key == "maximize-metric" and "maximize" in config["general"])
                assert kept or key == "env-vars" or any(f"#   {section}.{key}: " in h for h in header), f"{section}.{key}"
        else:
            assert any(h.startswith(f"#   {section}") for h in header) and f"not carried: {section}" in messages, section


def test_a_users_config_over_the_factory_merges_as_xt_does(tmp_path):
    config, text, messages = imported(tmp_path, FACTORY, MINE)
    targets = config["compute-targets"]
    # XT replaces a record WHOLE: the user's h100-1 has none of the factory's setup, docker or sla
    assert targets["h100-1"] == {"service": "tpx-sing-ws5", "compute": "msroctovc", "vm-size": "ND12_v4", "setup": "xt-env"}
    # XT 0.0.342 has no default SLA (backend_singularity.py reads compute_def["sla"]): none is invented, a note says so
    assert "note: compute-targets.h100-1: no `sla`: XT 0.0.342 has no default for it (backends/backend_singularity.py " \
           "reads compute_def[\"sla\"]; `xt run --sla=…` had to give it), so singkit's default, standard, applies" in messages
    lines = text.splitlines()
    start = lines.index("  h100-1:") + 1
    block = lines[start:next(i for i in range(start, len(lines)) if not lines[i].startswith("    "))]
    assert block and not any(line.strip().startswith("sla:") for line in block), block
    # XT's env-vars reach every run: each setup carries them, and a target with none gets `xt-env`
    env = {"WANDB_API_KEY": "$env:WANDB_API_KEY", "WANDB_PROJECT": "bb", "HF_TOKEN": "$env:HF_TOKEN"}
    assert config["setups"]["xt-env"] == {"env": env} and config["setups"]["singd"]["env"] == env
    assert "setup: xt-env  # added: it carries XT's general.env-vars" in text
    # a target using the factory's records is kept, and a target whose docker is not defined anywhere too
    assert targets["my-a100"]["docker"] == "singularity-xtlib" and targets["my-next"]["docker"] == "mynewimage"
    assert "general.env-vars.HF_TOKEN: a literal secret was replaced by $env:HF_TOKEN" in messages and "hf_literal" not in text
    # an Azure ML compute cluster stays one: its service, the cluster, the VM size as XT wrote it, low-pri, no SLA
    assert config["external-services"]["mlws"]["type"] == "aml"
    assert targets["my-cluster"] == {"service": "mlws", "compute": "gpu-cluster", "vm-size": "Standard_NC6s_v3", "nodes": 2,
                                     "low-pri": True, "docker": "singularity-xtlib", "setup": "xt-env"}
    assert config["general"]["maximize"] is False and config["general"]["experiment"] == "exp-$username"
    code, problems = validate(tmp_path, SECRETS)
    errors = [p for p in problems if not p.startswith(("warning: ", "note: "))]
    out = "configs/singkit.yaml"
    assert code == 2 and [e.split(": ", 1)[0].rsplit(":", 2)[0] for e in errors] == [out, out], problems
    # XT's aml target is an Azure ML compute-cluster job, and validate says so
    assert any(p.startswith("note: ") and "compute-targets.my-cluster is an Azure ML compute cluster job on `gpu-cluster`" in p
               for p in problems), problems
    assert any("target `h100-1` has no `docker:` record" in e for e in errors)  # the user's own replacement
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "docker: mynewimage" in t)
    assert any(e.startswith(f"{out}:{line}:13: `docker: mynewimage` in compute-targets.my-next names no docker record") for e in errors)
    spec = dry_run(tmp_path, "my-a100", SECRETS)  # blocked only by its own records: the others are warnings
    assert spec["resources"]["instance_count"] == 4 and spec["experiment_name"] == "exp-alice"
    # XT's env-vars reach the job; the secret ones are added at submit only, never written into a spec
    assert spec["environment_variables"]["WANDB_PROJECT"] == "bb" and "HF_TOKEN" not in spec["environment_variables"]
    assert spec["resources"]["properties"]["AISuperComputer"]["slaTier"] == "Standard"  # singkit's default: XT has none
    # XT's aml target runs as XT's aml backend ran it: on the cluster, 2 nodes, no Singularity block
    cluster = dry_run(tmp_path, "my-cluster", SECRETS)
    assert cluster["compute"] == "azureml:gpu-cluster" and cluster["resources"] == {"instance_count": 2}, cluster
    assert "queue_settings" not in cluster and cluster["experiment_name"] == "exp-alice"


@pytest.mark.parametrize("user, ok", [("alice", True), ("alice.smith", False)])
def test_validate_checks_the_experiment_name_after_expanding_xts_macros(tmp_path, user, ok):
    imported(tmp_path, "xt_config_2024.yaml")
    config = tmp_path / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace("compute-targets:\n  wus3-a100:", "general:\n  experiment: exp-$username\n"
                                                 "compute-targets:\n  wus3-a100:").replace("    sla: basic\n", "    sla: basic\n    docker: sing-torch2\n"))
    code, problems = validate(tmp_path, {"USER": user})
    line = next(i for i, t in enumerate(config.read_text().splitlines(), 1) if "exp-$username" in t)
    if ok:
        assert code == 0 and problems == [], problems
    else:
        assert code == 2 and problems == [f"configs/singkit.yaml:{line}:15: experiment `exp-$username` (`exp-alice.smith` once XT's macros "
                                          "are expanded at submit) is a name Azure ML refuses: start with a letter or digit and "
                                          "use only letters, digits, `_` and `-` (at most 255)"]


def test_the_written_yaml_reads_back_as_the_converted_data():
    import yaml as pyyaml  # XT's own reader (PyYAML, YAML 1.1), beside ruamel's (1.2), which singkit reads with

    from singkit.config.xt import import_xt
    from singkit.config.xt.emit import scalar

    for paths in ([FACTORY], [FACTORY, MINE], [DATA / "xt_config_2022.yaml"], [DATA / "xt_issue11.yaml"]):
        result = import_xt(paths)
        assert YAML(typ="safe").load(result.text) == result.config == pyyaml.safe_load(result.text)
    awkward = ["yes", "No", "on", "1.10", "1e-3", "0x1F", "12:30", "2024-01-02", "null", "~", "a: b", "x #y", "-lead", "[a]",
               "{b}", "*alias", "&anchor", "!tag", "%pct", "@at", "`tick", "quote\"d", "tab\there", "trail ", "ünï", "", "'", "a:"]
    for text in awkward:
        assert YAML(typ="safe").load(f"k: {scalar(text)}\n") == {"k": text} == pyyaml.safe_load(f"k: {scalar(text)}\n"), text


def test_broken_xt_yaml_is_one_line_at_its_place(tmp_path):
    broken = tmp_path / "xt_config.yaml"
    broken.write_text("compute-targets:\n    t1: {service: ws, nodes: [1\n")
    done = cli(["config.import-xt", str(broken)], cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("xt_config.yaml:3:1: not valid YAML: did not find expected ',' or ']'"), done.stderr
    missing = cli(["config.import-xt", f"{DATA / 'xt_issue11.yaml'},{tmp_path / 'nope.yaml'}"], cwd=tmp_path)
    assert missing.returncode == 2 and "nope.yaml: no such file" in missing.stderr


def test_two_files_as_two_words_merge_as_the_comma_form(tmp_path):
    """`import-xt factory.yaml mine.yaml` (the issue's form): the words after the first are more
    files, not task names; a task name after them still starts that task."""
    words = cli(["config.import-xt", str(FACTORY), str(MINE), "--xt-nodes=runs"], cwd=tmp_path)
    comma = cli(["config.import-xt", f"{FACTORY},{MINE}", "--xt-nodes=runs"], cwd=tmp_path)
    alone = cli(["config.import-xt", str(FACTORY), "--xt-nodes=runs"], cwd=tmp_path)
    assert words.returncode == comma.returncode == 0, words.stderr
    assert words.stdout == comma.stdout != alone.stdout
    chained = cli(["config.import-xt", str(FACTORY), str(MINE), "--xt-nodes=runs", "config.schema"], cwd=tmp_path)
    assert chained.returncode == 0 and chained.stdout.startswith(comma.stdout) and '"$schema"' in chained.stdout
