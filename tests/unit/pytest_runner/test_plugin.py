"""The pytest plugin, run for real: pytest in a subprocess on sample tests, then read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

PLUGIN_ROOT = Path(__file__).resolve().parents[3] / "images" / "pytest-runner"

SAMPLE = """
import pytest

def test_passes(release, namespace, revision, image_tag, helm_e2e):
    assert (release, namespace, revision, image_tag) == ("web", "shop", 7, "1.2.3")
    assert helm_e2e.run == "web-7"

def test_fails():
    assert 1 == 2

@pytest.mark.skip(reason="later")
def test_skipped():
    pass

@pytest.mark.xfail
def test_xfail():
    assert False

@pytest.fixture
def broken():
    raise RuntimeError("setup")

def test_setup_error(broken):
    pass
"""


def run_pytest(
    tmp_path: Path, source: str, *args: str, env: dict[str, str] | None = None
) -> tuple[int, Path, Path]:
    tests = tmp_path / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "test_sample.py").write_text(source)
    term, junit = tmp_path / "termination-log", tmp_path / "reports" / "junit.xml"
    junit.parent.mkdir(exist_ok=True)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HELM_E2E_", "PYTEST_"))}
    full_env.update(
        {
            "PYTHONPATH": str(PLUGIN_ROOT),
            "HELM_E2E_RELEASE": "web",
            "HELM_E2E_NAMESPACE": "shop",
            "HELM_E2E_REVISION": "7",
            "HELM_E2E_IMAGE_TAG": "1.2.3",
            "HELM_E2E_RUN": "web-7",
            "HELM_E2E_TERMINATION_LOG": str(term),
            "HELM_E2E_JUNIT_FILE": str(junit),
        }
    )
    full_env.update(env or {})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "helm_e2e_pytest.plugin",
            "-p",
            "no:cacheprovider",
            "-q",
            "-c",
            os.devnull,
            "--rootdir",
            str(tmp_path),
            str(tests),
            *args,
        ],
        cwd=tmp_path,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, term, junit


def summary(path: Path) -> dict[str, Any]:
    text = path.read_text()
    assert len(text.encode()) < 4096
    data: dict[str, Any] = json.loads(text)
    return data


def test_summary_counts_each_outcome_and_lists_the_first_failures(tmp_path: Path) -> None:
    code, term, junit = run_pytest(tmp_path, SAMPLE)
    assert code == 1
    data = summary(term)
    assert {k: data[k] for k in ("passed", "failed", "skipped", "errors", "exitStatus")} == {
        "passed": 1,
        "failed": 1,
        "skipped": 2,
        "errors": 1,
        "exitStatus": 1,
    }
    assert data["firstFailures"] == [
        "tests/test_sample.py::test_fails",
        "tests/test_sample.py::test_setup_error",
    ]
    assert data["durationSeconds"] >= 0

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "1", "1")


def test_command_line_options_win_over_the_environment(tmp_path: Path) -> None:
    source = "def test_opts(release, revision, image_tag):\n    assert (release, revision, image_tag) == ('api', 9, 'x')\n"
    code, term, _ = run_pytest(tmp_path, source, "--release", "api", "--revision", "9", "--image-tag", "x")
    assert code == 0
    assert summary(term)["passed"] == 1


def test_summary_stays_under_4_kib_with_hostile_node_ids(tmp_path: Path) -> None:
    source = (
        "import pytest\n"
        "@pytest.mark.parametrize('x', ['é' * 3000 + str(i) for i in range(30)])\n"
        "def test_long(x):\n    assert False\n"
    )
    code, term, _ = run_pytest(tmp_path, source)
    assert code == 1
    data = summary(term)
    assert data["failed"] == 30
    assert 0 < len(data["firstFailures"]) <= 5
    assert all(len(f) <= 200 for f in data["firstFailures"])


def test_an_unwritable_termination_log_is_skipped_with_a_note(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "termination-log"
    code, _, _ = run_pytest(
        tmp_path, "def test_ok():\n    pass\n", env={"HELM_E2E_TERMINATION_LOG": str(missing)}
    )
    assert code == 0
    assert not missing.exists()


def test_the_operator_parses_what_the_plugin_writes(tmp_path: Path) -> None:
    from helm_e2e.core.results.run_tests import parse_pytest_summary

    _, term, _ = run_pytest(tmp_path, SAMPLE)
    parsed = parse_pytest_summary(term.read_text())
    assert parsed is not None
    assert (parsed.passed, parsed.failed, parsed.skipped, parsed.errors) == (1, 1, 2, 1)
    assert parsed.first_failures[0] == "tests/test_sample.py::test_fails"


# --- the artifacts directory (HELM_E2E_ARTIFACTS_DIR) ----------------------------------------------


def artifacts_env(directory: Path) -> dict[str, str]:
    return {"HELM_E2E_ARTIFACTS_DIR": str(directory)}


def test_junit_xml_and_output_land_in_the_artifacts_directory_with_file_paths(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    out.mkdir()
    code, term, reports_junit = run_pytest(tmp_path, SAMPLE, env=artifacts_env(out))
    assert code == 1
    assert not reports_junit.exists()  # the artifacts directory wins over the --junit-file default
    cases = {c.get("name"): c for c in ET.parse(out / "junit.xml").getroot().iter("testcase")}
    assert set(cases) == {"test_passes", "test_fails", "test_skipped", "test_xfail", "test_setup_error"}
    assert {c.get("file") for c in cases.values()} == {"tests/test_sample.py"}  # xunit1: node ids rebuild
    assert cases["test_fails"].find("failure") is not None
    output = (out / "pytest-output.txt").read_text()
    assert "FAILED tests/test_sample.py::test_fails - assert 1 == 2" in output
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error in " in output
    assert summary(term)["exitStatus"] == 1  # the termination-log summary is unchanged


def test_the_operator_reads_the_failures_from_the_plugins_junit_xml(tmp_path: Path) -> None:
    from helm_e2e.core.results.junit_reader import failures_from_junit

    out = tmp_path / "artifacts"
    out.mkdir()
    run_pytest(tmp_path, SAMPLE, env=artifacts_env(out))
    failures = failures_from_junit((out / "junit.xml").read_bytes())
    assert [(f.id, f.message) for f in failures] == [
        ("tests/test_sample.py::test_fails", "assert 1 == 2"),
        ("tests/test_sample.py::test_setup_error", 'failed on setup with "RuntimeError: setup"'),
    ]


def test_a_junitxml_given_by_the_user_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    out.mkdir()
    mine = tmp_path / "mine.xml"
    code, _, _ = run_pytest(
        tmp_path, "def test_ok():\n    pass\n", f"--junitxml={mine}", env=artifacts_env(out)
    )
    assert code == 0
    assert mine.exists()
    assert not (out / "junit.xml").exists()
    assert (out / "pytest-output.txt").exists()


def test_without_an_artifacts_directory_junit_goes_to_the_junit_file_with_file_paths(tmp_path: Path) -> None:
    code, _, junit = run_pytest(tmp_path, "def test_ok():\n    pass\n")
    assert code == 0
    (case,) = ET.parse(junit).getroot().iter("testcase")
    assert (case.get("file"), case.get("name")) == ("tests/test_sample.py", "test_ok")
    assert not (tmp_path / "pytest-output.txt").exists()


def test_a_missing_artifacts_directory_is_one_line_and_the_run_goes_on(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    code, term, _ = run_pytest(tmp_path, "def test_ok():\n    pass\n", env=artifacts_env(missing))
    assert code == 0
    assert summary(term)["passed"] == 1
    assert not missing.exists()


def test_an_unwritable_artifacts_directory_is_said_and_the_exit_code_kept(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    out.mkdir()
    out.chmod(0o500)
    try:
        code, term, _ = run_pytest(tmp_path, "def test_no():\n    assert 0\n", env=artifacts_env(out))
        writable = os.access(out, os.W_OK)  # root writes anyway: then the files are there
    finally:
        out.chmod(0o700)
    assert code == 1
    assert summary(term)["failed"] == 1
    assert (out / "junit.xml").exists() == writable


def test_pytest_output_keeps_only_the_last_mebibyte(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    out.mkdir()
    source = (
        "import pytest\n"
        "@pytest.mark.parametrize('x', range(300))\n"
        "def test_big(x):\n    print('é' * 6000)\n    assert False\n"
    )
    code, _, _ = run_pytest(tmp_path, source, "-vv", env=artifacts_env(out))
    assert code == 1
    data = (out / "pytest-output.txt").read_bytes()
    assert len(data) <= 1024 * 1024 + 100
    text = data.decode()  # cut on a character boundary
    assert text.startswith("[helm-e2e: the first ")
    assert "300 failed in " in text.rstrip().splitlines()[-1]  # the end is kept


def test_the_output_tail_is_bounded_whatever_is_written() -> None:
    from helm_e2e_pytest.artifacts import OutputTail

    tail = OutputTail(limit=10)
    for chunk in ("abc", "é" * 20, "0123456789ABC", "xyz"):
        tail.write(chunk)
        assert tail.size <= 10
    assert tail.getvalue().endswith(b"3456789ABCxyz"[-10:])
    assert tail.getvalue().decode().startswith("[helm-e2e: the first ")
    assert OutputTail(limit=10).getvalue() == b""
