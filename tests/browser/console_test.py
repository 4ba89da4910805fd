"""The web console in a real browser (Debian's chromium + chromium-driver,
headless, through Selenium): the page loads without console errors, takes a
token from the keyboard, shows "not available" for the sections this
admin-svc does not serve, lists the projections, shows a dry run's numbers
and an applied replay's progress bar reaching 100% (where those routes exist).

Run by tests/e2e/e2e_console.c, which starts admin-svc and passes:
  CONSOLE_URL         admin-svc's base URL
  CONSOLE_TOKEN       a platform:admin token (absent: AUTH=off)
  CONSOLE_PROJECTION  a projection the page must list (with the control routes)
  CONSOLE_CHECKS      "page" (load, token, sections, projections) or "replay"
                      (also a dry run and an applied replay: needs the whole stack)
  CHROMIUM, CHROMEDRIVER  the browser and driver (default: Debian's paths)
Exit status 0 when every check passed; 1 with a message otherwise.
"""
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

URL = os.environ["CONSOLE_URL"].rstrip("/")
TOKEN = os.environ.get("CONSOLE_TOKEN")
PROJECTION = os.environ.get("CONSOLE_PROJECTION", "user_profiles")
REPLAY = os.environ.get("CONSOLE_CHECKS", "replay") == "replay"
SECTIONS = {  # section id -> a route it needs
    "projections": "/v1/admin/projections",
    "replays": "/v1/admin/replays",
    "dlq": "/v1/admin/dlq",
    "sagas": "/v1/admin/sagas",
    "schemas": "/v1/schemas/subjects",
}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def find_binary(env, names):
    path = os.environ.get(env)
    if path:
        return path if os.access(path, os.X_OK) else None
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def start_browser():
    chromium = find_binary("CHROMIUM", ["chromium", "chromium-browser"])
    driver_path = find_binary("CHROMEDRIVER", ["chromedriver"])
    if not chromium or not driver_path:
        fail("no browser: this test needs Debian's chromium and chromium-driver "
             "(apt-get install chromium chromium-driver; deploy/local/deps.sh installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1366,900", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    except WebDriverException as e:
        fail("the browser does not start: %s" % e.msg)


def served(path):
    """Whether admin-svc has a route for GET path: asked directly, not through the page."""
    req = urllib.request.Request(URL + path, headers={"Authorization": "Bearer " + TOKEN} if TOKEN else {})
    try:
        with urllib.request.urlopen(req, timeout=10):
            return True
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        return not (e.code == 404 and "no such route" in body)


def wait(driver, seconds, cond, what):
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.2).until(cond)
    except TimeoutException:
        status = driver.find_element(By.ID, "status").text
        fail("%s: not within %d s (status line: %r)" % (what, seconds, status))


def check_labels(driver):
    """Every form control has a label, every button a name: usable from the keyboard and a screen reader."""
    for e in driver.find_elements(By.CSS_SELECTOR, "input, select"):
        eid = e.get_attribute("id")
        if not eid or not driver.find_elements(By.CSS_SELECTOR, "label[for='%s']" % eid):
            fail("form control without a label: %s" % e.get_attribute("outerHTML"))
    for b in driver.find_elements(By.TAG_NAME, "button"):
        if not (b.get_attribute("textContent") or "").strip():
            fail("button without a name: %s" % b.get_attribute("outerHTML"))


def check_tab_order(driver, ids):
    """Tab from the top of the page reaches the elements ids, in that order."""
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
    seen = []
    for _ in range(80):
        # to whatever has the focus (the tables re-render under it while polling)
        ActionChains(driver).send_keys(Keys.TAB).perform()
        seen.append(driver.execute_script("return document.activeElement ? document.activeElement.id : ''") or "")
        if seen[-1] == ids[-1]:
            break
    order = [i for i in seen if i in ids]
    if order != ids:
        fail("tab order reaches %s, not %s (focus went: %s)" % (order, ids, seen))


def main():
    available = {s: served(path) for s, path in SECTIONS.items()}
    driver = start_browser()
    try:
        driver.get(URL + "/")
        wait(driver, 20, lambda d: d.find_element(By.ID, "status").text.strip(), "the page starts")
        if "cqrs console" not in driver.title:
            fail("title is %r" % driver.title)
        check_labels(driver)
        if TOKEN:
            # The page asks for a token; it is typed and sent with Enter.
            box = driver.find_element(By.ID, "token-input")
            if not box.is_displayed():
                fail("AUTH is on but the page does not ask for a token")
            if driver.switch_to.active_element != box:
                fail("the token field does not have the focus")
            box.send_keys(TOKEN, Keys.ENTER)
            wait(driver, 10, lambda d: "token set" in d.find_element(By.ID, "status").text, "the token is taken")
        for s, ok in available.items():
            note = driver.find_element(By.CSS_SELECTOR, "#%s [data-unavailable]" % s)
            if note.is_displayed() == ok:
                fail("section %s: %s" % (s, "says not available though admin-svc serves it" if ok
                                          else "does not say not available"))
        checked = ["page", "labels", "token" if TOKEN else "no token (AUTH=off)", "not-available notes"]
        if available["projections"]:
            row = "#projections-table tbody tr[data-projection='%s']" % PROJECTION
            wait(driver, 30, EC.presence_of_element_located((By.CSS_SELECTOR, row)), "projection %s listed" % PROJECTION)
            checked.append("projections listed")
            # A keyboard user's focus on a row's button survives the table's polling.
            pause = driver.find_element(By.CSS_SELECTOR, row + " button")
            driver.execute_script("arguments[0].focus()", pause)
            wait(driver, 15, EC.staleness_of(pause), "the projections table polled again")
            focused = driver.execute_script(
                "const a = document.activeElement, tr = a && a.closest('tr');"
                "return tr ? tr.getAttribute('data-projection') + '/' + a.textContent : null")
            if focused != PROJECTION + "/Pause":
                fail("polling took the focus from the Pause button (now on %r)" % focused)
            checked.append("focus kept while polling")
        if REPLAY and not available["replays"]:
            fail("a replay was to be checked, but admin-svc has no /v1/admin/replays")
        if REPLAY:
            wait(driver, 10, lambda d: PROJECTION in [o.get_attribute("value") for o in
                                                      d.find_elements(By.CSS_SELECTOR, "#replay-projection option")],
                 "the replay form offers %s" % PROJECTION)
            Select(driver.find_element(By.ID, "replay-projection")).select_by_value(PROJECTION)
            check_tab_order(driver, ["replay-projection", "replay-from", "replay-tenant", "replay-dry-run"])
            checked.append("replay form in tab order")
            frm = driver.find_element(By.ID, "replay-from")
            frm.clear()
            frm.send_keys("beginning", Keys.ENTER)  # the keyboard submits the dry run
            wait(driver, 30, EC.visibility_of_element_located((By.ID, "dryrun-result")), "the dry run's result")
            events = driver.find_element(By.ID, "dryrun-events").text
            if not events.replace(",", "").isdigit():
                fail("the dry run shows no event count: %r" % events)
            if not driver.find_elements(By.CSS_SELECTOR, "#dryrun-table tbody tr"):
                fail("the dry run shows no partitions")
            apply = driver.find_element(By.ID, "replay-apply")
            if driver.switch_to.active_element != apply:
                fail("after the dry run the focus is not on Apply")
            checked.append("dry run shows %s events" % events)
            apply.send_keys(Keys.ENTER)  # the keyboard applies it
            done = ("#replays-table tbody tr[data-state='completed'] "
                    "[role='progressbar'][aria-valuenow='100']")
            wait(driver, 180, EC.presence_of_element_located((By.CSS_SELECTOR, done)),
                 "the applied replay's progress bar reaching 100%")
            checked.append("applied replay reached 100%")
        logs = driver.get_log("browser")
        errors = [e for e in logs if e.get("level") in ("SEVERE", "ERROR")]
        if errors:
            fail("console errors:\n" + "\n".join("  %s %s" % (e.get("source", ""), e["message"]) for e in errors))
        checked.append("no console errors (%d log entries)" % len(logs))
        print("console in chromium: " + "; ".join(checked))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
