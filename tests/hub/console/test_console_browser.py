"""The console in a real headless Chromium (Debian's), against a real hub fed by the simulated UPS:
SNMP UPS simulator → edge agent → Mosquitto → hub → alert stream → page. Screenshots are kept (see
conftest.artifact) and their paths printed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agenttools import agent_config, running_agent, write_agent_config
from golden.scenario_run import Case, ScaledClock, scenario_devices
from playwright.async_api import Browser, Page, async_playwright, expect
from services import MosquittoServer
from testkit import unique

from simulators.scenario import load_scenario

from .conftest import PEOPLE, ConsoleHub, artifact, console_settings, hub_with_clock

CHROMIUM = Path("/usr/bin/chromium")
UPS = Case(scenario="ups-mains-failure", pack="ups", speed=4.0, poll_s=0.5, tail_s=0)


def installed_chromium() -> str:
    """Debian's Chromium; a test fails (never skips) without it."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium", pytrace=False)
    return str(CHROMIUM)


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless; Playwright downloads nothing."""
    executable = installed_chromium()
    async with async_playwright() as playwright:
        # Sound without a click: the page's beep is exercised even where no user gesture came first.
        browser = await playwright.chromium.launch(
            executable_path=executable, args=["--autoplay-policy=no-user-gesture-required"]
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_console(browser: Browser, console: ConsoleHub, username: str, errors: list[str]) -> Page:
    """A new tab on the console, logged in as ``username``, its alert stream live."""
    context = await browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{username}: {exc}"))
    page.on("console", lambda msg: errors.append(f"{username}: {msg.text}") if "Content Security" in msg.text else None)
    await page.goto(f"{console.base_url}/console/")
    await page.fill("#username", username)
    await page.fill("#password", PEOPLE[username][0])
    await page.click("#login-submit")
    await expect(page.locator("#live")).to_have_text("live", timeout=10_000)
    return page


async def shot(page: Page, name: str) -> None:
    path = artifact(name)
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


@contextlib.asynccontextmanager
async def ups_losing_mains(console: ConsoleHub, tmp_path: Path) -> AsyncIterator[None]:
    """The UPS scenario played at UPS.speed through a real agent, for the block."""
    done = asyncio.Event()
    async with scenario_devices(load_scenario(UPS.scenario), UPS, done) as (entries, play):
        extra, *devices = entries
        config = agent_config(
            tmp_path / "agent", agent_id=unique("edge-"), mqtt_url=console.hub.settings.mqtt.url,
            topic_root=console.hub.settings.mqtt.topic_root, lines={}, devices=devices,
        )  # fmt: skip
        async with running_agent(write_agent_config(tmp_path / "agent.yaml", {**config, **extra})):
            player = asyncio.create_task(play())
            try:
                yield
            finally:
                done.set()
                await asyncio.wait_for(player, 10)


async def test_alert_from_the_ups_appears_live_is_acknowledged_and_a_viewer_has_no_buttons(
    tmp_path: Path, mosquitto: MosquittoServer, chromium: Browser
) -> None:
    clock = ScaledClock(UPS.speed)
    settings = console_settings(tmp_path, mosquitto, alerts={"rules": [str(UPS.rules)]})
    errors: list[str] = []
    async with hub_with_clock(settings, clock) as console:
        operator = await open_console(chromium, console, "ion", errors)
        viewer = await open_console(chromium, console, "vera", errors)
        await expect(operator.locator("#alerts-empty")).to_be_visible()
        # The week's figures (GET /reports/kpi) are drawn from the hub's own stores.
        await expect(operator.locator("#reports .kpi-summary")).to_contain_text("devices managed", timeout=10_000)
        clock.start()
        async with ups_losing_mains(console, tmp_path):
            row = operator.locator('#alerts tr[data-rule="ups.on-battery"]')
            # Live: no reload, no polling of /alerts (the page reads it once, at connection).
            await expect(row).to_be_visible(timeout=30_000)
            await expect(row.locator("td.state")).to_have_text("firing")
            await shot(operator, "console-alert-firing.png")
            seen_by_viewer = viewer.locator('#alerts tr[data-rule="ups.on-battery"]')
            await expect(seen_by_viewer).to_be_visible(timeout=10_000)
            await expect(seen_by_viewer.locator("button")).to_have_count(0)

            await row.locator('button[data-action="ack"]').click()
            await expect(row).to_have_attribute("data-state", "acknowledged")
            await expect(row.locator("td.state")).to_have_text("acknowledged (ion)")
            await expect(row.locator('button[data-action="ack"]')).to_have_count(0)
            # The viewer's page hears of the acknowledgement on its stream.
            await expect(seen_by_viewer).to_have_attribute("data-state", "acknowledged", timeout=10_000)

            # The battery runs low (39 s into the scenario): a critical alert, a banner and a beep.
            critical = operator.locator('#alerts tr[data-rule="ups.low-battery"]')
            await expect(critical).to_be_visible(timeout=30_000)
            await expect(operator.locator("#critical-banner")).to_be_visible()
            await expect(operator.locator("#critical-banner")).to_contain_text("New critical alert")
            await expect(operator.locator("body")).to_have_attribute("data-beeps", "1")
            assert (await operator.title()).startswith("(!)")
            await shot(operator, "console-critical.png")
            await shot(viewer, "console-viewer.png")

        await operator.select_option("#lang", "ro")
        await expect(operator.locator("#alerts-title")).to_have_text("Alerte")
        await expect(operator.locator("th").first).to_have_text("Gravitate")
        await expect(row.locator("td.state")).to_have_text("preluată (ion)")
        await expect(operator.locator("#live")).to_have_text("în direct")
        await expect(operator.locator("#critical-banner")).to_contain_text("Alertă critică nouă")
        await expect(operator.locator("#reports-title")).to_have_text("Cifrele ultimelor 7 zile")
        await shot(operator, "console-romanian.png")
        await operator.context.close()
        await viewer.context.close()
    assert not errors


async def test_login_refusal_and_romanian_by_default_for_a_romanian_browser(
    console_hub: ConsoleHub, chromium: Browser
) -> None:
    context = await chromium.new_context(locale="ro-RO")
    page = await context.new_page()
    await page.goto(f"{console_hub.base_url}/console/")
    await expect(page.locator("#login-submit")).to_have_text("Intră")
    await page.fill("#username", "paula")
    await page.fill("#password", "not-her-password")
    await page.click("#login-submit")
    await expect(page.locator("#login-error")).to_have_text("Nume de utilizator sau parolă greșite.")
    await page.fill("#password", PEOPLE["paula"][0])
    await page.click("#login-submit")
    await expect(page.locator("#who")).to_contain_text("operator Poliția Locală")
    await expect(page.locator("#alerts-empty")).to_have_text("Nicio alertă.")
    await page.select_option("#lang", "en")
    await expect(page.locator("#login-view")).to_be_hidden()
    await expect(page.locator("#alerts-empty")).to_have_text("No alerts.")
    await shot(page, "console-login-police.png")
    await context.close()
