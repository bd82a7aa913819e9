"""fsutil.atomic_write: follows a link to a config (by design), keeps the file's mode, and never
replaces what is no regular file (a FIFO or device a link leads to: once it replaced /dev/zero)."""

from __future__ import annotations

import os
import stat

import pytest

from singkit.fsutil import atomic_write


def test_a_fifo_reached_through_a_link_is_not_replaced(tmp_path):
    fifo = tmp_path / "fifo"  # the test's own: a fault here cannot touch /dev
    os.mkfifo(fifo)
    link = tmp_path / "config.yaml"
    link.symlink_to(fifo)
    with pytest.raises(OSError, match="not a regular file; not replaced"):
        atomic_write(link, "x: 1\n")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "fifo"]  # no temp left behind


def test_a_linked_file_is_written_through_with_its_mode_kept(tmp_path):
    real = tmp_path / "dotfiles" / "singkit.yaml"
    real.parent.mkdir()
    real.write_text("old\n")
    real.chmod(0o600)
    link = tmp_path / "singkit.yaml"
    link.symlink_to(real)
    atomic_write(link, "new\n")
    assert link.is_symlink() and real.read_text() == "new\n" and stat.S_IMODE(real.stat().st_mode) == 0o600
