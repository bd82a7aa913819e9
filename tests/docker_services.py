"""Docker Engine helpers for tests: connect, the busybox base image, pushing, cleanup.

The engine is the real local one (`bash .ci/services.sh` starts it); nothing is pulled from
the internet: base images are made locally from the host's static busybox.
Fixtures using these live in tests/conftest.py.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services import (SESSION_ID, SESSION_LABEL, TEST_LABEL, TEST_LABELS, Registry, find_tool,
                      require_service)

# A tag of this session's own: pytest sessions sharing one engine (a CI check beside a developer's
# run) each import busybox, and a shared tag would move to the newest import, then vanish with
# that session's clean-up while the others still use it.
BUSYBOX_REF = f"singkit-test/busybox:1-{SESSION_ID}"


# --- Docker Engine ------------------------------------------------------------------------------

def docker_connect() -> Any:
    """A docker SDK client to the local engine ($DOCKER_HOST or the default socket), pinged."""
    try:
        import docker
    except ImportError:
        require_service("docker", "the `docker` Python package is not installed")
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except Exception as e:  # DockerException, connection errors, permission denied, ...
        error = f"{type(e).__name__}: {e}"
    require_service("docker engine", error)


def _static_elf(path: str) -> bool:
    """True if path is an ELF binary without an interpreter (so it runs in an empty image)."""
    import struct
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only; Debian amd64/arm64
            return False
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            if struct.unpack("<I", f.read(4))[0] == 3:  # PT_INTERP
                return False
    return True


def busybox_rootfs_tar(busybox: str) -> bytes:
    """A root filesystem: static busybox with a link for every applet at its usual path."""
    applets = subprocess.run([busybox, "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "home", "var"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        add_dir("var/tmp", 0o1777)
        add_file("bin/busybox", Path(busybox).read_bytes(), 0o755)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                               b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        for applet in applets:
            if applet == "bin/busybox":
                continue
            info = tarfile.TarInfo(applet)
            info.type, info.linkname = tarfile.SYMTYPE, "/bin/busybox"
            tar.addfile(info)
    return buf.getvalue()


def add_host_program(tar: tarfile.TarFile, program: str, *names: str) -> None:
    """Add this machine's dynamically linked `program` to a root filesystem being written, at its
    own path and at each of `names`, with the shared libraries it loads (ldd): a real program in
    an image, without pulling anything."""
    real = Path(os.path.realpath(program))
    libs = [line.split("=>")[-1].split("(")[0].strip() for line in
            subprocess.run(["ldd", str(real)], capture_output=True, text=True, check=True).stdout.splitlines()]
    present = set(tar.getnames())  # the engine refuses a layer with a path twice (a shared libc)
    wanted = [(str(real), name) for name in (str(real).lstrip("/"), *names)]
    wanted += [(os.path.realpath(lib), lib.lstrip("/")) for lib in libs if lib.startswith("/")]
    for source, name in wanted:
        if name not in present:
            tar.add(source, arcname=name)
            present.add(name)


@dataclass
class BaseImage:
    """A local image. str(image) is its reference, so f"FROM {image}" works."""
    ref: str
    id: str

    def __str__(self) -> str:
        return self.ref


def build_busybox_image(client: Any, ref: str = BUSYBOX_REF) -> BaseImage:
    """docker import the host's static busybox as `ref` (labelled singkit.test=1)."""
    busybox = find_tool("SINGKIT_TEST_BUSYBOX", "/bin/busybox", "busybox")
    if busybox is None:
        require_service("busybox", "no busybox binary (Debian package busybox-static)")
    if not _static_elf(busybox):
        require_service("busybox", f"{busybox} is not a static binary (install busybox-static)")
    repo, tag = ref.rsplit(":", 1)
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        'CMD ["sh"]',
        *(f"LABEL {k}={v}" for k, v in TEST_LABELS.items()),
    ]
    client.api.import_image_from_data(busybox_rootfs_tar(busybox), repository=repo, tag=tag,
                                      changes=changes)
    return BaseImage(ref, client.images.get(ref).id)


def _session_dead(session: str | None) -> bool:
    """True if the pytest process that created a labelled object is gone."""
    try:
        os.kill(int((session or "").split("-", 1)[0]), 0)
    except (ValueError, ProcessLookupError):
        return True
    except PermissionError:
        pass
    return False


def docker_cleanup(client: Any, leftovers: bool = False) -> None:
    """Remove this session's labelled containers and images (best effort); with
    leftovers=True, those of pytest sessions that died instead."""
    def ours(labels: dict[str, str] | None) -> bool:
        session = (labels or {}).get(SESSION_LABEL)
        return _session_dead(session) if leftovers else session == SESSION_ID

    label = f"{TEST_LABEL}=1"
    for container in client.containers.list(all=True, filters={"label": label}):
        if ours(container.labels):
            try:
                container.remove(force=True, v=True)
            except Exception:
                pass
    # Children must go before parents, so repeat until a pass removes nothing.
    for _ in range(5):
        images = [i for i in client.images.list(all=True, filters={"label": label})
                  if ours(i.labels)]
        removed = 0
        for image in images:
            try:
                client.images.remove(image.id, force=True)
                removed += 1
            except Exception:
                pass
        if not images or not removed:
            break


# --- pushing test images ------------------------------------------------------------------------

@dataclass
class PushedImage:
    """An image in a test registry: ref "HOST/REPO:TAG", digest "sha256:...",
    pinned "HOST/REPO@sha256:..."."""
    ref: str
    digest: str

    @property
    def pinned(self) -> str:
        return f"{self.ref.rsplit(':', 1)[0]}@{self.digest}"

    def __str__(self) -> str:
        return self.ref


def push_image(client: Any, source: str, registry: Registry, repo: str,
               tag: str = "latest") -> PushedImage:
    """Tag local image `source` as registry/repo:tag, push it, return it with its digest."""
    target = registry.ref(repo, tag)
    client.images.get(source).tag(f"{registry.host}/{repo}", tag)
    digest = None
    for event in client.images.push(f"{registry.host}/{repo}", tag, stream=True, decode=True,
                                    auth_config=registry.auth_config):
        if "error" in event:
            raise RuntimeError(f"push {target}: {event['error']}")
        digest = (event.get("aux") or {}).get("Digest", digest)
    if not digest:
        raise RuntimeError(f"push {target}: no digest in the push stream")
    return PushedImage(target, digest)
