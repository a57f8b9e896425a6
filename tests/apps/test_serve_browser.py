"""The review desk in a real browser (Debian's chromium + chromium-driver, headless, driven by selenium):
the list, the event page, keyboard review of 100 events without a reload, and the map. Screenshots are
kept in out/test-artifacts/review-desk/."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from detector.apps.serve.app import create_app
from detector.apps.serve.run import desk_for
from detector.output.store import EventStore
from testkit.desk import multiply, served
from testkit.rtsp import REPO

ARTIFACTS = REPO / "out" / "test-artifacts" / "review-desk"
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and DRIVER.exists()):
        pytest.fail("the browser tests need Debian's chromium and chromium-driver: bash scripts/install-system-deps.sh")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.implicitly_wait(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def desk_out(tmp_path_factory: pytest.TempPathFactory, demo_bikes_scanned: Path) -> Path:
    """The parked-bike demo scanned for real, plus 100 events made from its two (half of them geo-tagged)."""
    out = tmp_path_factory.mktemp("browser") / "out"
    shutil.copytree(demo_bikes_scanned, out)
    store = EventStore(out / "events.sqlite")
    multiply(store, 100, geo=(52.3702, 4.8952))
    store.close()
    return out


def wait(driver, script: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for: {script}")


def test_keyboard_review_of_100_events_without_a_reload(browser, desk_out: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    out = tmp_path / "out"
    shutil.copytree(desk_out, out)
    with served(create_app(desk_for(out, None, None))) as url:
        browser.get(url + "/")
        wait(browser, "return document.querySelectorAll('tr.event').length >= 50")
        browser.execute_script("window.__sameLoad = true")
        browser.save_screenshot(str(ARTIFACTS / "list.png"))
        keys = ActionChains(browser)
        began = time.monotonic()
        for n in range(100):
            if n % 10 == 9:
                keys.send_keys("n").perform()
                wait(browser, "return !document.getElementById('reasons').hidden")
                keys.send_keys("1").perform()  # not a violation
            else:
                keys.send_keys("y").perform()
            wait(browser, f"return document.querySelectorAll('tr.event .badge:not(.none)').length >= {n + 1}")
        seconds = time.monotonic() - began
        assert browser.execute_script("return window.__sameLoad === true")  # no page load between events
        browser.save_screenshot(str(ARTIFACTS / "list-reviewed.png"))
        events = httpx.get(f"{url}/api/events", params={"limit": 200}).json()["events"]
    verdicts = [e["review"]["verdict"] for e in events if e["review"]]
    assert len(verdicts) == 100 and verdicts.count("rejected") == 10, verdicts
    rejected = [e for e in events if e["review"] and e["review"]["verdict"] == "rejected"]
    assert {e["review"]["reason"] for e in rejected} == {"not a violation"}
    assert seconds < 300, f"100 keyboard reviews took {seconds:.0f} s"
    print(f"100 keyboard reviews in {seconds:.1f} s")
    from detector.apps.review import export
    from detector.output.reviews import Reviews

    store = EventStore(out / "events.sqlite")
    counts = export(Reviews(store).reviewed(), out, tmp_path / "dataset")  # what the keyboard said, exported
    store.close()
    assert sum(n for (kind, verdict, _), n in counts.items() if verdict == "rejected") == 10
    assert sum(n for (kind, verdict, _), n in counts.items() if verdict == "confirmed") == 90


def test_the_event_page_zooms_reviews_and_steps_with_the_keyboard(browser, desk_out: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    out = tmp_path / "out"
    shutil.copytree(desk_out, out)
    with served(create_app(desk_for(out, None, None))) as url:
        browser.get(url + "/")
        wait(browser, "return document.querySelector('tr.event.selected')")
        first = browser.execute_script("return document.querySelector('tr.event.selected').dataset.id")
        ActionChains(browser).send_keys("j").send_keys("\n").perform()  # the second row, opened
        wait(browser, "return location.pathname.startsWith('/events/')")
        second = browser.execute_script("return document.getElementById('event').dataset.id")
        assert second != first
        wait(browser, "return document.getElementById('snapshot').naturalWidth > 0")
        browser.find_element(By.ID, "snapshot").click()
        assert "zoomed" in browser.find_element(By.CSS_SELECTOR, "figure.zoom").get_attribute("class")
        ActionChains(browser).send_keys("n").perform()
        wait(browser, "return !document.getElementById('reasons').hidden")
        ActionChains(browser).send_keys("2").perform()  # allowed here
        wait(browser, "return document.querySelector('#verdict .badge.rejected')")
        browser.save_screenshot(str(ARTIFACTS / "event.png"))
        ActionChains(browser).send_keys("j").perform()  # on to the next older event
        wait(browser, "const e = document.getElementById('event'); "
                      f"return e && e.dataset.id !== '{second}'")
        stored = httpx.get(f"{url}/api/events/{second}").json()
    assert stored["review"]["verdict"] == "rejected" and stored["review"]["reason"] == "allowed here"


def test_a_rejection_is_remembered_and_undone_on_the_rejected_page(browser, demo_bikes_scanned: Path,
                                                                   tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    out = tmp_path / "out"
    shutil.copytree(demo_bikes_scanned, out)
    with served(create_app(desk_for(out, None, None))) as url:
        first = httpx.get(f"{url}/api/events").json()["events"][0]["id"]
        browser.get(f"{url}/events/{first}")
        wait(browser, "return document.getElementById('reject')")
        ActionChains(browser).send_keys("n").perform()
        wait(browser, "return !document.getElementById('reasons').hidden")
        ActionChains(browser).send_keys("1").perform()  # not a violation
        note = wait(browser, "const n = document.getElementById('sticks'); return n && n.textContent")
        assert "remembered" in note
        browser.find_element(By.LINK_TEXT, "Rejected").click()
        wait(browser, f"return document.querySelector('button[data-undo=\"{first}\"]')")
        assert browser.execute_script("return document.querySelector('#suppressions img.thumb').naturalWidth") > 0
        browser.save_screenshot(str(ARTIFACTS / "rejected.png"))
        browser.find_element(By.CSS_SELECTOR, f'button[data-undo="{first}"]').click()
        wait(browser, f"return document.querySelector('tr[data-id=\"{first}\"]').classList.contains('lifted')")
        assert httpx.get(f"{url}/api/suppressions").json()["suppressions"] == []


def test_the_map_shows_geo_tagged_events_offline(browser, desk_out: Path) -> None:
    with served(create_app(desk_for(desk_out, None, None))) as url:
        browser.get(url + "/map")
        markers = wait(browser, "return document.getElementById('map').dataset.markers")
        assert int(markers) == 50  # every other of the 100 made events is geo-tagged
        assert browser.execute_script("return document.querySelectorAll('.leaflet-marker-icon').length") == 50
        browser.save_screenshot(str(ARTIFACTS / "map.png"))


def test_the_api_docs_render_from_the_package_without_a_network(browser, desk_out: Path) -> None:
    with served(create_app(desk_for(desk_out, None, None))) as url:
        browser.get(url + "/docs")
        title = wait(browser, "const t = document.querySelector('.swagger-ui .info .title'); return t && t.textContent")
        assert "review desk" in title
        assert wait(browser, "return document.querySelectorAll('.opblock').length") >= 4  # the API's operations
        browser.save_screenshot(str(ARTIFACTS / "docs.png"))


def _click_at(browser, x_frac: float, y_frac: float) -> None:
    """A click on the camera page's picture at fractions of its width and height."""
    from selenium.webdriver.common.action_chains import ActionChains

    svg = browser.find_element("id", "overlay")
    w, h = svg.size["width"], svg.size["height"]
    ActionChains(browser).move_to_element_with_offset(svg, x_frac * w - w / 2, y_frac * h - h / 2).click().perform()


def test_an_ignore_zone_drawn_over_a_bike_silences_it_and_a_bad_polygon_is_refused(
        browser, demo_bikes_scanned: Path, tmp_path: Path, videos, coco_card) -> None:
    """The zone editor in a real browser on the bike demo: an ignore zone drawn over one parked bike, saved; the
    next scan of the same video raises only the other bike, and the file keeps its comments. A bow-tie drawn
    after it is refused with the reason, and nothing is written."""
    from selenium.webdriver.common.action_chains import ActionChains

    from detector.apps.scan import scan
    from detector.config.camera import load_camera

    out = tmp_path / "out"
    shutil.copytree(demo_bikes_scanned, out)
    camera_file = tmp_path / "demo-bikes.yaml"
    shutil.copyfile(REPO / "zones" / "demo-bikes.yaml", camera_file)
    events = EventStore(out / "events.sqlite").events()
    assert len(events) == 2
    target = min(events, key=lambda e: e["bbox"][0])  # the leftmost bike
    x1, y1, x2, y2 = target["bbox"]
    W, H = 1280, 640  # the demo scene
    corners = [(x1 - 20, y1 - 20), (x2 + 20, y1 - 20), (x2 + 20, y2 + 20), (x1 - 20, y2 + 20)]
    with served(create_app(desk_for(out, None, None, cameras=[camera_file]))) as url:
        browser.set_window_size(1366, 768)
        browser.get(url + "/cameras/demo-bikes")
        wait(browser, "return document.getElementById('frame').naturalWidth > 0", 30)
        wait(browser, "return document.querySelectorAll('#zones li').length === 1")
        keys = ActionChains(browser)
        keys.send_keys("n").perform()
        for x, y in corners:
            _click_at(browser, x / W, y / H)
        keys.send_keys("\ue007").perform()  # Enter closes the polygon
        wait(browser, "return document.querySelectorAll('#zones li').length === 2")
        assert "ignore" in browser.find_element("css selector", "#zones li.selected").text
        wait(browser, "return [...document.querySelectorAll('#detections li')].some("
                      "(li) => li.textContent.includes('inside ignore zone zone-2'))", 60)  # the preview's verdict
        browser.save_screenshot(str(ARTIFACTS / "camera-page.png"))
        keys.send_keys("s").perform()
        wait(browser, "return document.getElementById('status').textContent.startsWith('Saved')", 20)
        saved = camera_file.read_text()
        assert saved.startswith("# The parked-bike demo scene") and "type: ignore" in saved
        assert (tmp_path / "demo-bikes.yaml.bak").read_text() == (REPO / "zones" / "demo-bikes.yaml").read_text()
        keys.send_keys("n").perform()
        for x, y in [(0.05, 0.6), (0.3, 0.95), (0.3, 0.6), (0.05, 0.95)]:  # edges that cross: a bow-tie
            _click_at(browser, x, y)
        keys.send_keys("\ue007").perform()
        wait(browser, "return document.querySelector('#zones li.bad') !== null", 20)
        assert "not valid" in browser.find_element("css selector", "#zones li.bad").text
        keys.send_keys("s").perform()
        wait(browser, "return document.getElementById('status').textContent.startsWith('Not saved')", 20)
        assert "Self-intersection" in browser.find_element("id", "status").text or "not valid" in \
            browser.find_element("id", "status").text
        assert camera_file.read_text() == saved  # nothing written
    again = scan([videos["bikes_90s"]], load_camera(camera_file), coco_card, tmp_path / "again", fps=1.0)
    assert len(again.events) == 1 and again.events[0]["bbox"][0] > target["bbox"][2]  # only the other bike


def _drag_on(browser, element_id: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at `start`, drag to `end` and release on an element, at fractions of its width and height."""
    from selenium.webdriver.common.action_chains import ActionChains

    layer = browser.find_element("id", element_id)
    w, h = layer.size["width"], layer.size["height"]
    (ActionChains(browser).move_to_element_with_offset(layer, start[0] * w - w / 2, start[1] * h - h / 2)
     .click_and_hold().move_by_offset((end[0] - start[0]) * w, (end[1] - start[1]) * h).release().perform())


def _mark_missed(browser, url: str, kind: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """On the demo camera's page: Mark a missed violation of `kind`, dragged from `start` to `end`."""
    from selenium.webdriver.support.ui import Select

    browser.set_window_size(1366, 768)
    browser.get(url + "/cameras/demo-bikes")
    wait(browser, "return document.getElementById('frame').naturalWidth > 0", 30)
    Select(browser.find_element("id", "mark-kind")).select_by_visible_text(kind)
    browser.find_element("id", "mark").click()  # (or m, away from the kind list)
    wait(browser, "return !document.getElementById('mark-layer').hasAttribute('hidden')")
    _drag_on(browser, "mark-layer", start, end)
    wait(browser, "return document.getElementById('mark-status').textContent.startsWith('Marked')")


def test_a_missed_pile_is_drawn_on_the_camera_page_and_a_box_set_right_on_the_event_page(
        browser, demo_bikes_scanned: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    out = tmp_path / "out"
    shutil.copytree(demo_bikes_scanned, out)
    with served(create_app(desk_for(out, None, None, cameras=[REPO / "zones" / "demo-bikes.yaml"]))) as url:
        _mark_missed(browser, url, "garbage", (0.55, 0.6), (0.7, 0.95))
        browser.save_screenshot(str(ARTIFACTS / "mark-missed.png"))
        [mark] = httpx.get(f"{url}/api/cameras/demo-bikes/marks").json()["marks"]
        assert mark["kind"] == "garbage" and mark["width"] == 1280
        x1, y1, x2, y2 = mark["bbox"]
        assert abs(x1 - 0.55 * 1280) < 15 and abs(y2 - 0.95 * 640) < 15 and x2 > x1 and y2 > y1

        first = httpx.get(f"{url}/api/events").json()["events"][0]["id"]
        browser.get(f"{url}/events/{first}")
        wait(browser, "return document.getElementById('clean').naturalWidth > 0", 20)
        browser.execute_script("document.getElementById('clean').scrollIntoView()")
        ActionChains(browser).send_keys("b").perform()
        _drag_on(browser, "fix-layer", (0.2, 0.1), (0.35, 0.7))
        wait(browser, "return document.getElementById('fix-status').textContent.startsWith('Box set right')")
        stored = httpx.get(f"{url}/api/events/{first}").json()
        assert stored["review"]["verdict"] == "confirmed"


def test_draw_a_missed_pile_export_learn_promote_and_roll_back_in_the_desk(browser, demo_bikes_scanned: Path,
                                                                           tmp_path: Path, shared: Path) -> None:

    from detector.cli import main
    from testkit import script

    out = tmp_path / "out"
    shutil.copytree(demo_bikes_scanned, out)
    with served(create_app(desk_for(out, None, None, cameras=[REPO / "zones" / "demo-bikes.yaml"]))) as url:
        _mark_missed(browser, url, "garbage", (0.05, 0.55), (0.3, 0.98))  # the rubble by the left photo's kerb
        export = tmp_path / "export"
        assert main(["review", "export", "--events", str(out), "--out", str(export)]) == 0
        dev = shared / "datasets" / "street-garbage-dev"
        labels = script("simulate_site").two_days(dev / "labels.csv", tmp_path / "site", 8)
        cn = shared / "datasets" / "cn-street-garbage"
        learnt = tmp_path / "learnt"
        assert main(["learn", "--out", str(learnt), "--reviews", str(export), "--photos", str(dev / "images"),
                     "--labels", str(labels), "--keep", str(cn), "--keep-sample", "4", "--reference", str(cn),
                     "--reference-limit", "4", "--epochs", "1", "--holdout-share", "0.5"]) == 0
        report = json.loads((learnt / "report.json").read_text())
        assert "demo-bikes|" in " ".join(report["site"]["train_days"])  # the drawn pile was learnt from
        assert main(["models", "promote", str(learnt), "--group", "demo", "--force", "--events", str(out)]) == 0
        browser.get(url + "/dashboard")
        row = wait(browser, "const b = document.querySelector('button[data-rollback=\"demo\"]'); "
                            "return b && b.closest('tr').textContent")
        assert "streetwatch-v4-site.yaml" in row
        browser.find_element("css selector", 'button[data-rollback="demo"]').click()
        browser.switch_to.alert.accept()
        wait(browser, "const t = document.getElementById('cards'); return t && t.textContent.includes('rolled back')")
        browser.save_screenshot(str(ARTIFACTS / "cards.png"))
        [group] = httpx.get(f"{url}/api/cards").json()["groups"]
    assert group["card"].endswith("cards/streetwatch-v4.yaml") and group["previous"] is None
    assert group["why"].startswith("rolled back from") and group["why"].endswith("streetwatch-v4-site.yaml")
