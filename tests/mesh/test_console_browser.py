"""The console in a real browser: Debian's Chromium driven by Playwright (no browser download).

While `meshmart load` runs, the page must draw the services with a non-zero edge rate, show a
node's details on click, and apply a scenario from the Istio Config page that then shows on
the graph. The screenshot it saves is the one the README shows (docs/images/).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from playwright.async_api import Page, async_playwright, expect

from mesh.paths import REPO_ROOT
from tests.mesh.conftest import Mesh
from tests.support.shoppers import Customer

SCREENSHOT = REPO_ROOT / "docs" / "images" / "console-graph.png"
ORDER_HOST = "order-service.meshmart.svc.cluster.local"
SERVICES = ("service:user-service", "service:catalog-service", "service:order-service")


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:  # a failure, not a skip: `make test` installs it (make browser)
        pytest.fail("Debian's chromium is not installed: run `make browser` (apt-get)")
    return found


@pytest.fixture
def shoppers(mesh: Mesh) -> Iterator[None]:
    load = subprocess.Popen(
        [".venv/bin/meshmart", "load", "--via", "mesh", "--rps", "8", "--duration", "120",
         "--run-dir", str(mesh.run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield
    load.terminate()
    load.wait(timeout=30)


@pytest.fixture
async def page(mesh: Mesh) -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium(),
                                                   args=["--no-sandbox"])  # fmt: skip
        try:
            yield await browser.new_page(viewport={"width": 1500, "height": 850})
        finally:
            await browser.close()


async def drawn(page: Page, expression: str) -> object:
    """Evaluate against the cytoscape instance the page draws with (window.meshGraph)."""
    return await page.evaluate(f"(cy => {expression})(window.meshGraph)")


async def test_the_console_draws_the_live_mesh_and_applies_a_scenario(
    mesh: Mesh, page: Page, shoppers: None, http: aiohttp.ClientSession, customer: Customer
) -> None:
    console = mesh.state["console"]["url"]
    await page.goto(console)
    # every Service is drawn inside the graph's viewport, and some edge carries traffic
    await page.wait_for_function(
        """ids => { const cy = window.meshGraph; const box = cy.extent();
            return ids.every(id => { const n = cy.getElementById(id);
              if (n.empty()) return false; const p = n.position();
              return p.x >= box.x1 && p.x <= box.x2 && p.y >= box.y1 && p.y <= box.y2; })
            && cy.edges().some(e => e.data("rate") > 0); }""",
        arg=list(SERVICES),
        timeout=30_000,
    )
    rates = page.get_by_test_id("edge-row").locator("td.rate")
    await expect(rates.first).not_to_have_text("0", timeout=10_000)
    await expect(page.get_by_test_id("live")).to_contain_text("live")

    # a click on order-service v1 opens its details: instances with the PIDs the shop runs
    position = await drawn(page, 'cy.getElementById("version:order-service:v1").renderedPosition()')
    assert isinstance(position, dict)
    box = await page.locator("#cy").bounding_box()
    assert box is not None
    await page.mouse.click(box["x"] + position["x"], box["y"] + position["y"])
    panel = page.get_by_test_id("panel")
    await expect(page.get_by_test_id("details-title")).to_contain_text("order-service v1")
    await expect(panel).to_contain_text(str(mesh.workload("order-service-v1-0")["app_pid"]))

    # apply the 90/10 canary from the Istio Config page and watch it on the graph
    await page.get_by_role("link", name="Istio Config").click()
    await page.get_by_test_id("scenario").select_option("virtual-service-order-90-10.yaml")
    await page.get_by_test_id("apply-scenario").click()
    try:
        await expect(page.get_by_test_id("apply-result")).to_contain_text("applied", timeout=20_000)
        await page.get_by_role("link", name="Traffic Graph").click()
        orders = f"http://{mesh.state['loadgen']['outbound'][ORDER_HOST]}/{customer.user_id}/orders"
        for _ in range(40):  # enough calls that the 10 % reach v2 within the window
            async with http.get(orders, headers={"Authorization": f"Bearer {customer.token}"}):
                pass
        await page.wait_for_function(
            """() => { const e = window.meshGraph.getElementById(
                "service:order-service->version:order-service:v2");
              return !e.empty() && e.data("text").includes("10%"); }""",
            timeout=30_000,
        )
        await page.wait_for_timeout(2500)  # one more refresh, so the picture is settled
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT))
    finally:
        async with http.post(f"{console}/api/config/apply",
                             json={"file": "virtual-service-all-v1.yaml"}) as resp:  # fmt: skip
            assert resp.status == 200, await resp.text()
