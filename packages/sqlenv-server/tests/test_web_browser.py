"""The web page end to end, in a real headless Chromium against the real server.

The server runs in a subprocess (``python -m sqlenv_server``, conftest's
``start_server``) over the tiny data directory; Selenium drives Debian's ``chromium``
through ``chromedriver``. Skipped, with the reason, when either binary or the
``selenium`` package is missing. On failure a screenshot and the browser console are
saved into the test's ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver): "
        "apt-get install -y chromium chromium-driver",
        allow_module_level=True,
    )

pytest.importorskip(
    "selenium", reason="needs the selenium package (the sqlenv-server dev dependency group)"
)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT_S = 20
NUMBER = re.compile(r"[+-]?\d+\.\d+")


# ----------------------------------------------------------------- fixtures
@pytest.fixture
def server(start_server: Any) -> str:
    """The real server (``python -m sqlenv_server``, see conftest) on the tiny data."""
    return start_server().base


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
        "--window-size=1280,1400",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def screenshot_on_failure(driver: WebDriver, tmp_path: Path) -> Iterator[None]:
    """On a failed check, save a screenshot and add it, the status line and the console."""
    try:
        yield
    except Exception as exc:
        shot = tmp_path / "failure.png"
        try:
            driver.save_screenshot(str(shot))
            status = driver.find_element(By.ID, "status").text
            console = [entry["message"] for entry in driver.get_log("browser")]
        except Exception:  # the browser itself is gone: report the original failure
            raise exc from None
        raise AssertionError(
            f"{exc}\nscreenshot: {shot}\nstatus line: {status!r}\nconsole: {console}"
        ) from exc


# ------------------------------------------------------------------ helpers
def wait_for(driver: WebDriver, condition, message: str, timeout: float = WAIT_S):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: condition(d), message=message
    )


def signed_number(text: str) -> float:
    match = NUMBER.search(text)
    assert match, f"no signed number in {text!r}"
    return float(match.group())


def steps(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#step-log .step")


def wait_steps(driver: WebDriver, count: int) -> list[WebElement]:
    wait_for(
        driver,
        lambda d: (
            len(steps(d)) >= count
            and "is-busy" not in (d.find_element(By.TAG_NAME, "body").get_attribute("class") or "")
        ),
        f"the step log to show {count} steps",
    )
    return steps(driver)


def read_step(step: WebElement) -> dict[str, float]:
    """A logged step's reward and its breakdown, read off the page's text."""
    total = signed_number(step.find_element(By.CSS_SELECTOR, ".reward-total").text)
    layers = {
        layer: signed_number(
            step.find_element(By.CSS_SELECTOR, f".reward-breakdown .layer-{layer}").text
        )
        for layer in ("operational", "progress", "terminal")
    }
    return {"total": total, **layers}


def open_page(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/")
    wait_for(driver, lambda d: d.current_url.rstrip("/").endswith("/web"), "the redirect to /web/")
    assert driver.current_url == f"{base}/web/"
    wait_for(
        driver,
        lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "ok",
        "the page to connect to the WebSocket",
    )


def start_question(driver: WebDriver, question_id: str) -> None:
    box = driver.find_element(By.ID, "question-id")
    box.clear()
    box.send_keys(question_id)
    driver.find_element(By.ID, "go").click()
    wait_for(
        driver,
        lambda d: d.find_element(By.ID, "episode-question-id").text == question_id,
        f"the episode for {question_id} to start",
    )


def console_errors(driver: WebDriver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


# -------------------------------------------------------------------- tests
def test_play_an_episode_by_hand(server: str, browser: WebDriver, tmp_path: Path) -> None:
    driver = browser
    with screenshot_on_failure(driver, tmp_path):
        open_page(driver, server)
        # the database select is filled from api/questions (the eval split by default)
        wait_for(
            driver,
            lambda d: (
                "zoo"
                in [
                    o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#db option")
                ]
            ),
            "the database list to load",
        )
        # the split menu lists the data's splits (not a fixed train/eval), eval still chosen
        splits = [
            o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#split option")
        ]
        assert splits == ["", "eval", "train"]
        assert driver.find_element(By.ID, "split").get_attribute("value") == "eval"

        start_question(driver, "t_count")
        assert driver.find_element(By.ID, "question").text == "How many customers are there?"
        assert driver.find_element(By.ID, "db-id").text == "shop"
        assert driver.find_element(By.ID, "episode-difficulty").text == "easy"
        tables = [
            li.get_attribute("data-table")
            for li in driver.find_elements(By.CSS_SELECTOR, "#tables .table-item")
        ]
        assert tables == ["customer", "orders"]

        # 1. DESCRIBE a table by clicking its button
        driver.find_element(By.CSS_SELECTOR, "[data-testid='describe-customer']").click()
        first = wait_steps(driver, 1)[0]
        assert "DESCRIBE" in first.find_element(By.CSS_SELECTOR, ".action-badge").text
        cells = [td.text for td in first.find_elements(By.CSS_SELECTOR, ".result-table tbody td")]
        assert {"id", "name", "city"} <= set(cells)

        # 2. QUERY typed into the editor
        sql = driver.find_element(By.ID, "sql")
        sql.send_keys("SELECT count(*) FROM customer")
        driver.find_element(By.ID, "run-query").click()
        newest = wait_steps(driver, 2)[0]
        assert "QUERY" in newest.find_element(By.CSS_SELECTOR, ".action-badge").text
        assert [
            td.text for td in newest.find_elements(By.CSS_SELECTOR, ".result-table tbody td")
        ] == ["3"]

        # 3. ANSWER
        driver.find_element(By.ID, "answer").send_keys("3")
        driver.find_element(By.ID, "submit-answer").click()
        wait_for(
            driver, lambda d: d.find_element(By.ID, "summary").is_displayed(), "the episode summary"
        )

        logged = steps(driver)
        assert len(logged) == 3
        rewards = [read_step(step) for step in logged]
        for reward in rewards:  # each step shows its breakdown, and the layers add up
            layers = reward["operational"] + reward["progress"] + reward["terminal"]
            assert reward["total"] == pytest.approx(layers, abs=0.0021)
        assert rewards[0]["terminal"] == pytest.approx(1.0)  # newest first: the answer

        total = signed_number(driver.find_element(By.ID, "total-reward").text)
        assert total == pytest.approx(sum(r["total"] for r in rewards), abs=0.0021)
        assert total > 1
        assert signed_number(driver.find_element(By.ID, "summary-return").text) == pytest.approx(
            total, abs=0.0011
        )

        verdict = driver.find_element(By.ID, "summary-verdict")
        assert verdict.get_attribute("data-verdict") == "correct"
        assert "Correct" in verdict.text
        assert driver.find_element(By.ID, "gold-sql").text == "SELECT count(*) FROM customer"
        assert [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#gold-rows td")] == ["3"]
        assert "3" in driver.find_element(By.ID, "summary-steps").text

        # after the end: step controls off, new-episode controls on
        for control in ("run-query", "submit-answer", "sql", "answer"):
            assert not driver.find_element(By.ID, control).is_enabled(), control
        for control in ("random", "go", "watch-oracle", "again-random"):
            assert driver.find_element(By.ID, control).is_enabled(), control
        assert console_errors(driver) == []


def test_watch_the_oracle(
    start_server: Any, browser: WebDriver, tmp_path: Path, http_get: Any
) -> None:
    """With SQLENV_WEB_ORACLE=1 (judges' replays) the oracle replays any question."""
    driver = browser
    server = start_server(env={"SQLENV_WEB_ORACLE": "1"}).base
    with screenshot_on_failure(driver, tmp_path):
        status, body = http_get(f"{server}/web/api/oracle/e_keepers")
        assert status == 200, body
        plan = json.loads(body)
        plan = plan["actions"] if isinstance(plan, dict) else plan

        open_page(driver, server)
        box = driver.find_element(By.ID, "question-id")
        box.send_keys("e_keepers")
        driver.find_element(By.ID, "watch-oracle").click()
        wait_for(
            driver,
            lambda d: (
                d.find_element(By.ID, "summary").is_displayed()
                and d.find_element(By.ID, "summary-verdict").get_attribute("data-verdict")
                == "correct"
            ),
            "the oracle's replay to end with a correct answer",
            timeout=30,
        )
        assert driver.find_element(By.ID, "question").text == "Which keepers look after a lion?"
        logged = steps(driver)
        assert len(logged) == len(plan)
        kinds = [s.find_element(By.CSS_SELECTOR, ".action-badge").text for s in reversed(logged)]
        assert kinds == [a["action_type"] for a in plan]
        total = signed_number(driver.find_element(By.ID, "total-reward").text)
        assert total == pytest.approx(
            sum(read_step(s)["total"] for s in logged), abs=0.0011 * len(plan)
        )
        assert total > 1
        assert "Animal Keeper" in driver.find_element(By.ID, "gold-sql").text
        assert driver.find_element(By.ID, "watch-oracle").text == "Watch the oracle"
        assert console_errors(driver) == []


def test_the_oracle_replays_only_a_finished_question_by_default(
    server: str, browser: WebDriver, tmp_path: Path, http_get: Any
) -> None:
    """The plan is the gold: by default the page gets it only after its own episode."""
    driver = browser
    with screenshot_on_failure(driver, tmp_path):
        status, _ = http_get(f"{server}/web/api/oracle/e_lions")
        assert status == 403
        open_page(driver, server)
        start_question(driver, "e_lions")
        driver.find_element(By.ID, "watch-oracle").click()
        wait_for(
            driver,
            lambda d: "finished an episode" in d.find_element(By.ID, "status").text,
            "the page to say the oracle comes after the episode",
        )
        assert steps(driver) == []  # nothing was played

        driver.find_element(By.ID, "answer").send_keys("7")  # wrong: 2 lions
        driver.find_element(By.ID, "submit-answer").click()
        wait_for(
            driver,
            lambda d: (
                d.find_element(By.ID, "summary-verdict").get_attribute("data-verdict")
                == "incorrect"
            ),
            "the wrong answer's verdict",
        )
        driver.find_element(By.ID, "watch-oracle").click()
        wait_for(
            driver,
            lambda d: (
                d.find_element(By.ID, "summary-verdict").get_attribute("data-verdict") == "correct"
            ),
            "the oracle's replay of the finished question to end correctly",
            timeout=30,
        )
        assert driver.find_element(By.ID, "episode-question-id").text == "e_lions"
        assert console_errors(driver) == []


def test_an_unknown_question_id_is_explained_beside_the_box(
    server: str, browser: WebDriver, tmp_path: Path
) -> None:
    """The reason used to show only in the status pill at the top of the page, out of
    view from the picker; now it also shows right under the id box, which is marked."""
    driver = browser
    with screenshot_on_failure(driver, tmp_path):
        open_page(driver, server)
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        box = driver.find_element(By.ID, "question-id")
        box.clear()
        box.send_keys("no_such_question")
        driver.find_element(By.ID, "go").click()
        error = wait_for(
            driver,
            lambda d: (el := d.find_element(By.ID, "picker-error")).is_displayed() and el,
            "the error under the question id box",
        )
        assert error.text.startswith("Could not start question no_such_question: ")
        assert "no_such_question" in error.text[len("Could not start question no_such_question") :]
        assert box.get_attribute("aria-invalid") == "true"
        in_view = driver.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "return r.top >= 0 && r.bottom <= window.innerHeight;",
            error,
        )
        assert in_view
        box.send_keys("x")  # typing again clears it
        assert not driver.find_element(By.ID, "picker-error").is_displayed()
        assert box.get_attribute("aria-invalid") is None
        assert console_errors(driver) == []
