"""The daemon's configuration: command line, TOML file, defaults, ignored names."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from watchkit import IGNORED

from streamconv.errors import UsageError
from streamconv.watch.config import (
    ConfigError,
    Naming,
    config_from_args,
    is_ignored,
    load_config,
    parse_command_line,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("name", "ignored"),
    [(n, True) for n in IGNORED] + [("x.json", False), ("x.ndjson", False), ("x.part.json", False)],
)
def test_ignored_names(name: str, ignored: bool) -> None:
    assert is_ignored(name) is ignored


def test_max_input_bytes_configuration(tmp_path: Path) -> None:
    def limit(inbox: Any) -> int:
        assert inbox.options.limits.max_input_bytes == inbox.max_input_bytes
        return int(inbox.max_input_bytes)

    base = [str(tmp_path / "i"), "--output-dir", "o"]
    assert limit(config_from_args(parse_command_line(base)).inboxes[0]) == 4 << 30
    cmd = parse_command_line([*base, "--max-input-bytes", "1000"])
    assert limit(config_from_args(cmd).inboxes[0]) == 1000
    cmd = parse_command_line([*base, "--max-input-bytes=0"])
    assert limit(config_from_args(cmd).inboxes[0]) == 0
    assert limit(load_config(write_toml(tmp_path, INBOX)).inboxes[0]) == 4 << 30
    body = INBOX + "max_input_bytes = 0\n"
    assert limit(load_config(write_toml(tmp_path, body)).inboxes[0]) == 0
    body = INBOX + 'options = "--max-input-bytes 500"\n'
    assert limit(load_config(write_toml(tmp_path, body)).inboxes[0]) == 500
    body = INBOX + 'options = "--max-input-bytes 500"\nmax_input_bytes = 700\n'
    assert limit(load_config(write_toml(tmp_path, body)).inboxes[0]) == 700  # the key wins
    with pytest.raises(ConfigError, match="max_input_bytes must be an integer >= 0"):
        load_config(write_toml(tmp_path, INBOX + "max_input_bytes = -1\n"))
    with pytest.raises(UsageError, match=None) as info:
        config_from_args(parse_command_line([*base, "--max-input-bytes", "lots"]))
    assert "--max-input-bytes" in info.value.message


# -- configuration ---------------------------------------------------------------------


def test_command_line(tmp_path: Path) -> None:
    cmd = parse_command_line(
        [str(tmp_path / "inbox"), "--output-dir", str(tmp_path / "out"), "+te", "-e", "-j", "3",
         "--pattern", "*.dicom.json", "--quiet-period=1.5", "--force-polling", "-v"]
    )  # fmt: skip
    config = config_from_args(cmd)
    inbox = config.inboxes[0]
    assert config.jobs == 3 and config.force_polling is True
    assert inbox.patterns == ("*.dicom.json",)
    assert inbox.quiet_period == 1.5
    assert inbox.options.explicit_length is False
    assert inbox.options.transfer_syntax.value == "1.2.840.10008.1.2.1"
    assert inbox.processing_dir == str(tmp_path / "processing")
    assert inbox.naming is Naming.DEFAULT


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inbox"], "--output-dir DIR is required"),
        (["a", "b", "--output-dir", "o"], "too many parameters"),
        (["--config", "x.toml", "+te"], "the configuration file holds every setting"),
        (["inbox", "--output-dir", "o", "+xx"], "Unknown option +xx"),
        (["inbox", "--output-dir", "o", "-j", "zero"], "invalid value for --jobs"),
        (["inbox", "--output-dir", "o", "-j", "0"], "jobs must be an integer >= 1"),
        (["inbox", "--output-dir", "o", "--on-success", "keep"], "move or delete"),
        (["inbox", "--output-dir", "o", "--filename-template", "{Nope}.dcm"], "'Nope'"),
        (["inbox", "--output-dir", "o", "--jobs"], "missing value for option --jobs"),
    ],
)
def test_command_line_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=None) as info:
        config_from_args(parse_command_line(argv))
    assert message in info.value.message


def write_toml(tmp_path: Path, body: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(body)
    return str(path)


INBOX = '[[inbox]]\npath = "in/box"\noutput_dir = "out"\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "at least one [[inbox]]"),
        ("jobz = 2\n" + INBOX, "unknown key(s) jobz"),
        ('[[inbox]]\npath = "in/box"\n', "'output_dir' is required"),
        (INBOX + 'options = "+te in.json"\n', "file names are not allowed"),
        (INBOX + 'options = "-v"\n', "logging options"),
        (INBOX + 'options = "+Uo"\n', "only allowed with --generate-new-uids"),
        (INBOX + 'on_success = "keep"\n', 'on_success must be "move" or "delete"'),
        (INBOX + "quiet_period = -1\n", "quiet_period must be a non-negative number"),
        (INBOX + "max_age = 0\n", "max_age must be a positive number"),
        (INBOX + "patterns = []\n", "'patterns' must be a non-empty list"),
        (INBOX + INBOX, "is configured twice"),
        (INBOX + '[[inbox]]\npath = "in/other"\noutput_dir = "o2"\n', "share the parent folder"),
        ("jobs = 0\n" + INBOX, "jobs must be an integer >= 1"),
        ("grace_period = true\n" + INBOX, "grace_period must be"),
        ("jobs = \n", "not valid TOML"),
    ],
)
def test_config_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_toml(tmp_path, body))
    assert message in info.value.message


def test_example_config_loads(tmp_path: Path) -> None:
    """examples/watch.toml with its /var/lib/streamconv tree moved under tmp_path."""
    example = (ROOT / "examples" / "watch.toml").read_text()
    (tmp_path / "var/lib/streamconv/bulk").mkdir(parents=True)
    body = example.replace("/var/lib/streamconv", str(tmp_path / "var/lib/streamconv"))
    config = load_config(write_toml(tmp_path, body))
    inbox = config.inboxes[0]
    assert (config.jobs, config.grace_period, config.min_free_bytes) == (4, 20.0, 2 << 30)
    assert inbox.naming is Naming.TEMPLATE
    assert inbox.filename_template == "{SOPInstanceUID}.dcm"
    assert inbox.options.explicit_length is False
    assert inbox.options.bulkdata_dirs == (str(tmp_path / "var/lib/streamconv/bulk") + "/",)
    assert (inbox.quiet_period, inbox.max_age, inbox.on_success) == (5.0, 3600.0, "move")
    assert inbox.max_input_bytes == inbox.options.limits.max_input_bytes == 1 << 30


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    config = config_from_args(parse_command_line([str(tmp_path / "i"), "--output-dir", "o"]))
    inbox = config.inboxes[0]
    assert config.jobs == (os.cpu_count() or 1)
    assert (config.grace_period, config.min_free_bytes, config.metrics_file) == (
        20.0,
        1 << 30,
        None,
    )
    assert inbox.patterns == ("*.json", "*.ndjson")
    assert (inbox.quiet_period, inbox.max_age, inbox.on_success) == (5.0, 3600.0, "move")
    assert replace(config, jobs=1).inflight_limit == 16
