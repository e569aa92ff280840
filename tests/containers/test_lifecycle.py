"""The life of a container as a user drives it: run -d, ps, logs -f, exec, stop, rm, exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.containers.conftest import RUNTIMES, Corral
from tests.runtime.bundles import read_pty


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_detached_container_lifecycle(corral: Corral, name: str, runtime: str) -> None:
    cid = corral.out("run", "-d", "--runtime", runtime, "--name", name, "busybox",
                     "sh", "-c", "echo started; while true; do sleep 0.1; done")
    assert len(cid) == 64
    listing = corral.out("ps")
    assert name in listing and cid[:12] in listing and "Up " in listing

    follow = corral.popen("logs", "-f", name, stdout=subprocess.PIPE)
    assert follow.stdout is not None
    assert follow.stdout.readline() == "started\n"

    assert corral.out("exec", name, "sh", "-c", "echo $((6*7)) > /tmp/x; cat /tmp/x") == "42"
    assert corral.out("exec", "-e", "GREETING=hi", "-w", "/tmp", name, "sh", "-c", "echo $GREETING $PWD") == "hi /tmp"
    assert corral.out("exec", "-u", "nobody", name, "id", "-u") == "65534"

    # busybox sh as pid 1 ignores SIGTERM: stop waits the timeout, then SIGKILLs.
    started = time.monotonic()
    corral("stop", "-t", "1", name)
    assert 1 <= time.monotonic() - started < 8
    assert follow.wait(timeout=10) == 0  # logs -f ends when the container does
    assert corral.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    assert "Exited (137)" in corral.out("ps", "-a", "--filter", f"name={name}")
    assert name not in corral.out("ps")

    corral("rm", name)
    assert corral("inspect", name, check=False).returncode == 125
    assert not (corral.store / "containers" / cid).exists()


def test_stop_signal_is_sent_first(corral: Corral, name: str) -> None:
    corral("run", "-d", "--name", name, "busybox", "sh", "-c",
           "trap 'echo got-term; exit 3' TERM; while true; do sleep 0.1; done")
    time.sleep(0.3)
    started = time.monotonic()
    corral("stop", "-t", "10", name)
    assert time.monotonic() - started < 5
    assert corral.inspect(name, "{{.State.ExitCode}}") == "3"
    assert "got-term" in corral.out("logs", name)
    corral("rm", name)


def test_start_again_and_restart(corral: Corral, name: str) -> None:
    corral("run", "--name", name, "busybox", "sh", "-c", "date +%s%N >> /stamps; cat /stamps | wc -l")
    assert corral.out("start", "-a", name) == "2"  # the upper dir survives a stop
    corral("restart", "-t", "0", name)
    corral.out("wait", name)
    assert corral.out("logs", "--tail", "1", name) == "3"
    corral("rm", name)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exit_codes(corral: Corral, runtime: str) -> None:
    run = ("run", "--rm", "--runtime", runtime)
    assert corral(*run, "busybox", "true", check=False).returncode == 0
    assert corral(*run, "busybox", "false", check=False).returncode == 1
    assert corral(*run, "busybox", "sh", "-c", "exit 42", check=False).returncode == 42

    bad_flag = corral(*run, "--no-such-flag", "busybox", "true", check=False)
    assert bad_flag.returncode == 125 and bad_flag.stderr.count("\n") == 1
    assert "unknown flag: --no-such-flag" in bad_flag.stderr

    cannot = corral(*run, "busybox", "/etc/passwd", check=False)
    assert cannot.returncode == 126, cannot.stderr
    missing = corral(*run, "busybox", "no-such-program", check=False)
    assert missing.returncode == 127, missing.stderr
    assert "no-such-program" in missing.stderr and missing.stderr.count("\n") == 1
    assert corral.ids() == []


def test_killed_container_exits_137(corral: Corral, name: str) -> None:
    corral("run", "-d", "--name", name, "busybox", "sleep", "60")
    corral("kill", name)
    assert corral.out("wait", name) == "137"
    assert corral.inspect(name, "{{.State.OOMKilled}}") == "false"
    corral("rm", name)


def test_kill_with_signal_and_wait(corral: Corral, name: str) -> None:
    corral("run", "-d", "--name", name, "busybox", "sh", "-c", "trap 'exit 7' USR1; while true; do sleep 0.1; done")
    time.sleep(0.3)
    corral("kill", "-s", "USR1", name)
    assert corral.out("wait", name) == "7"
    corral("rm", name)


def test_wait_on_a_created_container_blocks_until_it_has_run(corral: Corral, name: str) -> None:
    corral("create", "--name", name, "busybox", "sh", "-c", "exit 3")
    waiter = corral.popen("wait", name, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    assert waiter.poll() is None, "wait returned before the container ever ran"
    corral("start", name)
    out, err = waiter.communicate(timeout=20)
    assert (waiter.returncode, out.strip()) == (0, "3"), err
    corral("rm", name)


def test_wait_on_a_created_container_ends_when_it_is_removed(corral: Corral, name: str) -> None:
    corral("create", "--name", name, "busybox", "true")
    waiter = corral.popen("wait", name, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    assert waiter.poll() is None
    corral("rm", name)
    _, err = waiter.communicate(timeout=20)
    assert waiter.returncode != 0 and "removed" in err


def test_rm_running_needs_force(corral: Corral, name: str) -> None:
    corral("run", "-d", "--name", name, "busybox", "sleep", "60")
    refused = corral("rm", name, check=False)
    assert refused.returncode == 125 and "stop it first" in refused.stderr
    corral("rm", "-f", name)
    assert corral.ids() == []


def test_pause_unpause(corral: Corral, name: str) -> None:
    corral("run", "-d", "--name", name, "busybox", "sleep", "60")
    corral("pause", name)
    assert corral.inspect(name, "{{.State.Status}} {{.State.Paused}}") == "paused true"
    assert "(Paused)" in corral.out("ps")
    assert corral("exec", name, "true", check=False).returncode == 125
    corral("unpause", name)
    assert corral.inspect(name, "{{.State.Status}}") == "running"
    corral("rm", "-f", name)


def test_rename_and_generated_names(corral: Corral, name: str) -> None:
    cid = corral.out("create", "busybox", "true")
    generated = corral.inspect(cid, "{{.Name}}").lstrip("/")
    assert "_" in generated
    corral("rename", generated, name)
    assert corral.inspect(cid, "{{.Name}}") == f"/{name}"
    taken = corral("create", "--name", name, "busybox", "true", check=False)
    assert taken.returncode == 125 and "already in use" in taken.stderr
    corral("rm", name)


def test_interactive_stdin(corral: Corral) -> None:
    out = corral("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input=b"hello\n")
    assert out.stdout == "HELLO\n"


def test_logs_options(corral: Corral, name: str) -> None:
    corral("run", "--name", name, "busybox", "sh", "-c", "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three")
    both = corral("logs", name)
    assert both.stdout == "one\nthree\n" and both.stderr == "two\n"
    assert corral.out("logs", "--tail", "1", name) == "three"
    stamped = corral.out("logs", "-t", "--tail", "1", name)
    assert stamped.endswith(" three") and stamped[:4].isdigit()
    assert corral.out("logs", "--since", "1h", name).splitlines() == ["one", "three"]
    assert corral.out("logs", "--until", "2000-01-01T00:00:00Z", name) == ""
    corral("rm", name)


def test_sigint_of_foreground_run_does_not_leave_garbage(corral: Corral) -> None:
    proc = corral.popen("run", "--rm", "busybox", "sleep", "30",
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the container is detached from its CLI: it keeps running under conmon
    assert len(corral.ids()) == 1
    corral("rm", "-f", *corral.ids())


def _pty_run(corral: Corral, *args: str) -> tuple[int, int]:
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - child
        os.execve(corral.binary, [corral.binary, *args], corral.env)
    return pid, fd


def test_tty_detach_keys_and_attach(corral: Corral, name: str) -> None:
    pid, fd = _pty_run(corral, "run", "-it", "--name", name, "busybox", "sh")
    assert b"/ # " in read_pty(fd, b"/ # ")
    os.write(fd, b"tty\n")
    assert b"/dev/pts/0" in read_pty(fd, b"/dev/pts/0")
    os.write(fd, b"\x10\x11")  # ctrl-p ctrl-q: detach, the container keeps running
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    os.close(fd)
    assert corral.inspect(name, "{{.State.Status}}") == "running"

    pid, fd = _pty_run(corral, "exec", "-it", name, "sh", "-c", "tty; exit 5")
    assert b"/dev/pts/" in read_pty(fd, b"/dev/pts/")
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 5
    os.close(fd)

    pid, fd = _pty_run(corral, "attach", name)
    time.sleep(0.3)
    os.write(fd, b"echo attached-$((40+2)); sleep 0.3; exit 4\n")
    assert b"attached-42" in read_pty(fd, b"attached-42")
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 4
    os.close(fd)
    corral("rm", name)
