"""Rendering, references and the inputs hash: no engine, no registry."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from singkit.config import load_config
from singkit.environment import Environment
from singkit.exceptions import ConfigError, SingkitError, UsageError
from singkit.images import inputs_hash, pinned_reference, plan, render, render_dockerfile
from singkit.images.build import BuildFollower
from singkit.imageref import Reference, base_reference, normalize_digest, wrapped_reference
from singkit.images.render import INPUTS_LABEL, check_post_steps

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
VALUES = {
    "docker": "tiny", "record": {}, "base": "reg.io/base:1", "base_pinned": f"reg.io/base@{D1}",
    "installer": "reg.io/installer:7", "validator": "reg.io/validator:9", "accelerator": "NVIDIA",
    "post_sing_steps": ["RUN pip install torch==2.3.1", "ENV A=1"], "build_args": {},
}


@pytest.mark.parametrize("text, host, repo, tag, digest", [
    ("busybox", "", "busybox", None, None),
    ("library/busybox:1.36", "", "library/busybox", "1.36", None),
    ("127.0.0.1:5000/a/b:tag", "127.0.0.1:5000", "a/b", "tag", None),
    ("localhost/x", "localhost", "x", None, None),
    (f"myacr.azurecr.io/pytorch:2.3@{D1}", "myacr.azurecr.io", "pytorch", "2.3", D1),
    (f"myacr.azurecr.io/pytorch@{D1}", "myacr.azurecr.io", "pytorch", None, D1),
    # published Singularity / Azure ML base images (amlt and XT configs name these)
    ("singularitybase.azurecr.io/base/job/pytorch/acpt-2.2.1-py3.10-cuda12.1:20240318T151212161",
     "singularitybase.azurecr.io", "base/job/pytorch/acpt-2.2.1-py3.10-cuda12.1", "20240318T151212161", None),
    ("mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04:latest", "mcr.microsoft.com",
     "azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04", "latest", None),
    ("nvcr.io/nvidia/pytorch:24.01-py3", "nvcr.io", "nvidia/pytorch", "24.01-py3", None),
    ("a__b/c---d:T_1", "", "a__b/c---d", "T_1", None),
])
def test_reference_parse(text, host, repo, tag, digest):
    ref = Reference.parse(text)
    assert (ref.host, ref.repository, ref.tag, ref.digest) == (host, repo, tag, digest)
    assert str(ref) == text


def test_reference_docker_hub_and_errors():
    assert Reference.parse("python:3.11").api_host == "registry-1.docker.io"
    assert Reference.parse("python:3.11").api_repository == "library/python"
    assert Reference.parse("me/python").api_repository == "me/python"
    # distribution/reference's grammar (regexp.go): lower-case path components, tags of at most 128
    # ASCII word characters, dots and dashes not starting with either
    for bad in ("", "a b", "x@sha256:zz", "x:", "PYTHON:3", "me/Python", "a/-b", "a_/b", "x:.t", "x:-t",
                "x:" + "t" * 129, "x:tä", "bad_host.io/x"):
        with pytest.raises(ValueError):
            Reference.parse(bad)
    assert normalize_digest("1" * 64) == D1 and normalize_digest(D1.upper()) == D1
    with pytest.raises(ValueError):
        normalize_digest("sha256:123")


def test_record_references():
    registry = {"type": "registry", "login-server": "https://myacr.azurecr.io/"}
    plain = {"image": "pytorch:2.3"}
    prefixed = {"image": "myacr.azurecr.io/pytorch:2.3"}
    assert str(base_reference(plain, registry)) == str(base_reference(prefixed, registry)) == "myacr.azurecr.io/pytorch:2.3"
    assert wrapped_reference(plain, registry).tagged == "myacr.azurecr.io/pytorch:2.3-sing"
    assert wrapped_reference({"image": "pytorch"}, registry).tagged == "myacr.azurecr.io/pytorch:latest-sing"
    assert wrapped_reference({**plain, "wrapped-image": "sing/pytorch"}, registry).tagged == "myacr.azurecr.io/sing/pytorch:latest"
    assert base_reference({"image": "python:3.11-slim"}, None).tagged == "python:3.11-slim"


def test_render_default_template_is_the_seed_recipe():
    body, sources = render_dockerfile(VALUES)
    assert body == textwrap.dedent(f"""\
        # base image reg.io/base:1, pinned by digest
        FROM reg.io/base@{D1} AS base
        FROM reg.io/installer:7 AS installer
        FROM reg.io/validator:9 AS validator

        FROM base
        # get the installation scripts
        COPY --from=installer /installer /opt/microsoft/_singularity/installations/
        # get the validation scripts
        COPY --from=validator /validations /opt/microsoft/_singularity/validations/
        # set validation arguments for expected use of this image
        ENV SINGULARITY_IMAGE_ACCELERATOR=NVIDIA
        # install Singularity-required components, then run the Singularity validation tests
        RUN /opt/microsoft/_singularity/installations/singularity/installer.sh \\
         && /opt/microsoft/_singularity/validations/validator.sh
        # post-sing-steps: restore what the Singularity components overwrote
        RUN pip install torch==2.3.1
        ENV A=1
        """)
    assert [Path(name).name for name, _ in sources] == ["wrap.Dockerfile.j2"]


def test_user_template_overrides_one_block_and_keeps_the_rest(tmp_path):
    # Named like singkit's own: `extends "wrap.Dockerfile.j2"` must still mean singkit's.
    user = tmp_path / "wrap.Dockerfile.j2"
    user.write_text('{% extends "wrap.Dockerfile.j2" %}\n'
                    "{% block installer %}FROM my.io/installer:custom AS installer\n{% endblock %}\n"
                    "{% block post_sing_steps %}{{ super() }}RUN echo extra\n{% endblock %}\n")
    body, sources = render_dockerfile(VALUES, template=user)
    default, _ = render_dockerfile(VALUES)
    assert "FROM my.io/installer:custom AS installer\n" in body and "reg.io/installer:7" not in body
    assert body.endswith("ENV A=1\nRUN echo extra\n")
    assert body.replace("FROM my.io/installer:custom", "FROM reg.io/installer:7").replace("RUN echo extra\n", "") == default
    assert [Path(n).name for n, _ in sources] == ["wrap.Dockerfile.j2", "wrap.Dockerfile.j2"]
    assert sources[0][0] == str(user)


def test_template_errors_are_config_problems(tmp_path):
    broken = tmp_path / "broken.j2"
    broken.write_text('{% extends "wrap.Dockerfile.j2" %}\n{% block base %}{{ nope }\n{% endblock %}\n')
    with pytest.raises(ConfigError, match=r"broken.j2:2:1: template syntax"):
        render_dockerfile(VALUES, template=broken)
    unknown = tmp_path / "unknown.j2"
    unknown.write_text('{% extends "wrap.Dockerfile.j2" %}{% block base %}FROM {{ base_image }}{% endblock %}')
    with pytest.raises(ConfigError, match=r"unknown.j2:1:1: template uses an unknown variable: 'base_image' is undefined; known: accelerator, base, base_pinned, "):
        render_dockerfile(VALUES, template=unknown)
    # a missing include is reported at its own line (it was the template's 1:1)
    including = tmp_path / "including.j2"
    including.write_text('{% extends "wrap.Dockerfile.j2" %}\n{% block base %}\nFROM x\n{% include "gone.j2" %}\n'
                         '{% endblock %}\n')
    with pytest.raises(ConfigError, match=r"including.j2:4:1: template `gone.j2` not found"):
        render_dockerfile(VALUES, template=including)


def test_inputs_hash_covers_every_input():
    body, sources = render_dockerfile(VALUES)
    record = {"image": "base:1", "registry": "reg", "extra": "read by a user template", "sha256": D2}
    args = dict(templates=sources, record=record, base_pinned=VALUES["base_pinned"], installer=VALUES["installer"],
                validator=VALUES["validator"], accelerator="NVIDIA", post_steps=VALUES["post_sing_steps"],
                build_args={"A": "1"})
    reference = inputs_hash(**args)
    assert reference == inputs_hash(**args) and reference.startswith("sha256:") and len(reference) == 71
    changes = {
        "templates": [(sources[0][0], sources[0][1] + "\n# edited")], "record": {**record, "extra": "changed"},
        "base_pinned": f"reg.io/base@{D2}", "installer": "reg.io/installer:8", "validator": "reg.io/validator:10",
        "accelerator": "AMD", "post_steps": ["RUN pip install torch==2.4"], "build_args": {"A": "2"},
    }
    for key, value in changes.items():
        assert inputs_hash(**{**args, key: value}) != reference, key
    # what a wrap writes back is not an input
    assert inputs_hash(**{**args, "record": {**record, "sha256": D1, "base-sha256": D1}}) == reference


def test_post_steps_must_be_dockerfile_lines():
    assert check_post_steps(["RUN a", "  env A=1", "# a comment", "", "COPY --from=x /a /b"]) == []
    assert check_post_steps(["RUN ok", "pip install xtlib", "FROM x"]) == [
        "post-sing-steps[1] `pip install xtlib` is not a Dockerfile line; write `RUN pip install xtlib`",
        "post-sing-steps[2] `FROM x` is not a Dockerfile line; FROM starts a new stage; wrap a different image instead",
    ]


# -- with a config file ---------------------------------------------------------------------------

CONFIG = """\
# a project   (kept)
external-services:
  acr:
    type: registry
    login-server: myacr.azurecr.io
dockers:
  pytorch:
    image: pytorch:2.3          # base
    registry: acr
    sing-wrap: true
    post_sing_steps:            # XT's spelling
      - RUN pip install xtlib==0.0.265
    build-args: {{TORCH: "2.3"}}
{extra}general:                       # pinned stages: these tests stay off the network
  installer-image: singularitybase.azurecr.io/installer/base/singularity-installer:20220218T112740648
  validator-image: singularitybase.azurecr.io/validations/base/singularity-tests:20220309T233405410
"""


def project(tmp_path: Path, extra: str = "") -> tuple[Environment, object]:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "singkit.yaml").write_text(CONFIG.format(extra=extra))
    env = Environment(project_root=tmp_path, environ={"HOME": str(tmp_path)}, stdout=io.StringIO(), stderr=io.StringIO())
    return env, load_config(env)


def test_plan_and_render_write_the_dockerfile_with_header(tmp_path):
    env, cfg = project(tmp_path)
    planned = plan(env, cfg, "pytorch", base_digest=D1)
    assert not planned.path.exists()
    rendered = render(env, cfg, "pytorch", base_digest=D1)
    assert rendered == planned
    text = (tmp_path / "dockerfiles" / "pytorch.Dockerfile").read_text()
    assert text == rendered.text
    assert text.startswith("# dockerfiles/pytorch.Dockerfile: generated by `singkit image.render`.")
    assert "# record: dockers.pytorch (configs/singkit.yaml:8)\n" in text
    assert f"# image:  myacr.azurecr.io/pytorch:2.3-sing\n# inputs: {rendered.inputs_hash}\n" in text
    assert f"FROM myacr.azurecr.io/pytorch@{D1} AS base\n" in text
    assert text.endswith("RUN pip install xtlib==0.0.265\n")
    assert rendered.build_args == {"TORCH": "2.3"}
    assert rendered.labels[INPUTS_LABEL] == rendered.inputs_hash
    assert plan(env, cfg, "pytorch", base_digest=D2).inputs_hash != rendered.inputs_hash
    # the up-to-date check plans without rendering (no jinja2), to the same hash
    light = plan(env, cfg, "pytorch", base_digest=D1, text=False)
    assert light.text is None and light.inputs_hash == rendered.inputs_hash


def test_plan_reports_every_record_problem_at_its_line(tmp_path):
    extra = """\
  bad:
    image: pytorch:2.3
    sing-wrap: true
    template: templates/missing.j2
    post-sing-steps:
      - pip install xtlib
    build-args: {TOKEN: $env:HF_TOKEN}
"""
    env, cfg = project(tmp_path, extra)
    with pytest.raises(ConfigError) as caught:
        plan(env, cfg, "bad", base_digest=D1)
    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{tmp_path}/configs/singkit.yaml:19:7: post-sing-steps[0] `pip install xtlib`")
    assert lines[1].startswith(f"{tmp_path}/configs/singkit.yaml:20:17: build-args.TOKEN is a secret reference")
    assert lines[2].startswith(f"{tmp_path}/configs/singkit.yaml:17:15: template `templates/missing.j2` not found")


def test_plan_refuses_records_that_are_not_wrapped(tmp_path):
    env, cfg = project(tmp_path, "  plain:\n    image: python:3.11-slim\n")
    with pytest.raises(UsageError, match="dockers.plain has sing-wrap: false, so its image is used as it is"):
        plan(env, cfg, "plain")


def test_user_template_from_the_record(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "mine.j2").write_text(
        '{% extends "wrap.Dockerfile.j2" %}{% block post_sing_steps %}RUN echo {{ build_args.TORCH }}\n{% endblock %}')
    env, cfg = project(tmp_path, "  custom:\n    image: pytorch:2.3\n    registry: acr\n    sing-wrap: true\n"
                                 "    template: templates/mine.j2\n    build-args: {TORCH: '2.3'}\n")
    rendered = plan(env, cfg, "custom", base_digest=D1)
    assert rendered.text.endswith("ENV SINGULARITY_IMAGE_ACCELERATOR=NVIDIA\n"
                                  "# install Singularity-required components, then run the Singularity validation tests\n"
                                  "RUN /opt/microsoft/_singularity/installations/singularity/installer.sh \\\n"
                                  " && /opt/microsoft/_singularity/validations/validator.sh\nRUN echo 2.3\n")
    before = rendered.inputs_hash
    (tmp_path / "templates" / "mine.j2").write_text((tmp_path / "templates" / "mine.j2").read_text() + "\n")
    assert plan(env, cfg, "custom", base_digest=D1).inputs_hash != before


def test_pinned_reference(tmp_path):
    env, cfg = project(tmp_path, f"  pinned:\n    image: pytorch:2.3\n    registry: acr\n    sha256: sha256:{'3' * 64}\n")
    assert pinned_reference(cfg, "pinned") == f"myacr.azurecr.io/pytorch@sha256:{'3' * 64}"
    assert pinned_reference(cfg, "pytorch") == "myacr.azurecr.io/pytorch:2.3-sing"


def test_build_failure_is_one_line_naming_step_and_output():
    env = Environment(project_root=Path("."), environ={}, stdout=io.StringIO(), stderr=io.StringIO())
    follower = BuildFollower(env, "tiny")
    events = [{"stream": "Step 1/2 : FROM base\n"}, {"stream": " ---> Using cache\n ---> abc\n"},
              {"stream": "Step 2/2 : RUN make all\n"}, {"stream": " ---> Running in 1f\n"},
              {"stream": "compiling\n\x1b[91mcc: error: x.c\n"}, {"stream": "\x1b[0m"},
              {"error": "The command '/bin/sh -c make all' returned a non-zero code: 2",
               "errorDetail": {"code": 2, "message": "The command '/bin/sh -c make all' returned a non-zero code: 2"}}]
    with pytest.raises(SingkitError) as caught:
        follower.follow(events)
    assert str(caught.value) == ("build of dockers.tiny failed at step 2/2 `RUN make all`: the step exited 2; "
                                 "last output: compiling | cc: error: x.c")
    assert "[tiny] Step 1/2 : FROM base\n  (cached)\n" in env.stderr.getvalue()


def test_task_listing_imports_neither_docker_nor_jinja():
    code = ("import sys, singkit.tasks.image, singkit.images; "
            "print(sorted(m for m in ('docker', 'jinja2', 'requests') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_up_to_date_check_loads_no_template_engine(tmp_path):
    env, _ = project(tmp_path)
    code = ("import sys, io; from pathlib import Path; from singkit.environment import Environment; "
            "from singkit.config import load_config; from singkit.images.render import plan; "
            f"env = Environment(project_root=Path({str(tmp_path)!r}), environ={{}}, stderr=io.StringIO()); "
            f"plan(env, load_config(env), 'pytorch', base_digest={D1!r}, text=False); print('jinja2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
