"""Config: defaults, precedence of the four sources, and errors that name key and source."""

from __future__ import annotations

from pathlib import Path

import pytest

from pelagos.errors import ConfigError
from pelagos.runtime.config import Config, load_config

NO_ENV: dict[str, str] = {}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = load_config(env=NO_ENV)
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 19530
    assert config.server.metrics_port == 9091
    assert config.data_dir == Path("data")
    assert config.log.kind == "jetstream" and config.log.nats_url == ""
    assert config.meta.endpoints == [] and config.meta.root == "pelagos"
    assert config.objects.kind == "local" and config.objects.s3.bucket == "pelagos"
    assert config.objects_root == Path("data/objects")
    assert config.dataset.shards_num == 1
    assert config.dataset.segment_max_bytes == 1024 * 1024 * 1024
    assert config.dataset.seal_idle_seconds == 600
    assert config.dataset.locality_order_min_bytes == 64 * 1024 * 1024
    assert config.dataset.time_tick_interval_ms == 200
    assert config.query.max_topk == 16384
    assert config.logging.level == "INFO"


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "p.toml",
        'data_dir = "/from/file"\n[server]\nport = 1001\nmetrics_port = 2001\nhost = "10.0.0.1"\n'
        "[query]\nmax_topk = 77\n",
    )
    env = {"PELAGOS_SERVER__PORT": "1002", "PELAGOS_SERVER__METRICS_PORT": "2002"}
    config = load_config(file, env=env, overrides={"server.port": 1003})
    assert config.server.port == 1003  # flag beats env
    assert config.server.metrics_port == 2002  # env beats file
    assert config.server.host == "10.0.0.1"  # file beats default
    assert config.query.max_topk == 77
    assert config.data_dir == Path("/from/file")
    assert config.query.search_threads == 0  # default untouched


def test_override_of_none_changes_nothing() -> None:
    config = load_config(env={"PELAGOS_SERVER__PORT": "1002"}, overrides={"server.port": None})
    assert config.server.port == 1002


def test_yaml_file_and_config_file_from_env(tmp_path: Path) -> None:
    file = write(tmp_path, "p.yaml", "objects:\n  kind: s3\n  s3:\n    endpoint: 127.0.0.1:8333\n")
    config = load_config(env={"PELAGOS_CONFIG": str(file)})
    assert config.objects.kind == "s3"
    assert config.objects.s3.endpoint == "127.0.0.1:8333"


def test_env_lists_bools_and_top_level() -> None:
    env = {
        "PELAGOS_META__ENDPOINTS": "127.0.0.1:1, 127.0.0.1:2",
        "PELAGOS_OBJECTS__S3__SECURE": "true",
        "PELAGOS_DATA_DIR": "/tmp/x",
        "PELAGOS_UNRELATED_SETTING": "not config",  # no section prefix: not read
        "HOME": "/root",
    }
    config = load_config(env=env)
    assert config.meta.endpoints == ["127.0.0.1:1", "127.0.0.1:2"]
    assert config.objects.s3.secure is True
    assert config.data_dir == Path("/tmp/x")
    assert load_config(env={"PELAGOS_META__ENDPOINTS": '["a:1"]'}).meta.endpoints == ["a:1"]


def test_unknown_key_in_file_names_key_file_and_allowed(tmp_path: Path) -> None:
    file = write(tmp_path, "bad.toml", "[server]\nprot = 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(file, env=NO_ENV)
    message = str(err.value)
    assert "'server.prot'" in message
    assert str(file) in message
    assert "host, port, metrics_port" in message


def test_unknown_section_in_file(tmp_path: Path) -> None:
    file = write(tmp_path, "bad.yaml", "serverz:\n  port: 1\n")
    with pytest.raises(ConfigError, match=r"'serverz'.*bad\.yaml.*allowed keys in the top level: data_dir"):
        load_config(file, env=NO_ENV)


def test_unknown_key_in_env_names_variable() -> None:
    with pytest.raises(ConfigError, match=r"'server.prot'.*PELAGOS_SERVER__PROT.*host, port, metrics_port"):
        load_config(env={"PELAGOS_SERVER__PROT": "1"})


def test_single_underscore_env_points_at_double_underscore() -> None:
    with pytest.raises(ConfigError, match=r"PELAGOS_LOG_LEVEL.*double underscore"):
        load_config(env={"PELAGOS_LOG_LEVEL": "DEBUG"})


def test_unknown_key_in_flags() -> None:
    with pytest.raises(ConfigError, match=r"'server.nope'.*flag --nope"):
        load_config(env=NO_ENV, overrides={"server.nope": 1}, override_sources={"server.nope": "flag --nope"})


def test_invalid_value_names_key_source_and_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(env={"PELAGOS_OBJECTS__KIND": "gcs"})
    assert "'objects.kind'" in str(err.value)
    assert "PELAGOS_OBJECTS__KIND" in str(err.value)
    assert "'local' or 's3'" in str(err.value)

    file = write(tmp_path, "v.toml", "[server]\nport = 70000\n")
    with pytest.raises(ConfigError, match=r"'server.port' = 70000 from config file .*v\.toml.*65535"):
        load_config(file, env=NO_ENV)

    with pytest.raises(
        ConfigError, match=r"'server.port' = 'abc' from environment variable PELAGOS_SERVER__PORT"
    ):
        load_config(env={"PELAGOS_SERVER__PORT": "abc"})

    with pytest.raises(ConfigError, match=r"'logging.level'.*flag --log-level.*'DEBUG'"):
        load_config(
            env=NO_ENV,
            overrides={"logging.level": "LOUD"},
            override_sources={"logging.level": "flag --log-level"},
        )


def test_section_set_to_a_scalar_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'server'.*section"):
        load_config(env={"PELAGOS_SERVER": "x"})
    file = write(tmp_path, "s.toml", 'server = "x"\n')
    with pytest.raises(ConfigError, match=r"'server'.*s\.toml"):
        load_config(file, env=NO_ENV)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.toml", env=NO_ENV)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "b.toml", "[server\n"), env=NO_ENV)
    with pytest.raises(ConfigError, match="unknown format"):
        load_config(write(tmp_path, "b.ini", "[server]\n"), env=NO_ENV)
    with pytest.raises(ConfigError, match="table of sections"):
        load_config(write(tmp_path, "l.yaml", "- 1\n- 2\n"), env=NO_ENV)


def test_dump_round_trips_and_masks_secrets(tmp_path: Path) -> None:
    env = {
        "PELAGOS_OBJECTS__KIND": "s3",
        "PELAGOS_OBJECTS__S3__SECRET_KEY": "hunter2",
        "PELAGOS_META__ENDPOINTS": "a:1,b:2",
        "PELAGOS_DATASET__SEGMENT_MAX_ROWS": "1000",
        "PELAGOS_LOG__RETENTION__MAX_AGE_SECONDS": "3600",
    }
    config = load_config(env=env)
    shown = config.dump()
    assert "hunter2" not in shown and 'secret_key = "***"' in shown
    revealed = config.dump(show_secrets=True)
    assert "hunter2" in revealed
    again = load_config(write(tmp_path, "dump.toml", revealed), env=NO_ENV)
    assert again == config
    assert load_config(write(tmp_path, "d.toml", Config().dump()), env=NO_ENV) == Config()


def test_config_is_immutable() -> None:
    config = Config()
    with pytest.raises(ValueError):
        config.server.port = 1  # type: ignore[misc]


def test_empty_env_value_unsets_an_optional_key() -> None:
    assert load_config(env={"PELAGOS_LOG__NATS_PORT": ""}).log.nats_port is None
    assert load_config(env={"PELAGOS_LOG__NATS_PORT": "4333"}).log.nats_port == 4333
    # unset: sealed segments keep their insertion order
    assert (
        load_config(env={"PELAGOS_DATASET__LOCALITY_ORDER_MIN_BYTES": ""}).dataset.locality_order_min_bytes
        is None
    )
    with pytest.raises(ConfigError, match=r"'server\.port'"):
        load_config(env={"PELAGOS_SERVER__PORT": ""})


def test_retention_as_channel_limits() -> None:
    config = load_config(env={"PELAGOS_LOG__RETENTION__MAX_BYTES": "1048576"})
    limits = config.log.retention.as_limits()
    assert limits.max_bytes == 1048576 and limits.max_age_seconds is None and limits.max_messages is None
