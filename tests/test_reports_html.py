"""report.html: one self-contained page per job whose images exist, rendered by headless Chromium."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import pytest
from PIL import Image

import storegen
from storegen import RunSpec, curve
from singkit.reports.html import write_html


class Page(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []
        self.rows = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag in ("script", "img", "link", "iframe") and re.match(r"(https?:)?//", attrs.get("src") or attrs.get("href") or ""):
            self.external.append(attrs.get("src") or attrs.get("href"))
        if tag == "tr":
            self.rows += 1


def decode_png(src: str) -> tuple[int, int]:
    assert src.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
        image.verify()
        return image.size


@pytest.fixture
def store(tmp_path):
    home = tmp_path / ".singkit"
    runs = [RunSpec({"lr": lr, "seed": s}, curve(30, 2.0, 0.3 + lr)) for lr in (0.1, 0.01) for s in (1, 2)]
    runs.append(RunSpec({"lr": 1.0, "seed": 1}, None, status="failed", exit_code=1,
                        stderr="Traceback (most recent call last):\nFloatingPointError: loss is <nan> & diverged\n"))
    storegen.write_job(home, "job1", runs, target="eus-v100", **{"price-per-hour": 2.5})
    storegen.write_job(home, "job2", [RunSpec({"lr": 0.1}, None, status="queued", log=False)])
    return storegen.store_env(tmp_path)


def test_page_is_self_contained_and_its_images_exist(store, tmp_path):
    path, images = write_html(store, "job1", metric="loss")
    assert path == tmp_path / "reports" / "job1" / "job1.html"
    text = path.read_text()
    page = Page(text)
    assert page.external == [] and "<link" not in text
    assert len(page.images) == 2 == len(images)               # the metrics plot and the sweep summary plot
    for src, file in zip(page.images, images):
        width, height = decode_png(src)
        assert width > 100 and height > 100
        assert file.is_file() and file.parent == path.parent  # the same images, also beside the page
    assert page.rows >= 1 + 5 + 1 + 2                        # run table header + runs, summary table
    assert "eus-v100" in text and "job1.5" in text and "Sweep summary" in text
    assert "FloatingPointError: loss is &lt;nan&gt; &amp; diverged" in text   # escaped, never raw


def test_page_without_metrics_still_has_job_and_runs(store):
    path, images = write_html(store, "job2")
    text = path.read_text()
    assert images == [] and Page(text).images == []
    assert "no metrics to plot yet" in text and "job2.1" in text


PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  document.body.setAttribute("data-images", imgs.length);
  document.body.setAttribute("data-broken", imgs.filter(i => !i.complete || i.naturalWidth === 0).length);
  document.body.setAttribute("data-rows", document.querySelectorAll("table.sortable tbody tr").length);
});
</script>"""


def test_chromium_renders_the_page_with_no_broken_image(store, chromium, tmp_path):
    path, images = write_html(store, "job1", metric="loss")
    # a copy with a probe script that records, once loaded, how many images decoded
    probe = path.with_name("probe.html")
    probe.write_text(path.read_text().replace("</body>", PROBE + "</body>"))
    dom = chromium.dump_dom(probe.as_uri())
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    attrs = dict(re.findall(r'data-(\w+)="(\d+)"', body.group(1)))
    assert attrs.get("images") == str(len(images)) == "2", attrs
    assert attrs.get("broken") == "0"
    assert int(attrs.get("rows", 0)) >= 5
    shot = chromium.screenshot(path.as_uri(), tmp_path / "page.png", width=1300, height=1800)
    with Image.open(shot) as image:
        colors = image.convert("L").getextrema()
    assert colors[0] < 100 and colors[1] > 200               # drawn: dark text and lines on white


# -- the page as a colleague reads it (issue 13, point 13) ------------------------------------------------
WIDTH_PROBE = """<script>
window.addEventListener("load", () => {
  const doc = document.scrollingElement;
  document.body.setAttribute("data-scroll", doc.scrollWidth);
  document.body.setAttribute("data-client", doc.clientWidth);
  document.body.setAttribute("data-inner", Array.from(document.querySelectorAll(".wrap"))
    .filter(w => w.scrollWidth > w.clientWidth).length);
});
</script>"""

SHARED = {"bs": 32, "epochs": 20, "dim": 8, "samples": 800, "step_time": 0.02}


@pytest.fixture
def realistic(tmp_path):
    """examples/train.py's sweep as job.yaml records it: target and service as records, the
    sender's project folder, a code snapshot, and a failed run whose traceback names a file."""
    home = tmp_path / ".singkit"
    runs = [RunSpec({"lr": lr, **SHARED, "seed": s},
                    [(i, {"loss": 1 / (i + 1) + lr, "acc": 0.5 + i / 50, "val_loss": 1 / (i + 2) + lr,
                          "val_acc": 0.6 + i / 60}) for i in range(0, 20, 5)])
            for lr in (0.1, 0.01, 0.001) for s in (1, 2)]
    runs.append(RunSpec({"lr": 1.0, **SHARED, "seed": 1}, None, status="failed", exit_code=1,
                        stderr=f'Traceback (most recent call last):\n  File "{tmp_path}/examples/train.py", line 9\n'
                               "FloatingPointError: diverged\n"))
    target = {"service": "local", "description": "processes on this machine", "nodes": 1, "env": {}, "name": "local"}
    storegen.write_job(home, "job1", runs, target=target, project_root=str(tmp_path), dry_run=False, allow_unpinned=False,
                       code={"sha256": "ab" * 32, "files": 6, "bytes": 60317, "archive": "snapshots/x.tar.gz"})
    return storegen.store_env(tmp_path)


def test_page_reads_well_at_1300px_and_names_nothing_of_this_machine(realistic, chromium, tmp_path):
    path, images = write_html(realistic, "job1")
    text = path.read_text()
    visible = re.sub(r'src="data:[^"]*"', "", text)
    assert str(tmp_path) not in visible and realistic.environ["HOME"] not in visible   # no path of the sender
    assert "File &#34;examples/train.py" in visible                                  # made relative instead
    assert "local: processes on this machine" in visible and "service=" not in visible and "{" not in re.sub(
        r"<(script|style)>.*?</\1>", "", visible, flags=re.S)                          # records as sentences
    assert "6 files, 60.3 kB" in visible and "project_root" not in visible
    assert not re.search(r"pass --|--metric|invoke |singkit\.yaml|report\.\w", visible)     # no CLI advice to a reader
    assert "no primary metric was chosen" in visible
    assert "Every run: target local · bs 32 · epochs 20" in visible
    probe = path.with_name("probe-width.html")
    probe.write_text(text.replace("</body>", WIDTH_PROBE + "</body>"))
    result = chromium.run("--dump-dom", "--window-size=1300,1800", probe.as_uri())
    body = re.search(r"<body([^>]*)>", result.stdout)
    assert body, result.stderr[-500:]
    attrs = dict(re.findall(r'data-(\w+)="(\d+)"', body.group(1)))
    assert int(attrs["scroll"]) <= int(attrs["client"]) <= 1300, attrs   # no horizontal scroll on the page
    assert attrs["inner"] == "0", attrs                                  # nor inside the run table


# -- issue 13, finding 12: the failed runs with their exit code and reason ----------------------------------
def test_errors_section_lists_failed_runs_with_exit_code_and_reason(tmp_path, chromium):
    home = tmp_path / ".singkit"
    storegen.write_job(home, "job1", [
        RunSpec({"lr": 0.1}, curve(5, 2.0, 0.3)),
        RunSpec({"lr": 1.0}, None, status="failed", exit_code=3, reason="exit code 3", stderr="ValueError: bad lr\n"),
        RunSpec({"lr": 2.0}, None, status="failed", exit_code=137, reason="node lost: " + "evicted " * 40),
        RunSpec({"lr": 3.0}, None, status="cancelled", reason="cancelled by the user"),
    ])
    path, _ = write_html(storegen.store_env(tmp_path), "job1")
    text = path.read_text()
    errors = text[text.index("<h2>Errors</h2>"):]
    table = re.search(r"<table.*?</table>", errors, re.S).group(0)
    assert re.findall(r"<th>([^<]+)</th>", table) == ["run", "exit code", "reason", "error", "duration"]
    rows = {re.search(r"<td>(job1\.\d)</td>", r).group(1): r for r in re.findall(r"<tr>.*?</tr>", table)[1:]}
    assert set(rows) == {"job1.2", "job1.3"}                   # the completed and the cancelled run are not there
    assert 'data-v="3">3<' in rows["job1.2"] and "ValueError: bad lr" in rows["job1.2"]
    assert '<td class="text"></td>' in rows["job1.2"]                        # `exit code 3` is not said twice
    assert 'data-v="137">137<' in rows["job1.3"] and "node lost: evicted" in rows["job1.3"]
    probe = path.with_name("probe-width.html")
    probe.write_text(text.replace("</body>", WIDTH_PROBE + "</body>"))
    result = chromium.run("--dump-dom", "--window-size=1300,1800", probe.as_uri())
    attrs = dict(re.findall(r'data-(\w+)="(\d+)"', re.search(r"<body([^>]*)>", result.stdout).group(1)))
    assert int(attrs["scroll"]) <= int(attrs["client"]) and attrs["inner"] == "0", attrs   # the long reason wraps
