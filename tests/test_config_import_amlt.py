"""Amulet users move in: an amlt config becomes a singkit config and a jobs file, and a dry run of
each job writes what Amulet would have submitted (instance type, nodes, processes per node, SLA,
image, command, environment variables, sweep values). Inputs: tests/data/amlt_*.yaml (each cites
the public configs it was written from)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ruamel.yaml import YAML

from azureml_standin.fixtures import azureml_standin  # noqa: F401  (the fixture)
from clirunner import cli

DATA = Path(__file__).parent / "data"
# Azure ML is unreachable: a dry run that tried to reach it would fail (exit 4)
NOWHERE = {"ARM_CLOUD_METADATA_URL": "https://127.0.0.1:9/metadata/endpoints", "SINGKIT_AZURE_TOKEN": ""}
PIN_WARNING = "is not pinned by digest yet"


def load(path: Path):
    return YAML(typ="safe").load(path.read_text())


def imported(tmp_path: Path, name: str):
    """Copy the amlt file into a project (two folders down, as amlt/<topic>/ in MSAGen) and import it."""
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "amlt" / "topic").mkdir(parents=True)
    source = project / "amlt" / "topic" / name
    shutil.copy(DATA / name, source)
    done = cli(["config.import-amlt", str(source), "--out=configs/singkit.yaml"], cwd=project)
    assert done.returncode == 0, done.stderr
    jobs_file = project / f"{Path(name).stem}.jobs.yaml"
    return project, load(project / "configs" / "singkit.yaml"), load(jobs_file), done.stderr


def validate_ok(project: Path) -> None:
    done = cli(["config.validate"], cwd=project)
    others = [line for line in done.stderr.splitlines() if PIN_WARNING not in line and not line.startswith("config ok")]
    assert done.returncode == 0 and not others, done.stderr


def dry_run(project: Path, jobs_file: str, job: str) -> tuple[str, list[dict]]:
    """Submit one job of the file as a dry run; its Azure ML job specs, one per run."""
    done = cli(["job.submit", f"--from={jobs_file}", f"--job={job}", "--dry-run", "--allow-unpinned"],
                       cwd=project, env=NOWHERE)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    folder = project / ".singkit" / "jobs" / job_id / "azureml"
    specs = [load(folder / f"{job_id}.{i}.yaml") for i in range(1, len(list(folder.glob("*.yaml"))) + 1)]
    return job_id, specs


def test_two_node_job_submits_what_amulet_would(tmp_path):
    project, config, jobs, said = imported(tmp_path, "amlt_sing_2node.yaml")
    train = config["compute-targets"]["train_sfm_nlm"]
    assert train == {"service": "msrresrchws", "compute": "baltic02", "nodes": 2, "vm-size": "ND96amrs_A100_v4",
                     "processes-per-node": 1, "sla": "premium", "priority": "high", "docker": "ai4s-sfm", "setup": "amlt",
                     "inputs": {"hai1": "https://hai1data.blob.core.windows.net/sfm"}}
    evaluate = config["compute-targets"]["eval_sfm_nlm"]
    assert (evaluate["location"], evaluate["nodes"], evaluate["vm-size"], evaluate["sla"], evaluate["priority"]) == \
        ("eastus", 1, "NC6_v3", "basic", "low")
    workspace = config["external-services"]["msrresrchws"]
    assert workspace["subscription-id"] == "00000000-0000-4000-8000-00000000beef"
    assert workspace["user-identity-id"].endswith("/userAssignedIdentities/sfm-uai")
    assert config["external-services"]["msroctocr"]["password"] == "$env:SINGKIT_MSROCTOCR_PASSWORD"
    # AMLT_DOCKERFILE_TEMPLATE: none = Amulet does not wrap the image
    assert config["dockers"]["ai4s-sfm"] == {"image": "msroctocr.azurecr.io/ai4s-sfm:20240429.081857",
                                             "registry": "msroctocr", "sing-wrap": False}
    assert config["general"] == {"code-dirs": ["."], "code-omit": ["wandb/", "checkpoints/"]}
    assert jobs["jobs"]["train_sfm_nlm"]["env"] == {"WANDB_API_KEY": "$env:WANDB_API_KEY", "SHARED_MEMORY_PERCENT": 1.0}
    for key in ("jobs[1].mpi", "jobs[1].tags", "jobs[1].identity", "container_args.shm_size", "env_defaults.WANDB_API_KEY"):
        assert f"note: {key}" in said or f".{key}" in said, key  # said, never dropped silently
    written = (project / "configs" / "singkit.yaml").read_text() + (project / "amlt_sing_2node.jobs.yaml").read_text()
    assert "local-0000" not in written and "local-0000" not in said  # env_defaults' secret is never copied
    assert "#   - jobs[1].mpi:" in written  # the notes are in the file too
    validate_ok(project)

    job_id, [spec] = dry_run(project, "amlt_sing_2node.jobs.yaml", "train_sfm_nlm")
    assert spec["resources"]["instance_type"] == "Singularity.ND96amrs_A100_v4"
    assert spec["resources"]["instance_count"] == 2
    assert spec["distribution"] == {"type": "pytorch", "process_count_per_instance": 1}
    assert spec["resources"]["properties"]["AISuperComputer"]["slaTier"] == "Premium"
    assert spec["resources"]["properties"]["AISuperComputer"]["priority"] == "High"
    assert spec["environment"]["image"] == "msroctocr.azurecr.io/ai4s-sfm:20240429.081857"
    assert spec["environment_variables"]["SHARED_MEMORY_PERCENT"] == "1.0"
    assert spec["environment_variables"]["_AZUREML_SINGULARITY_JOB_UAI"].endswith("/sfm-uai")
    assert "WANDB_API_KEY" not in spec["environment_variables"]  # a secret: sent with the job, never written
    command = spec["command"]
    assert 'eval "$(conda shell.bash hook)" && conda activate sfm && ' in command  # the setup, $$ → $
    assert 'ln -sfn "$SINGKIT_INPUT_HAI1" /sfm' in command  # the commands find the mount where Amulet put it
    assert "export WANDB_API_KEY=${WANDB_API_KEY} && export WANDB_PROJECT=nlm_llama3 && bash scripts/nlm/" in command
    assert "--save ${SINGKIT_OUTPUT_DIR:-$SINGKIT_OUTPUTS}" in command
    assert spec["inputs"]["hai1"] == {"type": "uri_folder", "path": "https://hai1data.blob.core.windows.net/sfm",
                                      "mode": "ro_mount"}

    _, [single] = dry_run(project, "amlt_sing_2node.jobs.yaml", "eval_sfm_nlm")
    assert single["resources"]["instance_type"] == "Singularity.NC6_v3" and single["resources"]["instance_count"] == 1
    assert single["resources"]["locations"] == ["eastus"] and "distribution" not in single
    assert single["resources"]["properties"]["AISuperComputer"]["slaTier"] == "Basic"


def test_grid_search_runs_the_same_values(tmp_path):
    project, config, jobs, said = imported(tmp_path, "amlt_grid.yaml")
    job = jobs["jobs"]["finetune"]
    assert job["sweep"] == {"type": "grid", "params": {"seed": ["13", "21", "42"], "task_name": ["beta_lactamase", "fluorescence"],
                                                       "lr": ["1e-4"]}, "max-trials": 999}
    assert job["parallel"] == 5  # parallel_trials
    assert job["command"][0] == "export seed=${SINGKIT_HP_SEED}"
    assert job["command"][3].endswith("--task ${SINGKIT_HP_TASK_NAME} --tag {final}")  # {{ }} are literal braces
    assert config["compute-targets"]["finetune"]["vm-size"] == "ND40rs_v2"  # G8: 8 GPUs, a size seen in a job file
    assert "note: search.job_template.name" in said and "note: search.job_template.tags" in said
    validate_ok(project)

    job_id, specs = dry_run(project, "amlt_grid.jobs.yaml", "finetune")
    seen = [(s["environment_variables"]["SINGKIT_HP_SEED"], s["environment_variables"]["SINGKIT_HP_TASK_NAME"],
             s["environment_variables"]["SINGKIT_HP_LR"]) for s in specs]
    assert seen == [(seed, task, "1e-4") for seed in ("13", "21", "42") for task in ("beta_lactamase", "fluorescence")]
    for spec in specs:  # the values reach the command through the variables, nothing appended
        assert "--seed" not in spec["command"] and "--lr" not in spec["command"]
        assert spec["resources"]["instance_type"] == "Singularity.ND40rs_v2"
    status = json.loads(cli(["job.status", job_id, "--json"], cwd=project).stdout)
    assert len(status["runs"]) == 6


def test_random_search_draws_the_same_sets_every_time(tmp_path):
    project, config, jobs, said = imported(tmp_path, "amlt_random.yaml")
    sweep = jobs["jobs"]["lr-search"]["sweep"]
    assert sweep == {"type": "random", "params": {"lr": {"loguniform": [0.00001, 0.001]}, "bs": [16, 32, 64],
                                                  "depth": {"randint": [2, 8]}, "dropout": {"uniform": [0.0, 0.5]}},
                     "max-trials": 4, "seed": 0}
    target = config["compute-targets"]["lr-search"]
    assert (target["vm-size"], target["nodes"], target["sla"]) == ("ND96_v4", 1, "standard")
    assert "sing-wrap" in config["dockers"]["pytorch"] and config["dockers"]["pytorch"]["sing-wrap"] is True
    validate_ok(project)
    _, first = dry_run(project, "amlt_random.jobs.yaml", "lr-search")
    _, again = dry_run(project, "amlt_random.jobs.yaml", "lr-search")
    drawn = [{k: s["environment_variables"][f"SINGKIT_HP_{k.upper()}"] for k in ("lr", "bs", "depth", "dropout")} for s in first]
    assert drawn == [{k: s["environment_variables"][f"SINGKIT_HP_{k.upper()}"] for k in drawn[0]} for s in again]
    assert len(drawn) == 4 and len({d["lr"] for d in drawn}) == 4
    for values in drawn:
        assert 1e-5 <= float(values["lr"]) <= 1e-3 and values["bs"] in ("16", "32", "64")
        assert 2 <= int(values["depth"]) <= 8 and 0.0 <= float(values["dropout"]) <= 0.5
    assert "--lr ${SINGKIT_HP_LR}" in first[0]["command"]


def test_aml_cluster_target_is_kept_and_its_vm_size_asked_for(tmp_path):
    project = tmp_path / "proj"
    (project / "amlt" / "topic" / "src").mkdir(parents=True)
    (project / "configs").mkdir()
    shutil.copy(DATA / "amlt_aml.yaml", project / "amlt" / "topic" / "amlt_aml.yaml")
    done = cli(["config.import-amlt", "amlt/topic/amlt_aml.yaml", "--out=configs/singkit.yaml"], cwd=project)
    assert done.returncode == 0, done.stderr
    config = load(project / "configs" / "singkit.yaml")
    assert config["external-services"]["msrresrchws"]["type"] == "aml"
    target = config["compute-targets"]["train"]
    assert target == {"service": "msrresrchws", "compute": "townsend1", "nodes": 2, "processes-per-node": 4,
                      "docker": "pytorch", "setup": "amlt"}
    assert config["dockers"]["pytorch"]["sing-wrap"] is False  # a compute cluster runs the image as it is
    assert config["general"]["code-dirs"] == ["amlt/topic/src"]
    line = next(n for n, text in enumerate((project / "configs" / "singkit.yaml").read_text().splitlines(), 1)
                if text.strip() == "train:")
    assert f"fill in: configs/singkit.yaml:{line}: compute-targets.train.vm-size" in done.stderr
    validated = cli(["config.validate"], cwd=project)
    errors = [x for x in validated.stderr.splitlines() if not x.startswith("warning")]
    assert validated.returncode == 2 and errors and all("vm-size" in e for e in errors), validated.stderr
    assert errors[0].startswith((f"configs/singkit.yaml:{line}:", f"configs/singkit.yaml:{line + 1}:"))  # the record


def test_missing_ids_are_named_at_their_record(tmp_path):
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "amlt.yaml").write_text(
        "# Tai-Xinwei/MSAGen amlt/nlm/pretrain_sfm_nlm_llama3_stageA_G32.yaml's target: no subscription or group\n"
        "target: {service: sing, name: baltic02, workspace_name: msrresrchws}\n"
        "environment: {image: ai4s-sfm:20240429.081857, registry: msroctocr.azurecr.io}\n"
        "jobs: [{name: t, sku: G1, command: [python a.py]}]\n"
        "amlt_only_key: 1\n")
    done = cli(["config.import-amlt", "amlt.yaml", "--out=configs/singkit.yaml"], cwd=project)
    assert done.returncode == 0 and "note: amlt_only_key: " in done.stderr, done.stderr
    validated = cli(["config.validate"], cwd=project)
    errors = sorted(x for x in validated.stderr.splitlines() if not x.startswith("warning"))
    assert validated.returncode == 2 and len(errors) == 2, validated.stderr
    assert errors[0].endswith("needs `resource-group`") and errors[1].endswith("needs `subscription-id`")
    again = cli(["config.import-amlt", "amlt.yaml", "--out=configs/singkit.yaml"], cwd=project)
    assert again.returncode == 2 and "--force" in again.stderr  # nothing overwritten without --force


def test_a_workspace_amulet_looked_up_is_named_by_validate_until_written(tmp_path):
    """Amulet finds the workspace from the virtual cluster; singkit must be told it. The import
    writes a placeholder, and validate refuses it at its line (a submit would reach Azure with it)."""
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "amlt.yaml").write_text(
        "target: {service: sing, name: baltic02, subscription_id: 00000000-0000-4000-8000-00000000beef, resource_group: rg}\n"
        "environment: {image: ai4s-sfm:20240429.081857, registry: msroctocr.azurecr.io}\n"
        "jobs: [{name: t, sku: G1, command: [python a.py]}]\n")
    done = cli(["config.import-amlt", "amlt.yaml", "--out=configs/singkit.yaml"], cwd=project)
    assert done.returncode == 0 and "workspace" in done.stderr, done.stderr
    text = (project / "configs" / "singkit.yaml").read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "workspace: FILL-IN-WORKSPACE" in t)
    validated = cli(["config.validate"], cwd=project)
    errors = [x for x in validated.stderr.splitlines() if not x.startswith(("warning", "note"))]
    assert validated.returncode == 2 and len(errors) == 1, validated.stderr
    assert errors[0].startswith(f"configs/singkit.yaml:{line}:") and "is still `FILL-IN-WORKSPACE`: write the real value" in errors[0]
    dry = cli(["job.submit", "--from", "amlt.jobs.yaml", "--job", "t", "--dry-run", "--allow-unpinned"], cwd=project)
    assert dry.returncode == 2 and "FILL-IN-WORKSPACE" in dry.stderr, dry.stderr  # a submit is blocked by it too
    (project / "configs" / "singkit.yaml").write_text(text.replace("FILL-IN-WORKSPACE", "msrresrchws"))
    assert cli(["config.validate"], cwd=project).returncode == 0


def test_an_unknown_service_is_said_and_its_jobs_run_here(tmp_path):
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "configs" / "singkit.yaml").write_text("general: {experiment: t}\n")
    # Tai-Xinwei/MSAGen amlt/pfm/downstream_pfm.yaml's target: amlk8s, which singkit does not submit to
    (project / "amlt.yaml").write_text(
        "target: {service: amlk8s, name: itplabrr1cl1, vc: mprr3}\n"
        "jobs:\n- name: hello\n  sku: G1\n  command: ['echo hp=$$SINGKIT_HP_X env=$$GREETING', 'echo two']\n"
        "  submit_args: {env: {GREETING: hi}}\n")
    done = cli(["config.import-amlt", "amlt.yaml", "--jobs-file=jobs.yaml"], cwd=project)
    assert done.returncode == 0 and "note: target.service: `amlk8s` has no singkit counterpart" in done.stderr
    assert "jobs:" in done.stdout and not (project / "jobs.yaml").exists()  # no --out: both printed
    (project / "jobs.yaml").write_text(
        "jobs:\n  hello:\n    command: ['echo hp=$SINGKIT_HP_X env=$GREETING', 'echo two']\n"
        "    env: {GREETING: hi}\n    sweep: {type: grid, params: {x: [1, 2]}}\n")
    ran = cli(["job.submit", "--from=jobs.yaml", "--job=hello", "--follow"], cwd=project)
    assert ran.returncode == 0, ran.stderr
    assert "hp=1 env=hi" in ran.stdout and "hp=2 env=hi" in ran.stdout and "two" in ran.stdout


def test_jobs_file_mistakes_are_one_line_each_at_their_place(tmp_path):
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "configs" / "singkit.yaml").write_text("general: {experiment: t}\n")
    (project / "jobs.yaml").write_text(
        "jobs:\n"
        "  a:\n"
        "    comand: echo\n"
        "    runs: 0\n"
        "    sweep: {type: grid, params: {lr: {uniform: [0, 1]}}}\n"
        "  b:\n"
        "    command: echo b\n")
    done = cli(["job.submit", "--from=jobs.yaml", "--dry-run"], cwd=project)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert lines[0].startswith("jobs.yaml:3:5: unknown key `comand` in job `a`")
    assert any(x.startswith("jobs.yaml:4:11: `runs` must be a whole number") for x in lines), lines
    assert any(x.startswith("jobs.yaml:5:") and "grid takes lists only" in x for x in lines), lines
    (project / "jobs.yaml").write_text("jobs:\n  b:\n    command: echo b\n")
    unknown = cli(["job.submit", "--from=jobs.yaml", "--job=bb"], cwd=project)
    assert unknown.returncode == 2 and "no job `bb` in jobs.yaml; did you mean `b`?" in unknown.stderr
    for args in (["--job=b"], ["--from=jobs.yaml", "--cmd=echo x"], ["--from=jobs.yaml", "--hp", "x=1"]):
        refused = cli(["job.submit", *args, "--dry-run"], cwd=project)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, (args, refused.stderr)
    both = cli(["job.submit", "--from=jobs.yaml", "--dry-run", "--json"], cwd=project)
    assert both.returncode == 0 and json.loads(both.stdout)["job"]  # one job: --json is its status alone


def test_an_imported_job_reaches_azure_ml_as_amulet_sent_it(tmp_path, azureml_standin):
    """The real azure-ai-ml SDK against the loopback stand-in: the body Azure ML receives."""
    si = azureml_standin
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "train.py").write_text("print('training')\n")
    # shaped as tests/data/amlt_sing_2node.yaml (its sources cited there), pointed at the stand-in
    (project / "amlt.yaml").write_text(f"""\
target: {{service: sing, name: singkit-vc, workspace_name: {si.workspace},
         subscription_id: {si.subscription_id}, resource_group: {si.resource_group}}}
environment: {{image: "pytorch/pytorch:2.6.0-cuda12.4-cudnn9-devel"}}
jobs:
- name: train
  sku: 2x80G8-A100
  sla_tier: Premium
  priority: high
  process_count_per_node: 8
  command: [python train.py]
  submit_args: {{env: {{SHARED_MEMORY_PERCENT: 0.5, WANDB_API_KEY: "${{WANDB_API_KEY}}"}}}}
""")
    done = cli(["config.import-amlt", "amlt.yaml", "--out=configs/singkit.yaml"], cwd=project)
    assert done.returncode == 0, done.stderr
    token = si.credential().get_token(si.url + "/.default").token
    environ = {"SINGKIT_AZURE_TOKEN": token, "SINGKIT_RETRY_BASE_DELAY": "0.01", "WANDB_API_KEY": "wandb-s3cr3t"}
    # singkit-vc is in no public table: its ids are to be filled in, and nothing is sent until they are
    assert "fill in: configs/singkit.yaml:" in done.stderr and "external-services.singkit-vc.subscription-id" in done.stderr
    blocked = cli(["job.submit", "--from=amlt.jobs.yaml", "--job=train", "--allow-unpinned"], cwd=project, env=environ)
    assert blocked.returncode == 2 and "FILL-IN-SUBSCRIPTION" in blocked.stderr and not si.jobs, blocked.stderr
    config = project / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace("FILL-IN-SUBSCRIPTION", si.subscription_id)
                      .replace("FILL-IN-RESOURCE-GROUP", si.resource_group))
    sent = cli(["job.submit", "--from=amlt.jobs.yaml", "--job=train", "--allow-unpinned"], cwd=project, env=environ)
    assert sent.returncode == 0, sent.stderr
    assert len(si.jobs) == 1
    body = si.job_body(next(iter(si.jobs)))["properties"]
    assert body["computeId"] == si.virtual_cluster_id("singkit-vc")
    assert (body["resources"]["instanceType"], body["resources"]["instanceCount"]) == ("Singularity.ND96amrs_A100_v4", 2)
    assert body["distribution"] == {"distributionType": "PyTorch", "processCountPerInstance": 8}
    aisc = body["resources"]["properties"]["AISuperComputer"]
    assert (aisc["slaTier"], aisc["priority"]) == ("Premium", "High")
    variables = body["environmentVariables"]
    assert variables["SHARED_MEMORY_PERCENT"] == "0.5" and variables["WANDB_API_KEY"] == "wandb-s3cr3t"
    assert body["command"].endswith("python train.py'")
    for path in (project / ".singkit").rglob("*"):  # the secret went to Azure ML only
        assert not path.is_file() or b"wandb-s3cr3t" not in path.read_bytes(), path


def test_the_virtual_cluster_is_where_xt_says_or_to_be_filled_in(tmp_path):
    """A virtual cluster is not in the workspace's subscription and resource group as a rule: XT's
    public table (xtlib backends/backend_singularity.py) puts mckinley01 in gcr-singularity-lab."""
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "amlt.yaml").write_text(
        "target: {service: sing, name: mckinley01, workspace_name: RD-Agent,\n"
        "         subscription_id: e0330000-0000-4000-8000-000000000000, resource_group: RDAgentAPP}\n"
        "environment: {image: 'pytorch/pytorch:2.6.0-cuda12.4-cudnn9-devel'}\n"
        "jobs: [{name: t, sku: G1, command: [python a.py]}]\n")
    done = cli(["config.import-amlt", "amlt.yaml", "--out=configs/singkit.yaml"], cwd=project)
    assert done.returncode == 0, done.stderr
    config = load(project / "configs" / "singkit.yaml")
    assert config["external-services"]["mckinley01"] == {"type": "virtual_cluster", "resource-group": "gcr-singularity-lab",
                                                         "subscription-id": "156138e5-a3b1-48af-9e2e-883f4df3f457"}
    _, [spec] = dry_run(project, "amlt.jobs.yaml", "t")
    assert spec["compute"].startswith("/subscriptions/156138e5-a3b1-48af-9e2e-883f4df3f457/resourceGroups/gcr-singularity-lab/")
    # a cluster XT does not know: placeholders at their lines, never the workspace's ids
    (project / "amlt.yaml").write_text((project / "amlt.yaml").read_text().replace("mckinley01", "myvc"))
    done = cli(["config.import-amlt", "amlt.yaml", "--out=configs/singkit.yaml", "--force"], cwd=project)
    text = (project / "configs" / "singkit.yaml").read_text()
    assert load(project / "configs" / "singkit.yaml")["external-services"]["myvc"]["resource-group"] == "FILL-IN-RESOURCE-GROUP"
    validated = cli(["config.validate"], cwd=project)
    errors = [x for x in validated.stderr.splitlines() if not x.startswith(("warning", "note"))]
    lines = [i for i, t in enumerate(text.splitlines(), 1) if "FILL-IN-" in t and not t.startswith("#")]
    assert validated.returncode == 2 and sorted(int(e.split(":")[1]) for e in errors) == lines, validated.stderr


def test_sku_forms_pick_the_series_and_infiniband_the_public_configs_ask_for(tmp_path):
    """`NC_A100_v4:G4` (a public amlt job generator, search-index id 44663237930: `sku: NC_A100_v4:G{n}`)
    names the series; `-IB` asks for InfiniBand, the catalog's `r` sizes (ND96r_H100_v5)."""
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "amlt.yaml").write_text(
        "target: {service: sing, name: msroctovc, workspace_name: msroctows}\n"
        "environment: {image: 'pytorch/pytorch:2.6.0-cuda12.4-cudnn9-devel'}\n"
        "jobs:\n"
        "- {name: series, sku: 'NC_A100_v4:G4', command: [python a.py]}\n"
        "- {name: ib, sku: 4xG8-H100-IB, command: [python a.py]}\n"
        "- {name: plain, sku: 4xG8-H100, command: [python a.py]}\n"
        "- {name: nosuch, sku: 'NC_A100_v4:G8', command: [python a.py]}\n")
    done = cli(["config.import-amlt", "amlt.yaml", "--out=configs/singkit.yaml"], cwd=project)
    assert done.returncode == 0, done.stderr
    targets = load(project / "configs" / "singkit.yaml")["compute-targets"]
    assert targets["series"]["vm-size"].startswith("NC96ad_A100_v4")  # 4 x A100 of the NC_A100_v4 series
    assert (targets["ib"]["vm-size"], targets["ib"]["nodes"]) == ("ND96r_H100_v5", 4)
    assert targets["plain"]["vm-size"] == "ND96_H100_v5"
    assert "vm-size" not in targets["nosuch"] and "compute-targets.nosuch.vm-size" in done.stderr  # no 8-GPU NC_A100_v4


def test_data_storage_is_the_data_dir_and_a_string_list_param_is_kept(tmp_path):
    """`data: {storage_id: external}` (the public amlt job generator, search-index id 44788187235):
    that storage is singkit's first input ($SINGKIT_DATA_DIR) and $AMLT_DATA_DIR reads it."""
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "amlt.yaml").write_text(
        "target: {service: sing, name: msroctovc, workspace_name: msroctows}\n"
        "environment: {image: 'pytorch/pytorch:2.6.0-cuda12.4-cudnn9-devel'}\n"
        "storage:\n"
        "  input: {storage_account_name: acct, container_name: inp, mount_dir: /mnt/input}\n"
        "  external: {storage_account_name: acct, container_name: ext, mount_dir: /mnt/external}\n"
        "data: {storage_id: external, remote_dir: sets}\n"
        "env_defaults: {GPUS: 1}\n"
        "jobs:\n"
        "- {name: 'run_GPUs${GPUS}_ünï', sku: G1, command: ['python a.py --data $$AMLT_DATA_DIR/x']}\n"
        "search:\n"
        "  type: grid\n"
        "  job_template: {name: 'lr_{lr}', sku: G1, command: ['python t.py --lr {lr} --bs {bs} --m {m}']}\n"
        "  params:\n"
        "  - {name: lr, spec: discrete, values: [0.1]}\n"
        "  - {name: bs, spec: discrete, values: '[16, 32]'}\n"
        "  - {name: m, spec: discrete, values: 'not a list'}\n")
    done = cli(["config.import-amlt", "amlt.yaml", "--out=configs/singkit.yaml"], cwd=project)
    assert done.returncode == 0, done.stderr
    config, jobs = load(project / "configs" / "singkit.yaml"), load(project / "amlt.jobs.yaml")
    job = jobs["jobs"]["run_GPUs1_uni"]  # env_defaults written in, accents dropped
    assert list(config["compute-targets"]["run_GPUs1_uni"]["inputs"]) == ["external", "input"]
    assert job["command"] == ["python a.py --data ${SINGKIT_DATA_DIR}/sets/x"]
    sweep = jobs["jobs"]["lr"]["sweep"]["params"]
    assert sweep["bs"] == [16, 32] and sweep["m"].startswith("FILL-IN")
    assert "{bs}" not in jobs["jobs"]["lr"]["command"][0] and "{m}" not in jobs["jobs"]["lr"]["command"][0]
    assert "fill in: " in done.stderr and "sweep param `m`" in done.stderr
    line = next(i for i, t in enumerate((project / "amlt.jobs.yaml").read_text().splitlines(), 1) if "FILL-IN" in t)
    refused = cli(["job.submit", "--from=amlt.jobs.yaml", "--job=lr", "--dry-run", "--allow-unpinned"], cwd=project)
    assert refused.returncode == 2 and refused.stderr.startswith(f"amlt.jobs.yaml:{line}:"), refused.stderr
    assert "hparam `m` is still" in refused.stderr and "Traceback" not in refused.stderr


def test_a_sweep_param_placed_as_braces_is_refused_in_a_jobs_file(tmp_path):
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "configs" / "singkit.yaml").write_text("general: {experiment: t}\n")
    (project / "jobs.yaml").write_text(
        "jobs:\n  a:\n    command: echo {lr} {final} {hparams} ${SINGKIT_HP_LR}\n"
        "    sweep: {type: grid, params: {lr: [1, 2]}}\n")
    done = cli(["job.submit", "--from=jobs.yaml", "--dry-run"], cwd=project)
    assert done.returncode == 2 and done.stderr.startswith("jobs.yaml:3:14: `{lr}`"), done.stderr
    assert "${SINGKIT_HP_LR}" in done.stderr
    (project / "jobs.yaml").write_text((project / "jobs.yaml").read_text().replace("{lr} ", ""))
    ran = cli(["job.submit", "--from=jobs.yaml", "--follow"], cwd=project)
    assert ran.returncode == 0 and "] {final} --lr 1 1" in ran.stdout, ran.stderr  # other braces are the command's own


def test_unreadable_or_empty_inputs_are_said_in_one_line(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"\x00\x01\xff\xfe")
    (tmp_path / "list.yaml").write_text("- a\n")
    for name, start in (("bin.yaml", "error: cannot read"), ("list.yaml", "list.yaml:1:1: an Amulet config is a mapping")):
        done = cli(["config.import-amlt", name], cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.strip().splitlines() == [done.stderr.strip()], done.stderr
        assert done.stderr.startswith(start) and "Traceback" not in done.stderr, done.stderr
    (tmp_path / "empty.yaml").write_text("jobs: []\n")
    done = cli(["config.import-amlt", "empty.yaml"], cwd=tmp_path)
    assert done.returncode == 0 and "warning: empty.yaml has no jobs" in done.stderr, done.stderr
    (tmp_path / "xt.yaml").write_text("")
    done = cli(["config.import-xt", "xt.yaml"], cwd=tmp_path)
    assert done.returncode == 0 and "warning: nothing singkit carries was found" in done.stderr, done.stderr


def test_max_run_duration_becomes_the_run_time_limit_azure_ml_gets(tmp_path):
    """submit_args.max_run_duration_seconds → the target's max-run-seconds → limits.timeout."""
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "amlt.yaml").write_text(
        "target: {service: sing, name: msrresrchbasicvc, workspace_name: msra-sh-aml-ws,\n"
        "         subscription_id: 00000000-0000-4000-8000-00000000beef, resource_group: rg}\n"
        "environment: {image: 'pytorch/pytorch:2.6.0-cuda12.4-cudnn9-devel'}\n"
        "jobs:\n"
        "- {name: smoke, sku: 80G4-H100, submit_args: {max_run_duration_seconds: 7200}, command: [nvidia-smi]}\n"
        "- {name: bad, sku: G1, submit_args: {max_run_duration_seconds: soon}, command: [nvidia-smi]}\n")
    done = cli(["config.import-amlt", "amlt.yaml", "--out=configs/singkit.yaml"], cwd=project)
    assert done.returncode == 0 and "note: jobs[2].submit_args.max_run_duration_seconds: `soon`" in done.stderr, done.stderr
    targets = load(project / "configs" / "singkit.yaml")["compute-targets"]
    assert targets["smoke"]["max-run-seconds"] == 7200 and "max-run-seconds" not in targets["bad"]
    assert "max_run_duration_seconds" not in done.stderr.split("jobs[2]")[0]  # carried, not listed as dropped
    validate_ok(project)
    _, [spec] = dry_run(project, "amlt.jobs.yaml", "smoke")
    assert spec["limits"] == {"timeout": 7200}
