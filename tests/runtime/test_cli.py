"""The pelagos command without servers: version, config show, run, usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pelagos.runtime.cli import main


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PELAGOS_"):
            monkeypatch.delenv(name)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("pelagos ")


def test_config_show_merges_file_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "p.toml"
    file.write_text("[query]\nmax_topk = 99\n")
    monkeypatch.setenv("PELAGOS_SERVER__PORT", "19999")
    assert main(["config", "show", "--config", str(file)]) == 0
    out = capsys.readouterr().out
    assert "max_topk = 99" in out and "port = 19999" in out


def test_config_error_is_exit_1_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PELAGOS_SERVER__PROT", "1")
    assert main(["config", "show"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pelagos: error: unknown config key 'server.prot'")
    assert "Traceback" not in err and err.count("\n") == 1


def test_run_role_is_not_yet_available(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "proxy"]) == 2
    assert "not yet available" in capsys.readouterr().err


def test_usage_errors_exit_2() -> None:
    for argv in ([], ["bogus"], ["standalone", "--port", "x"], ["run", "nobody"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
