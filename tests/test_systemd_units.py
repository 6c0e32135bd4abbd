"""systemd/ and examples/watch.toml: checked by systemd's own tools where installed."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "streamconv-watch@.service"
TMPFILES = ROOT / "systemd" / "streamconv.tmpfiles"
SYSUSERS = ROOT / "systemd" / "streamconv.sysusers"
EXAMPLE = ROOT / "examples" / "watch.toml"

MAX_EXPOSURE = 1.5


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (systemd is not available on this system)")
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def _directives(path: Path) -> dict[str, dict[str, list[str]]]:
    """Unit file -> {section: {key: [values in order]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"{path.name}: directive outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _seconds(value: str) -> float:
    """A systemd time span ("30", "30s", "1min 30s") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    """The template as instance `test`, with ExecStart= pointing at this interpreter.

    `systemd-analyze verify` insists that the executable exists.
    """
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/streamconv " in text
    text = text.replace(
        "ExecStart=/usr/local/bin/streamconv ", f"ExecStart={sys.executable} -m streamconv "
    )
    unit = tmp_path / "streamconv-watch@test.service"
    unit.write_text(text)
    return unit


# -- the service unit --------------------------------------------------------------------


def test_unit_passes_systemd_analyze_verify(instance: Path) -> None:
    tool = _tool("systemd-analyze")
    result = _run(tool, "verify", str(instance))
    # Complaints about unrelated units of the host (e.g. in a container) are not ours.
    ours = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if instance.name in line or str(instance) in line or "streamconv" in line
    ]
    assert ours == [], "\n".join(ours)


def test_unit_exposure_is_safe(instance: Path) -> None:
    tool = _tool("systemd-analyze")
    result = _run(
        tool, "security", "--offline=true", f"--threshold={int(MAX_EXPOSURE * 10)}", str(instance)
    )
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match, output
    assert float(match.group(1)) <= MAX_EXPOSURE, output
    assert result.returncode == 0, output


def test_unit_service_behaviour() -> None:
    """What streamconv.service and the daemon rely on (daemon-conventions §9, §12)."""
    service = _directives(UNIT)["Service"]
    assert service["Type"] in (["notify"], ["notify-reload"])
    assert service["NotifyAccess"] == ["main"]
    assert service["ExecStart"] == [
        "/usr/local/bin/streamconv watch --config /etc/streamconv/%i.toml"
    ]
    if service["Type"] == ["notify"]:
        assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert _seconds(service["WatchdogSec"][0]) == 30
    assert service["KillMode"] == ["mixed"]  # SIGTERM to the daemon only, not its workers
    assert service["Restart"] == ["on-failure"]
    assert service["SyslogLevelPrefix"] == ["true"]
    assert service["User"] == service["Group"] == ["streamconv"]
    # The drain must finish before systemd's SIGKILL.
    grace = tomllib.loads(EXAMPLE.read_text())["grace_period"]
    assert _seconds(service["TimeoutStopSec"][0]) > grace


def test_example_folders_are_writable_by_the_service() -> None:
    writable = [
        PurePosixPath(p.lstrip("-"))
        for line in _directives(UNIT)["Service"]["ReadWritePaths"]
        for p in line.split()
    ]
    config = tomllib.loads(EXAMPLE.read_text())
    paths = [config["metrics_file"]]
    for inbox in config["inbox"]:
        paths += [inbox["path"], inbox["output_dir"]]
    for path in map(PurePosixPath, paths):
        assert any(path.is_relative_to(w) for w in writable), f"{path} is not in ReadWritePaths="


# -- tmpfiles.d and sysusers.d -----------------------------------------------------------

TMPFILES_TYPES = set("fFwdDevqQpLcbCxXrRzZtThHaA")


def _tmpfiles_entries() -> list[list[str]]:
    entries = []
    for raw in TMPFILES.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            entries.append(line.split())
    return entries


def test_tmpfiles_parse() -> None:
    entries = _tmpfiles_entries()
    assert entries
    for fields in entries:
        assert 2 <= len(fields) <= 7, fields
        kind, path, mode, user, group, age = (fields + ["-"] * 7)[:6]
        assert kind.rstrip("!+-=~^") in TMPFILES_TYPES, fields
        assert PurePosixPath(path).is_absolute(), fields
        assert re.fullmatch(r"[0-7]{3,4}", mode), fields
        assert (user, group) == ("streamconv", "streamconv"), fields
        assert age == "-", fields
    created = {PurePosixPath(f[1]) for f in entries if f[0] == "d"}
    expected = {"inbox", "processing", "done", "failed", "out"}
    assert {PurePosixPath("/var/lib/streamconv", name) for name in expected} <= created
    # The example's folders all exist after `systemd-tmpfiles --create`.
    config = tomllib.loads(EXAMPLE.read_text())
    needed = [PurePosixPath(config["metrics_file"]).parent]
    for inbox in config["inbox"]:
        needed += [PurePosixPath(inbox["path"]), PurePosixPath(inbox["output_dir"])]
        words = inbox["options"].split()
        needed += [PurePosixPath(words[i + 1]) for i, w in enumerate(words) if w == "+Bd"]
    assert set(needed) <= created


def test_sysusers_and_tmpfiles_create_the_tree(tmp_path: Path) -> None:
    """Both files applied to an empty root, as package scripts do on install."""
    sysusers = _tool("systemd-sysusers")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    result = _run(sysusers, f"--root={root}", str(SYSUSERS))
    assert result.returncode == 0, result.stderr
    passwd = {
        line.split(":")[0]: line.split(":")
        for line in (root / "etc/passwd").read_text().splitlines()
    }
    group = {
        line.split(":")[0]: line.split(":")
        for line in (root / "etc/group").read_text().splitlines()
    }
    user = passwd["streamconv"]
    assert int(user[2]) < 1000, "a system user"
    assert user[3] == group["streamconv"][2]
    assert user[5] == "/var/lib/streamconv"
    assert user[6].endswith("nologin")

    tmpfiles = _tool("systemd-tmpfiles")
    if os.geteuid() != 0:
        pytest.skip("systemd-tmpfiles --create needs root to chown (no --dry-run in this systemd)")
    result = _run(tmpfiles, f"--root={root}", "--create", str(TMPFILES))
    assert result.returncode == 0, result.stderr
    uid, gid = int(user[2]), int(group["streamconv"][2])
    for kind, path, mode, *_ in _tmpfiles_entries():
        assert kind == "d", path
        st = (root / path.lstrip("/")).stat()
        assert stat.S_ISDIR(st.st_mode), path
        assert stat.S_IMODE(st.st_mode) == int(mode, 8), path
        assert (st.st_uid, st.st_gid) == (uid, gid), path


# -- the example configuration -----------------------------------------------------------

# Our own copy of the documented keys (examples/watch.toml's header is the documentation), on
# purpose not imported from watch/config.py: a key added there must be documented here too.
DOCUMENTED_TOP = {
    "jobs",
    "grace_period",
    "min_free_bytes",
    "metrics_file",
    "max_inflight",
    "rescan_interval",
    "retry_attempts",
    "retry_delay",
    "force_polling",
    "inbox",
}
DOCUMENTED_INBOX = {
    "path",
    "output_dir",
    "options",
    "patterns",
    "on_success",
    "quiet_period",
    "max_age",
    "filename_template",
    "max_input_bytes",
}


def test_example_config() -> None:
    text = EXAMPLE.read_text()
    config = tomllib.loads(text)
    assert set(config) <= DOCUMENTED_TOP
    assert config["inbox"], "at least one [[inbox]]"
    for inbox in config["inbox"]:
        assert set(inbox) <= DOCUMENTED_INBOX
        assert {"path", "output_dir"} <= set(inbox)
        assert inbox["on_success"] in ("move", "delete")
        assert all(isinstance(p, str) for p in inbox["patterns"])
        assert isinstance(inbox["options"], str)
    # Every key is explained in the header.
    header = text.split("\n\n")[0]
    for key in (DOCUMENTED_TOP - {"inbox"}) | DOCUMENTED_INBOX:
        assert re.search(rf"^#\s+{key}\s", header, re.MULTILINE), f"{key} is not documented"


# A value for every documented key, none of them the default: each must be read (into the
# attribute of the same name) by the loader, which refuses keys it does not know.
EVERY_TOP: dict[str, object] = {
    "jobs": 3,
    "grace_period": 7.5,
    "min_free_bytes": 12345,
    "metrics_file": "m/x.prom",
    "max_inflight": 5,
    "rescan_interval": 11.0,
    "retry_attempts": 4,
    "retry_delay": 0.5,
    "force_polling": True,
}
EVERY_INBOX: dict[str, object] = {
    "path": "in",
    "output_dir": "out",
    "options": "+te",
    "patterns": ["*.js"],
    "on_success": "delete",
    "quiet_period": 1.5,
    "max_age": 99.0,
    "filename_template": "{index:03d}.dcm",
    "max_input_bytes": 4321,
}


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def test_the_copy_names_every_documented_key() -> None:
    assert set(EVERY_TOP) == DOCUMENTED_TOP - {"inbox"}
    assert set(EVERY_INBOX) == DOCUMENTED_INBOX


def test_every_documented_key_is_read(tmp_path: Path) -> None:
    from streamconv.watch.config import load_config

    lines = [f"{k} = {_toml(v)}" for k, v in EVERY_TOP.items()] + ["[[inbox]]"]
    lines += [f"{k} = {_toml(v)}" for k, v in EVERY_INBOX.items()]
    path = tmp_path / "all.toml"
    path.write_text("\n".join(lines) + "\n")
    config = load_config(str(path))
    for key, value in EVERY_TOP.items():
        got = getattr(config, key)
        if key == "metrics_file":
            value = str(tmp_path / "m" / "x.prom")  # relative to the file's folder
        assert got == value, key
    inbox = config.inboxes[0]
    for key, value in EVERY_INBOX.items():
        got = getattr(inbox, key)
        if key in ("path", "output_dir"):
            value = str(tmp_path / str(value))
        elif key == "patterns":
            value = tuple(value)  # type: ignore[arg-type]
        elif key == "options":
            got = inbox.options_text
        assert got == value, key


@pytest.mark.parametrize("where", ["top", "inbox"])
def test_an_undocumented_key_is_refused(tmp_path: Path, where: str) -> None:
    from streamconv.watch.config import ConfigError, load_config

    body = '[[inbox]]\npath = "in"\noutput_dir = "out"\n'
    body = ("colour = 1\n" + body) if where == "top" else (body + "colour = 1\n")
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match="colour"):
        load_config(str(path))
