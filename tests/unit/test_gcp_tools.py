"""`smscode dev --gcp` finds the SDK's emulator and Java, or says in one line what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from smscode_dev.cli import main
from smscode_dev.gcp import SCRIPT, ToolMissing, emulator_script, push_endpoint, require_java


def test_no_sdk_with_the_emulator_names_the_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing) as missing:
        emulator_script([tmp_path / "no-sdk", tmp_path])
    assert "google-cloud-cli-pubsub-emulator" in str(missing.value)
    assert "\n" not in str(missing.value)


def test_the_first_sdk_holding_the_script_wins(tmp_path: Path) -> None:
    sdk = tmp_path / "google-cloud-sdk"
    (sdk / SCRIPT).parent.mkdir(parents=True)
    (sdk / SCRIPT).touch()
    assert emulator_script([tmp_path / "elsewhere", sdk]) == sdk / SCRIPT


def test_no_java_names_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing) as missing:
        require_java({"PATH": str(tmp_path)})
    assert "Java" in str(missing.value)
    assert "default-jre-headless" in str(missing.value)


def test_java_home_is_looked_at_as_the_emulator_script_does(tmp_path: Path) -> None:
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.touch(mode=0o755)
    require_java({"PATH": str(tmp_path), "JAVA_HOME": str(tmp_path / "jdk")})


def test_the_push_endpoint_names_the_topic_for_functions_framework() -> None:
    # functions-framework builds the CloudEvent's source from the push URL's path
    endpoint = push_endpoint("http://127.0.0.1:8081/", "projects/p-1/topics/sms")
    assert endpoint == "http://127.0.0.1:8081/projects/p-1/topics/sms"


def test_dev_takes_one_cloud_shape_at_a_time(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--gcp", "--cloud"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
