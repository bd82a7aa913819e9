"""Rendering the wrap Dockerfile of a docker record, and the hash of everything it is made of.

`render_dockerfile` and `inputs_hash` are pure; `plan` adds the outside facts a render
needs (the base image's digest and the newest installer/validator tags, from their registries
— never from the Docker Engine) and `render` writes dockerfiles/<docker>.Dockerfile.

Offline (`image.render --offline`, or a registry that cannot be reached), those facts are
clearly marked placeholders (PLACEHOLDER_DIGEST, PLACEHOLDER_TAG) and the file says so in its
header; such a Rendered is never built (build refuses it), so it never reaches a registry or
a config's `sha256:`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singkit.exceptions import ConfigError, Problem, ServiceError, SingkitError, UsageError
from singkit.fsutil import read_cache
from singkit.imageref import Reference, base_reference, normalize_digest, wrapped_reference

if TYPE_CHECKING:
    from singkit.config.model import Config
    from singkit.environment import Environment

TEMPLATE_NAME = "wrap.Dockerfile.j2"
INPUTS_LABEL = "singkit.inputs-hash"
DOCKER_LABEL = "singkit.docker"
BASE_LABEL = "singkit.base"  # the pinned base, so image.pin can record base-sha256 later
# the installer and validator images the wrap used (their tags are resolved at wrap time)
STAGE_LABELS = {"installer-image": "singkit.installer", "validator-image": "singkit.validator"}
VALIDATOR_SCRIPT = "/opt/microsoft/_singularity/validations/validator.sh"
OUTPUT_KEYS = frozenset({"sha256", "base-sha256", "name"})  # what a wrap writes, not what it reads
HASH_FORMAT = 1  # bump when the meaning of the hash changes, so every image rebuilds once
# What an offline render writes where a registry would have answered: all zeros is a well-formed
# digest no registry serves (a sha256 of nothing is e3b0…), and the tag says what it is.
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
PLACEHOLDER_TAG = "offline-placeholder"

# A post-sing-steps entry is a Dockerfile line: it must start with one of these.
INSTRUCTIONS = frozenset("""ADD ARG CMD COPY ENTRYPOINT ENV EXPOSE HEALTHCHECK LABEL MAINTAINER
    ONBUILD RUN SHELL STOPSIGNAL USER VOLUME WORKDIR""".split())


def builtin_template_dir() -> Path:
    """templates/ of the singkit checkout; singkit/data/templates in an installed wheel."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "templates", here.parents[1] / "data" / "templates"):
        if (candidate / TEMPLATE_NAME).is_file():
            return candidate
    raise UsageError(f"singkit's {TEMPLATE_NAME} is missing from {here.parents[3] / 'templates'}; reinstall singkit")


def render_dockerfile(values: dict[str, Any], template: Path | None = None,
                      builtin_dir: Path | None = None) -> tuple[str, list[tuple[str, str]]]:
    """The Dockerfile body for `values`, and (name, source) of every template used, in load order.

    `template` is a user template that may `{% extends "wrap.Dockerfile.j2" %}`; that name always
    means singkit's own template, so a user file of the same name cannot extend itself.
    """
    import jinja2

    builtin_dir = builtin_dir or builtin_template_dir()
    loaded: list[tuple[str, str]] = []

    class RecordingLoader(jinja2.FileSystemLoader):
        def get_source(self, environment: jinja2.Environment, name: str) -> tuple[str, str, Any]:
            source, filename, uptodate = super().get_source(environment, name)
            loaded.append((filename, source))
            return source, filename, uptodate

    search = [builtin_dir] + ([template.parent] if template else [])
    environment = jinja2.Environment(
        loader=RecordingLoader([str(p) for p in search]), undefined=jinja2.StrictUndefined,
        autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    try:
        if template is not None:
            with open(template, encoding="utf-8") as handle:
                source = handle.read()
            loaded.append((str(template), source))
            compiled = environment.from_string(source)
            compiled.filename = str(template)
        else:
            compiled = environment.get_template(TEMPLATE_NAME)
        body = compiled.render(**values)
    except jinja2.TemplateSyntaxError as error:
        raise ConfigError(Problem(error.filename or str(template), error.lineno or 0, 1,
                                  f"template syntax: {error.message}")) from None
    except jinja2.TemplateNotFound as error:
        file, line = _template_line(error, [name for name, _ in loaded])  # the {% include %} or {% extends %} line
        raise ConfigError(Problem(file or str(template), line or 1, 1, f"template `{error.name}` not found; "
                                  f"extend \"{TEMPLATE_NAME}\" or a file beside this one")) from None
    except jinja2.UndefinedError as error:
        file, line = _template_line(error, [name for name, _ in loaded])
        names = ", ".join(sorted(values))
        raise ConfigError(Problem(file or str(template or builtin_dir / TEMPLATE_NAME), line, 1 if line else 0,
                                  f"template uses an unknown variable: {error.message}; known: {names}")) from None
    # Blank runs left by block tags are noise in the rendered file.
    lines = body.splitlines()
    tidy = [line for i, line in enumerate(lines) if line.strip() or (i and lines[i - 1].strip())]
    return "\n".join(tidy).strip("\n") + "\n", loaded


def _template_line(error: BaseException, files: list[str]) -> tuple[str | None, int]:
    """Where in a template an error happened: jinja puts template lines into the traceback."""
    import traceback

    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename in files or frame.filename.endswith(".j2"):
            return frame.filename, frame.lineno or 0
    return None, 0


def check_post_steps(steps: list[Any]) -> list[str]:
    """One message per entry that is not a Dockerfile line (an instruction or a comment)."""
    problems = []
    for i, step in enumerate(steps):
        text = str(step).strip()
        if not text or text.startswith("#"):
            continue
        word = text.split(None, 1)[0].upper()
        if word not in INSTRUCTIONS:
            hint = "FROM starts a new stage; wrap a different image instead" if word == "FROM" else f"write `RUN {text}`"
            problems.append(f"post-sing-steps[{i}] `{short_text(text)}` is not a Dockerfile line; {hint}")
    return problems


def inputs_hash(*, templates: list[tuple[str, str]], record: dict[str, Any], base_pinned: str, installer: str,
                validator: str, accelerator: str, post_steps: list[str], build_args: dict[str, str]) -> str:
    """sha256 over every input of the wrapped image; the build stores it as a label.

    The template sources plus the whole record (all a template can read) determine the
    Dockerfile, so the hash needs no rendering: an up-to-date check never loads jinja2.
    """
    payload = {
        "format": HASH_FORMAT,
        "templates": [hashlib.sha256(source.encode()).hexdigest() for _, source in templates],
        "record": {k: v for k, v in record.items() if k not in OUTPUT_KEYS},
        "base": base_pinned,
        "installer": installer,
        "validator": validator,
        "accelerator": accelerator,
        "post-sing-steps": [str(s) for s in post_steps],
        "build-args": {str(k): str(v) for k, v in sorted(build_args.items())},
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class Rendered:
    """A docker record made concrete: what to build, from what, and where it goes."""

    docker: str
    text: str | None  # the whole Dockerfile, header included (None: planned without rendering)
    inputs_hash: str
    image: Reference  # the wrapped image (tag), built and pushed under this name
    base: Reference  # base image as the record names it, digest filled in
    installer: str
    validator: str
    accelerator: str
    path: Path
    build_args: dict[str, str] = field(default_factory=dict)
    placeholder: bool = False  # rendered offline: some digest/tag above is a placeholder, never build it

    @property
    def labels(self) -> dict[str, str]:
        return {INPUTS_LABEL: self.inputs_hash, DOCKER_LABEL: self.docker, BASE_LABEL: self.base.pinned(),
                STAGE_LABELS["installer-image"]: self.installer, STAGE_LABELS["validator-image"]: self.validator}

    @property
    def stages(self) -> dict[str, str]:
        """{"installer-image": ref, "validator-image": ref} as used: for a second `plan(stages=...)`."""
        return {"installer-image": self.installer, "validator-image": self.validator}


def origin_problem(cfg: Config, name: str, key: str, message: str) -> Problem:
    """A Problem at `dockers.<name>.<key>` (else the record's `image:`) in whichever file set it."""
    for parts in ((name, key), (name, "image"), (name,)):
        where = cfg.where("dockers", *parts) if hasattr(cfg, "where") else None
        if where is not None:
            return Problem(where.file, where.line, where.col, message, (("dockers", name),))
    return Problem(f"dockers.{name}", 1, 1, message, (("dockers", name),))


def registry_record(cfg: Config, record: dict[str, Any]) -> dict[str, Any] | None:
    return cfg.service(record["registry"]) if record.get("registry") else None


def wrapped_record(cfg: Config, name: str) -> dict[str, Any]:
    """dockers.<name>, refusing a record that is used as it is (`sing-wrap: false`)."""
    record = cfg.docker(name)
    if not record.get("sing-wrap"):
        raise UsageError(f"dockers.{name} has sing-wrap: false, so its image is used as it is and there is "
                         f"nothing to render, build, validate or push; set `sing-wrap: true` to wrap it "
                         f"(image.pin and image.wrap pin it as is)")
    return record


def wrapped_image(cfg: Config, name: str) -> Reference:
    """The tag the wrapped image of dockers.<name> is built and pushed under (no I/O)."""
    record = wrapped_record(cfg, name)
    try:
        return wrapped_reference(record, registry_record(cfg, record))
    except ValueError as error:
        raise ConfigError(origin_problem(cfg, name, "image", str(error))) from None


def plan(env: Environment, cfg: Config, name: str, *, base_digest: str | None = None, text: bool = True,
         stages: dict[str, str] | None = None, offline: bool = False) -> Rendered:
    """Render docker record `name` in memory; the base digest is asked of its registry unless given.

    text=False computes everything but the Dockerfile text when that needs no template engine
    (no user template): what the up-to-date check needs, without loading jinja2.
    `stages`: the installer/validator references an earlier plan resolved (Rendered.stages);
    otherwise an untagged one is resolved to its repository's newest dated tag (see stage_image).
    `offline`: ask no registry; what only a registry knows is a placeholder (Rendered.placeholder).
    """
    record = wrapped_record(cfg, name)
    registry = registry_record(cfg, record)
    try:
        base = base_reference(record, registry)
        image = wrapped_reference(record, registry)
    except ValueError as error:
        raise ConfigError(origin_problem(cfg, name, "image", str(error))) from None
    problems = [origin_problem(cfg, name, "post-sing-steps", m) for m in check_post_steps(record["post-sing-steps"])]
    refs: dict[str, str] = {}
    for key in ("installer-image", "validator-image"):
        refs[key] = str(record[key])
        try:
            Reference.parse(refs[key])
        except ValueError as error:
            problems.append(origin_problem(cfg, name, key, str(error)))
    build_args = {str(k): str(v) for k, v in (record.get("build-args") or {}).items()}
    for key, value in build_args.items():
        if value.startswith("$env:"):
            problems.append(origin_problem(cfg, name, "build-args",
                                           f"build-args.{key} is a secret reference; build args are stored in the image's history, pass secrets at run time instead"))
    template = None
    if record.get("template"):
        template = _find_template(env, cfg, name, str(record["template"]), problems)
    if problems:
        raise ConfigError(problems)
    placeholder = False
    for key in STAGE_LABELS:
        given = (stages or {}).get(key)
        if not given and offline and not (Reference.parse(refs[key]).tag or Reference.parse(refs[key]).digest):
            given, placeholder = f"{refs[key]}:{PLACEHOLDER_TAG}", True
        refs[key] = given or stage_image(env, cfg, name, key, refs[key])

    digest = normalize_digest(base.digest or base_digest)
    if digest is None and offline:
        digest, placeholder = PLACEHOLDER_DIGEST, True
    if digest is None:
        from singkit.images.registry import client_for

        digest = client_for(env, cfg, base).digest(base)
        if digest is None:
            raise ConfigError(origin_problem(cfg, name, "image", f"base image {base} is not in registry {base.registry_host}; "
                                                                 f"push it there or fix `image:`"))
    base = base.with_digest(digest)
    from singkit.singularity.accelerator import accelerator

    record["accelerator"] = accelerator(cfg, name)  # in the record too: it is part of the inputs hash
    values: dict[str, Any] = {
        "docker": name, "record": record, "base": base.tagged if base.tag else base.name,
        "base_pinned": base.pinned(), "installer": refs["installer-image"], "validator": refs["validator-image"],
        "accelerator": str(record["accelerator"]), "post_sing_steps": [str(s) for s in record["post-sing-steps"]],
        "build_args": build_args,
    }
    body = None
    if text or template is not None:  # a user template's includes are known only by rendering it
        body, sources = render_dockerfile(values, template)
    else:
        builtin = builtin_template_dir() / TEMPLATE_NAME
        sources = [(str(builtin), builtin.read_bytes().decode("utf-8"))]  # as jinja's loader reads it
    digest_of_inputs = inputs_hash(templates=sources, record=record, base_pinned=values["base_pinned"],
                                   installer=values["installer"], validator=values["validator"],
                                   accelerator=values["accelerator"], post_steps=values["post_sing_steps"],
                                   build_args=build_args)
    path = env.project_root / "dockerfiles" / f"{name}.Dockerfile"
    full = _header(env, cfg, name, digest_of_inputs, image, path, placeholder) + body if body is not None else None
    return Rendered(name, full, digest_of_inputs, image, base, values["installer"], values["validator"],
                    values["accelerator"], path, build_args, placeholder)


def stage_image(env: Environment, cfg: Config, name: str, key: str, value: str) -> str:
    """The installer or validator image (`key`) a wrap of dockers.<name> uses (a resolved one is said on stderr).

    A tag or digest in the config (`general.installer-image: repo:tag`, or the record's own) is
    used as written. A repository alone (singkit's default) means its newest build: the greatest
    dated tag (`20220218T112740648`) in the registry's v2 tags list. Raises ConfigError when
    the repository has no dated tag, ServiceError when its registry cannot be asked."""
    what = key.removesuffix("-image")
    ref = Reference.parse(value)
    if ref.tag or ref.digest:
        return value  # as the user wrote it: nothing to say
    from singkit.images.registry import client_for, newest_dated  # only now: a no-op wrap may ask no registry

    tags = client_for(env, cfg, ref).tags(ref)
    newest = newest_dated(tags)
    if newest is None:
        listed = ", ".join(sorted(tags)[:8]) or "none"
        raise ConfigError(_stage_problem(cfg, name, key, f"{what} repository {value} has no dated tag such as "
                                         f"20220218T112740648 (its tags: {listed}); write `{key}: {value}:<tag>`"))
    chosen = f"{ref.name}:{newest}"
    env.err(f"{what}: {chosen} (the newest of {len(tags)} tag(s) of {ref.name}; pin one with `{key}: {ref.name}:<tag>`)")
    return chosen


def _stage_problem(cfg: Config, name: str, key: str, message: str) -> Problem:
    """At the record's `key` if it sets one, else at `general.<key>`, else at the record's image."""
    record_sets = hasattr(cfg, "where") and cfg.where("dockers", name, key) is not None
    general = cfg.where("general", key) if hasattr(cfg, "where") and not record_sets else None
    if general is not None:
        return Problem(general.file, general.line, general.col, message, (("dockers", name),))
    return origin_problem(cfg, name, key, message)


def dockerfile_current(rendered: Rendered) -> bool:
    """Whether dockerfiles/<docker>.Dockerfile already says these inputs (its header names the
    hash). Anything there but a regular file (a FIFO, a link, a folder) is not current: it is
    never waited on or followed."""
    data = read_cache(rendered.path)
    head = data[:4096].decode("utf-8", "replace").splitlines(keepends=True)[:8] if data else []
    return f"# inputs: {rendered.inputs_hash}\n" in head


def write_dockerfile(rendered: Rendered) -> bool:
    """Write the rendered file unless it already says exactly this; True if it was written.
    A FIFO or link in its place is replaced, never written through; UsageError for a folder there."""
    from singkit.fsutil import atomic_write

    if rendered.text is None:
        raise ValueError("planned with text=False: plan again with text=True to write the Dockerfile")
    if read_cache(rendered.path) == rendered.text.encode("utf-8"):
        return False
    with contextlib.suppress(FileNotFoundError):
        kind = os.lstat(rendered.path).st_mode
        if stat.S_ISDIR(kind):
            raise UsageError(f"{rendered.path} is a folder, where image.wrap writes dockers.{rendered.docker}'s "
                             "generated Dockerfile: move it aside")
        if not stat.S_ISREG(kind):  # a link, FIFO or device in its place: replaced, never written through
            os.unlink(rendered.path)
    atomic_write(rendered.path, rendered.text)
    return True


def render(env: Environment, cfg: Config, name: str, *, base_digest: str | None = None, offline: bool = False,
           fallback: bool = False) -> Rendered:
    """plan + write dockerfiles/<name>.Dockerfile. Needs the registries, not the engine — or none
    `offline`; `fallback`: a registry that cannot be asked (ServiceError) means an offline render,
    said in one warning line. Only image.render asks for either: build and wrap never render offline."""
    try:
        rendered = plan(env, cfg, name, base_digest=base_digest, offline=offline)
    except ServiceError as error:
        if not fallback:
            raise
        env.err(f"warning: {error}; rendering offline with placeholder digests instead (image.build asks again)")
        rendered = plan(env, cfg, name, base_digest=base_digest, offline=True)
    write_dockerfile(rendered)
    return rendered


def refuse_placeholder(rendered: Rendered) -> None:
    """A Dockerfile rendered offline names images that do not exist: never build (so never push or pin) it."""
    if rendered.placeholder:
        raise SingkitError(f"dockers.{rendered.docker} was rendered offline, with placeholder digests; "
                           f"it cannot be built: render it with its registries reachable")


def _header(env: Environment, cfg: Config, name: str, digest: str, image: Reference, path: Path,
            placeholder: bool = False) -> str:
    where = cfg.where("dockers", name, "image") if hasattr(cfg, "where") else None
    origin = f" ({relative_to_project(env, Path(where.file))}:{where.line})" if where else ""
    marked = (f"# PLACEHOLDER: rendered offline; not buildable. The digest {PLACEHOLDER_DIGEST[:15]}… and the tag\n"
              f"# :{PLACEHOLDER_TAG} stand for what the registries would say; image.build and image.wrap\n"
              f"# render again with them.\n") if placeholder else ""
    return (f"# {relative_to_project(env, path)}: generated by `singkit image.render`. Do not edit: change the docker\n"
            f"# record or its template, then render again.\n"
            f"# record: dockers.{name}{origin}\n"
            f"# image:  {image}\n"
            f"# inputs: {digest}\n"
            f"{marked}\n")


def _find_template(env: Environment, cfg: Config, name: str, value: str, problems: list[Problem]) -> Path | None:
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [env.project_root / path]
    where = cfg.where("dockers", name, "template") if hasattr(cfg, "where") else None
    if where is not None and not path.is_absolute():
        candidates.append(Path(where.file).parent / path)  # relative to the config file that says it
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    problems.append(origin_problem(cfg, name, "template", f"template `{value}` not found (looked in {', '.join(str(c.parent) for c in candidates)})"))
    return None


def relative_to_project(env: Environment, path: Path) -> str:
    try:
        # the file's own name, not a link's target: the generated Dockerfile replaces a link there
        return str((path.parent.resolve() / path.name).relative_to(Path(env.project_root).resolve()))
    except ValueError:
        return str(path)


def short_text(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
