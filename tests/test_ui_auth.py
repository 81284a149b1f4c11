"""Users file, password hashing and the refusal to expose an unauthenticated app."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moe_app.auth import DEMO_USER, UserStore
from moe_app.cli import app as cli
from moe_app.config import load_config
from moe_app.errors import AuthError, ConfigError
from moe_app.ui.launch import is_loopback, launch_kwargs, prepare_environment


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    return tmp_path / "users.json"


def test_added_user_logs_in_with_right_password_only(users_file: Path) -> None:
    store = UserStore(users_file)
    store.add("dr.ada", "correct horse battery", role="reviewer")
    assert store.check("dr.ada", "correct horse battery").role == "reviewer"
    assert store.check("dr.ada", "wrong password!!") is None
    assert store.check("nobody", "correct horse battery") is None


def test_users_file_holds_salted_hashes_not_passwords(users_file: Path) -> None:
    store = UserStore(users_file)
    store.add("alice", "same-password-123")
    store.add("bob", "same-password-123")
    raw = users_file.read_text()
    assert "same-password-123" not in raw
    data = json.loads(raw)
    assert data["alice"]["hash"].startswith("$argon2id$")
    assert data["alice"]["hash"] != data["bob"]["hash"]  # salted
    assert stat.S_IMODE(os.stat(users_file).st_mode) == 0o600


@pytest.mark.parametrize(
    ("name", "password", "role"),
    [("x", "long enough pw", "clinician"), ("ok-name", "short", "clinician"), ("ok-name", "long enough pw", "god"), (DEMO_USER, "long enough pw", "clinician"), ("bad name", "long enough pw", "clinician")],
)
def test_bad_user_definitions_are_refused_and_nothing_written(users_file: Path, name: str, password: str, role: str) -> None:
    with pytest.raises(AuthError):
        UserStore(users_file).add(name, password, role)
    assert not users_file.exists()


def test_remove_and_duplicate(users_file: Path) -> None:
    store = UserStore(users_file)
    store.add("carol", "long enough pw")
    with pytest.raises(AuthError, match="already exists"):
        store.add("carol", "another long pw")
    store.remove("carol")
    assert store.list() == []
    with pytest.raises(AuthError):
        store.remove("carol")


def test_users_cli_add_list_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOE_APP_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    res = runner.invoke(cli, ["users", "add", "dave", "--role", "admin", "--password-stdin"], input="a long password\n")
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["users", "list"])
    assert "dave\tadmin" in res.output and "argon2" not in res.output
    res = runner.invoke(cli, ["users", "add", "eve", "--password-stdin"], input="short\n")
    assert res.exit_code == 2 and "at least" in res.output
    assert runner.invoke(cli, ["users", "remove", "dave"]).exit_code == 0
    assert UserStore(tmp_path / "users.json").list() == []


@pytest.mark.parametrize(("host", "expected"), [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False)])
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_public_bind_without_users_is_refused(tmp_path: Path) -> None:
    cfg = load_config({"MOE_APP_DATA_DIR": str(tmp_path), "MOE_APP_HOST": "0.0.0.0"})
    with pytest.raises(ConfigError, match="Refusing to listen"):
        prepare_environment(cfg)


def test_public_bind_with_users_requires_login_and_safe_settings(tmp_path: Path) -> None:
    cfg = load_config({"MOE_APP_DATA_DIR": str(tmp_path), "MOE_APP_HOST": "0.0.0.0"})
    UserStore(cfg.paths.users_file).add("frank", "a long password")
    settings = prepare_environment(cfg)
    assert not settings.demo_mode
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert os.environ["GRADIO_TEMP_DIR"] == str(settings.temp_dir)
    assert stat.S_IMODE(os.stat(settings.temp_dir).st_mode) == 0o700

    def auth(u: str, p: str) -> bool:
        return False

    kw = launch_kwargs(cfg, settings, auth)
    assert kw["auth"] is auth and kw["share"] is False and kw["enable_monitoring"] is False
    assert kw["run_history"] is False and kw["max_file_size"]
    assert all(str(p).endswith("assets/ui") for p in kw["allowed_paths"])


def test_loopback_without_users_is_demo_mode(tmp_path: Path) -> None:
    cfg = load_config({"MOE_APP_DATA_DIR": str(tmp_path)})
    settings = prepare_environment(cfg)
    assert settings.demo_mode
    assert launch_kwargs(cfg, settings, lambda u, p: True)["auth"] is None
