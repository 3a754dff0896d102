import subprocess
import sys

from mercato.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_lists_valid_ones(capsys):
    assert main(["fatt"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'fatt'" in err and "fat" in err and "demo" in err


def test_console_entry_point_runs_as_module():
    out = subprocess.run(
        [sys.executable, "-m", "mercato", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "usage: mercato" in out.stdout
