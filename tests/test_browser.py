"""Notebook 06 as a researcher uses it: JupyterLab on a smoke study's workdir, in headless Chromium.

JupyterLab (``--allow-root``, a free port on 127.0.0.1, a token, no browser of its own) serves a copy of
the executed 06 that the smoke study wrote; Playwright for Python drives Debian's ``chromium`` package
(``executable_path``: no browser download; never ``playwright install``). One test runs all cells, then
changes the model, the layers and heads and the clip, and checks the picture, its title, the choices and
that neither the notebook nor the browser reports an error; the other opens the executed copy without a
kernel and checks that it shows a picture.

Run it: ``apt-get install chromium``, then ``make test`` (or ``.venv/bin/python -m pytest
tests/test_browser.py``). Without ``/usr/bin/chromium`` it is skipped, saying so. It uses the session's
smoke study (tests/conftest.py); ``AVSELD_BROWSER_WORKDIR=<dir>`` reuses a finished
``avseld reproduce --profile smoke --workdir <dir>`` instead.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
EXPLORER = "06_attention_explorer.ipynb"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="the browser test needs Debian's chromium at /usr/bin/chromium: "
                       "apt-get install chromium, then make test (or pytest tests/test_browser.py)"),
]


# --------------------------------------------------------------------------------------------
# JupyterLab and the browser
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(request) -> Path:
    """A finished smoke study: $AVSELD_BROWSER_WORKDIR, else the session's (tests/conftest.py)."""
    given = os.environ.get("AVSELD_BROWSER_WORKDIR")
    path = Path(given) if given else request.getfixturevalue("smoke_study")[0]
    assert (path / "notebooks" / "executed" / EXPLORER).is_file(), f"{path}: no executed {EXPLORER}"
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fresh_copy(executed: Path, out: Path) -> None:
    """The executed notebook (smoke parameters injected) without its outputs, counts and widget state."""
    nb = nbformat.read(str(executed), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, str(out))


@pytest.fixture(scope="module")
def lab(workdir, tmp_path_factory):
    """JupyterLab serving ``live.ipynb`` (to run) and ``saved.ipynb`` (the executed copy as the study
    wrote it); yields ``(base url, token, folder)``."""
    root = tmp_path_factory.mktemp("lab")
    executed = workdir / "notebooks" / "executed" / EXPLORER
    _fresh_copy(executed, root / "live.ipynb")
    shutil.copyfile(executed, root / "saved.ipynb")
    token, port = secrets.token_hex(16), _free_port()
    home = root / ".home"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "IPYTHONDIR": str(home / "ipython"), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.expose_app_in_browser=True"]
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')  # no network, no news pop-up
    # JupyterLab's debugger logs a console error of its own when a notebook switches to "No Kernel"
    # ("Could not restore the debugger state"); the explorer does not use it
    page_config = home / "config" / "labconfig" / "page_config.json"
    page_config.parent.mkdir(parents=True)
    page_config.write_text('{"disabledExtensions": {"@jupyterlab/debugger-extension": true}}')
    log = open(root / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (root / "jupyterlab.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not answer within 120 s"
            time.sleep(0.5)
        yield base, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in requirements.lock)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield b
        finally:
            b.close()


class Page:
    """One notebook open in JupyterLab, with every console error and uncaught page error it reports."""

    def __init__(self, browser, lab, name: str) -> None:
        base, token, _ = lab
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1700, "height": 1300})
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.goto(f"{base}/lab/tree/{name}?reset&token={token}")  # reset: only this notebook open
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)

    def select(self, label: str):
        """The <select> of the ipywidgets dropdown described ``label``."""
        box = self.page.locator(".widget-dropdown").filter(
            has=self.page.locator("label", has_text=re.compile(f"^{re.escape(label)}$")))
        return box.locator("select")

    def options(self, label: str) -> list[str]:
        return self.select(label).evaluate("s => Array.from(s.options).map(o => o.text)")

    def run_all(self, timeout_s: float = 300) -> None:
        """Run > Run All Cells from the menu bar; wait until every code cell has run (a number in its
        prompt, the kernel idle) or one shows stderr (an error stops the run), and say which."""
        self.page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session"
                                    "?.kernel?.status === 'idle'", timeout=120_000)
        self.page.locator(".lm-MenuBar-item", has_text=re.compile("^Run$")).click()
        self.page.locator(".lm-Menu-item", has_text=re.compile("^Run All Cells")).first.click()
        self.page.wait_for_function(
            r"""sel => { if (document.querySelector(sel)) return true;
                        const p = Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt'));
                        return p.length > 0 && p.every(e => /^\[\d+\]:$/.test(e.textContent.trim())) &&
                               window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'; }""",
            arg=STDERR, timeout=timeout_s * 1000)
        stderr = self.page.locator(STDERR).all_inner_texts()
        assert not stderr, "a cell wrote to stderr:\n" + "\n".join(stderr)[-3000:]

    def chosen(self, label: str) -> str:
        """The text of the option shown in dropdown ``label``."""
        return self.select(label).evaluate("s => s.options[s.selectedIndex].text")

    def picture(self, selector: str) -> tuple[np.ndarray, str]:
        """(pixels as the page shows them, src) of the image at ``selector``."""
        from PIL import Image

        img = self.page.locator(selector)
        pixels = np.asarray(Image.open(io.BytesIO(img.screenshot())).convert("RGB"), dtype=np.int16)
        return pixels, img.get_attribute("src")

    def wait_src_change(self, selector: str, old: str, timeout_s: float = 60) -> None:
        self.page.wait_for_function("([sel, old]) => { const e = document.querySelector(sel); return e && e.src !== old; }",
                                    arg=[selector, old], timeout=timeout_s * 1000)


STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"  # stderr and errors
WIDGET_IMG = "img.widget-image"
STATIC_IMG = ".jp-RenderedImage img"  # the picture show() displays below the widget (display_id)


def _module_heads(run_dir: Path) -> dict[str, tuple[int, int]]:
    """``{"self": (layers, heads), "cross": (layers, heads)}`` read off the checkpoint's attention modules."""
    from torch.nn import MultiheadAttention

    from avseld.inference import load_model

    mods = {n: m for n, m in load_model(run_dir).named_modules() if isinstance(m, MultiheadAttention)}
    out = {}
    for kind, pattern in (("self", r"(atem|mhsa)\.attn\.\d+"), ("cross", r"fusion\.layers\.\d+\.cross_attn")):
        found = [m for n, m in mods.items() if re.fullmatch(pattern, n)]
        out[kind] = (len(found), found[0].num_heads) if found else (0, 0)
    return out


def _differs(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape != b.shape or float(np.abs(a - b).mean()) > 0.05


# --------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------


def test_explorer_in_jupyterlab_redraws_what_is_chosen(browser, lab, workdir):
    nb = Page(browser, lab, "live.ipynb")
    page = nb.page
    nb.run_all()
    page.wait_for_selector(WIDGET_IMG, timeout=60_000)
    page.wait_for_selector(STATIC_IMG, timeout=60_000)
    assert "Error displaying widget" not in page.locator(".jp-Notebook").inner_text()
    assert page.locator(".jupyter-widgets-error-widget").count() == 0  # every widget view was created

    models = nb.options("model")
    assert len(models) == 3, models
    heads = {m: _module_heads(workdir / "data" / "runs" / re.search(r"\(([^)]+)\)$", m).group(1)) for m in models}
    # the model dropdown shows the whole run name: its text fits inside the <select>
    text_w, box_w = nb.select("model").evaluate(
        """s => { const c = document.createElement('canvas').getContext('2d'); c.font = getComputedStyle(s).font;
                  return [c.measureText(s.options[s.selectedIndex].text).width, s.clientWidth]; }""")
    assert text_w + 16 <= box_w, (text_w, box_w)

    def choose(label: str, value: str) -> None:
        """Select ``value`` in dropdown ``label``; wait for both pictures to redraw; check they changed."""
        before, src = nb.picture(WIDGET_IMG)
        static_before, static_src = nb.picture(STATIC_IMG)
        nb.select(label).select_option(label=value)
        nb.wait_src_change(WIDGET_IMG, src)
        nb.wait_src_change(STATIC_IMG, static_src)
        after, _ = nb.picture(WIDGET_IMG)
        assert _differs(before, after), f"{label} = {value}: the picture did not change"
        assert _differs(static_before, nb.picture(STATIC_IMG)[0]), f"{label} = {value}: the saved picture did not follow"

    def check_view() -> None:
        """The dropdowns offer exactly the chosen model's layers and heads; the picture says what it draws."""
        model = nb.chosen("model")
        title = page.locator(".widget-html-content").inner_text()  # the status line: the drawn maps' titles
        for kind, name in (("self", "audio self-attention"), ("cross", "audio→video cross-attention")):
            n_layers, n_heads = heads[model][kind]
            assert nb.options(f"{kind} layer") == [str(i) for i in range(max(n_layers, 1))], (model, kind)
            assert nb.options(f"{kind} head") == [str(i) for i in range(max(n_heads, 1))], (model, kind)
            if not n_heads:  # no such module: its choices are disabled and the picture says so
                assert nb.select(f"{kind} head").is_disabled() and f"no {name} in this model" in title
                continue
            layer, head = nb.chosen(f"{kind} layer"), nb.chosen(f"{kind} head")
            assert f"{name}: layer {layer} of {n_layers}, head {head} of {n_heads}" in title, (title, model)

    check_view()
    for model in models:
        if nb.chosen("model") != model:
            choose("model", model)
        check_view()
        for label in ("self head", "cross layer", "cross head", "self layer"):
            options = nb.options(label)  # the last choice, or the first where the last is already shown
            if len(options) < 2:  # a single layer (AV-SELD+'s one-layer fusion): nothing else to draw
                continue
            choose(label, options[-1] if nb.chosen(label) != options[-1] else options[0])
            check_view()
    clips = nb.options("clip")
    assert len(clips) >= 2
    choose("clip", clips[-1] if nb.chosen("clip") != clips[-1] else clips[0])
    check_view()
    assert not nb.errors, nb.errors
    assert page.locator(STDERR).count() == 0
    # saved from JupyterLab, the notebook keeps the last view as a plain picture: the widget's own PNG
    shown = page.evaluate("""async () => { const r = await fetch(document.querySelector('img.widget-image').src);
                                          const b = new Uint8Array(await r.arrayBuffer()); let s = '';
                                          for (const x of b) s += String.fromCharCode(x); return btoa(s); }""")
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
    saved = nbformat.read(str(lab[2] / "live.ipynb"), as_version=4)
    pngs = [o["data"]["image/png"] for c in saved.cells if c.cell_type == "code" for o in c.outputs
            if "image/png" in o.get("data", {})]
    assert pngs and pngs[-1].replace("\n", "") == shown
    page.close()


def test_executed_notebook_shows_the_explorer_without_a_kernel(browser, lab):
    """The executed copy as the smoke study wrote it, switched to "No Kernel" before anything runs: the
    explorer's picture is there, drawn from the saved output alone."""
    nb = Page(browser, lab, "saved.ipynb")
    page = nb.page
    page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session"
                           "?.kernel?.status === 'idle'", timeout=120_000)  # JupyterLab started one: let it settle
    page.locator(".lm-MenuBar-item", has_text=re.compile("^Kernel$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile("^Change Kernel")).first.click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("select").select_option(label="No Kernel")
    dialog.get_by_role("button", name="Select Kernel").click()
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.hasNoKernel", timeout=30_000)
    img = page.locator(STATIC_IMG)
    img.wait_for(timeout=60_000)
    width, height, complete = img.evaluate("e => [e.naturalWidth, e.naturalHeight, e.complete]")
    assert complete and width > 500 and height > 500, (width, height)
    pixels, _ = nb.picture(STATIC_IMG)
    assert pixels.std() > 10  # a drawn figure, not a blank box
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
    assert all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts), prompts  # the study's run, none of ours
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.hasNoKernel")
    assert not nb.errors, nb.errors
    page.close()
