"""The node processes' own options: --help, a mistyped option, bringup's --executor."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize('module', ['classifier', 'timestep_controller', 'energy_monitor'])
def test_help_prints_and_a_mistyped_option_is_an_error(module) -> None:
    """--help ran the node (for good); --autostrat started it silently, unconfigured."""
    command = [sys.executable, '-m', f'topspark_ros.nodes.{module}']
    shown = subprocess.run(command + ['--help'], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and '--autostart' in shown.stdout and '--executor' in \
        shown.stdout
    wrong = subprocess.run(command + ['--autostrat', '--ros-args', '-p', 'x:=1'],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and 'unrecognized arguments: --autostrat' in wrong.stderr


@pytest.mark.parametrize('module', ['image_player', 'event_player'])
def test_the_players_answer_help_and_refuse_in_one_line(module, tmp_path) -> None:
    """image_player --help started playing; a missing parameter file was a traceback."""
    command = [sys.executable, '-m', f'topspark_ros.nodes.{module}']
    shown = subprocess.run(command + ['--help'], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and '--ros-args' in shown.stdout, shown.stderr
    missing = str(tmp_path / 'gone.yaml')
    run = subprocess.run(command + ['--ros-args', '--params-file', missing],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stderr.strip() == \
        f'{module}.py: error: parameter file {missing} not found', run.stderr


def test_bringup_takes_the_executor(monkeypatch) -> None:
    from topspark_ros.nodes import bringup, runner

    seen = {}
    monkeypatch.setattr(runner, 'run_nodes', lambda factories, **kw: seen.update(kw) or 0)
    assert bringup.bringup(['--executor', 'multi', '-p', 'x:=1']) == 0
    assert seen['executor'] == 'multi' and '--executor' not in seen['args']
    assert seen['args'][-2:] == ['-p', 'x:=1']
    # single by default: on multi the three nodes took 13.6 to 25.1 % of a core at 30 frames
    # a second, 8.9 to 10.9 % on single (a review of the nodes' footprint).
    assert bringup.bringup([]) == 0 and seen['executor'] == 'single'


def test_a_plain_key_that_misses_a_namespaced_node_is_warned_about(tmp_path) -> None:
    """
    The README's 'classifier:' keys did not reach a classifier in a namespace, without a word.

    The shipped model then ran on the user's camera in place of theirs (a user review).
    """
    from topspark_ros.nodes.parameters import params_file_misses
    mine = tmp_path / 'mine.yaml'
    mine.write_text('classifier:\n  ros__parameters:\n    default_timesteps: 16\n'
                    '/**/timestep_controller:\n  ros__parameters:\n    mode: balanced\n')
    argv = ['classifier', '--ros-args', '--params-file', str(mine), '-r', '__ns:=/camA']
    (miss,) = params_file_misses('/camA/classifier', argv)
    assert str(mine) in miss and "'/**/classifier:'" in miss and '/camA/classifier' in miss
    assert params_file_misses('/classifier', argv) == []  # the root namespace's: it reaches it
    assert params_file_misses('/camA/timestep_controller', argv) == []
    assert params_file_misses('/camA/classifier', ['x', '--params-file', 'gone.yaml']) == []


def test_bringup_says_what_ros_arguments_are() -> None:
    """'topspark bringup --namespace /camA' failed with "error: ['--namespace', '/camA']"."""
    run = subprocess.run([sys.executable, '-m', 'topspark_ros.cli', 'bringup', '--namespace',
                          '/camA'], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "'--namespace', '/camA'" in run.stderr
    assert '-r __ns:=/camA' in run.stderr and 'Traceback' not in run.stderr


def test_a_value_for_a_parameter_the_node_lacks_is_warned_about(tmp_path) -> None:
    """
    A typo in a parameter file ('model_pth:') was ignored without a word (a user review).

    rclpy keeps values of undeclared names and says nothing; the node names each, with the
    closest parameter it has, from a file and from ``-p`` alike; its own parameters are quiet.
    """
    import time

    from processes import stop
    mine = tmp_path / 'mine.yaml'
    mine.write_text('/**/timestep_controller:\n  ros__parameters:\n    mode: balanced\n'
                    '    max_timestep: 64\n')
    log = tmp_path / 'out.txt'
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'topspark_ros.nodes.timestep_controller', '--ros-args',
             '--params-file', str(mine), '-p', 'zzz:=1', '-p', 'heartbeat_period_s:=2.0'],
            stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            end = time.monotonic() + 60
            while time.monotonic() < end and 'zzz' not in log.read_text():
                time.sleep(0.2)
        finally:
            stop(proc)
    said = [line for line in log.read_text().splitlines() if 'has no such parameter' in line]
    assert len(said) == 2, log.read_text()
    assert "'max_timestep' was given" in said[0] and "did you mean 'max_timesteps'?" in said[0]
    assert "'zzz' was given" in said[1] and 'ros2 param list /timestep_controller' in said[1]
    assert all('WARN' in line for line in said)


def test_a_player_warns_about_a_parameter_it_lacks(tmp_path) -> None:
    """
    image_player's ``-p rate:=5.0`` (its parameter is rate_hz) played at 10 Hz unsaid.

    The players and the recorder did not check what they were given, as the other nodes
    do (a review).
    """
    run = subprocess.run(
        [sys.executable, '-m', 'topspark_ros.nodes.image_player', '--ros-args',
         '-p', 'rate:=5.0', '-p', 'max_images:=1', '-p', 'rate_hz:=100.0'],
        capture_output=True, text=True, timeout=120)
    said = [line for line in (run.stdout + run.stderr).splitlines()
            if 'has no such parameter' in line]
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(said) == 1 and "'rate' was given" in said[0], run.stderr[-2000:]
    assert "did you mean 'rate_hz'?" in said[0]


def test_event_player_options_are_checked_as_its_parameters() -> None:
    """--rate 0 passed argparse and failed at the node in rclpy's words (a review)."""
    for option, value, reason in (('--rate', '0', 'must be >= 0.001'),
                                  ('--packet-ms', '0', 'must be >= 0.001'),
                                  ('--wait-for-subscribers', '-1', 'must be >= 0')):
        run = subprocess.run([sys.executable, '-m', 'topspark_ros.cli', 'event-player',
                              'x.raw', option, value], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 2 and f'argument {option}: {reason}' in run.stderr, \
            run.stderr[-1000:]


def test_a_missing_parameter_file_is_one_line(tmp_path) -> None:
    """A missing --params-file: rcl's parser said "Couldn't parse params file" (a review)."""
    missing = str(tmp_path / 'gone.yaml')
    for command, program in (
            ([sys.executable, '-m', 'topspark_ros.nodes.timestep_controller', '--ros-args',
              '--params-file', missing], 'timestep_controller.py'),
            ([sys.executable, '-m', 'topspark_ros.cli', 'bringup', '--params-file', missing],
             'topspark'),
            ([sys.executable, '-m', 'topspark_ros.nodes.energy_monitor', '--ros-args',
              '--params-file', str(tmp_path)], 'energy_monitor.py')):
        run = subprocess.run(command, capture_output=True, text=True, timeout=120)
        said = 'not found' if command[-1] == missing else 'is not a file'
        assert run.returncode == 1 and run.stderr.strip() == \
            f'{program}: error: parameter file {command[-1]} {said}', run.stderr


def test_a_parameter_without_a_value_is_one_line() -> None:
    """``-p profile_path:=`` (an empty value) ended the process with rcl's traceback."""
    run = subprocess.run([sys.executable, '-m', 'topspark_ros.nodes.timestep_controller',
                          '--ros-args', '-p', 'profile_path:='], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1 and 'Traceback' not in run.stderr, run.stderr
    assert "a value is required after := (an empty string: -p name:='')" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_a_value_of_the_wrong_type_is_one_line_saying_how_to_write_it(tmp_path) -> None:
    """
    ``rate:=2`` for a double gave a traceback from the players and the recorder (a review).

    Every node says it in one line, with how to write the value.
    """
    for module, value, said in (
            ('bag_player', 'rate:=2', 'write 2.0, not 2'),
            ('image_player', 'rate_hz:=10', 'write 10.0, not 10'),
            ('recorder', 'count:=5.0', 'an integer: write 5, not 5.0'),
            ('timestep_controller', 'max_power_w:=1', 'write 1.0, not 1')):
        run = subprocess.run(
            [sys.executable, '-m', f'topspark_ros.nodes.{module}', '--ros-args', '-p', value,
             '-p', f'bag:={tmp_path / "b"}'], capture_output=True, text=True, timeout=120)
        assert run.returncode == 1 and 'Traceback' not in run.stderr, run.stderr
        (line,) = [line for line in run.stderr.splitlines() if '[FATAL]' in line]
        assert "expecting type '" in line and line.endswith(f'{said})'), line


def test_a_value_given_at_start_is_checked_as_a_set_is(tmp_path) -> None:
    """
    Values given at start-up skipped the nodes' checks (declared before them; a review).

    ``memory_preset:=cmos45_int8`` (arithmetic only) started a monitor that published it as a
    memory-inclusive figure, a choice no ``ros2 param set`` could make. A value refused by a
    set does not start the node now, saying why.
    """
    for module, value, said in (
            ('energy_monitor', 'memory_preset:=cmos45_int8', 'memory_preset must be one of'),
            ('timestep_controller', 'mode:=fastest', 'mode must be one of')):
        run = subprocess.run([sys.executable, '-m', f'topspark_ros.nodes.{module}', '--ros-args',
                              '-p', value], capture_output=True, text=True, timeout=120)
        assert run.returncode == 1, run.stderr
        assert f'cannot start: ValueError: invalid parameter: {said}' in run.stderr, run.stderr
    assert "cmos45_int8_sram, loihi, '', not 'cmos45_int8'" in subprocess.run(
        [sys.executable, '-m', 'topspark_ros.nodes.energy_monitor', '--ros-args', '-p',
         'memory_preset:=cmos45_int8'], capture_output=True, text=True, timeout=120).stderr


def test_ctrl_c_while_a_node_starts_ends_it_quietly(tmp_path, monkeypatch, capsys) -> None:
    """Ctrl-C of `ros2 launch` during a node's imports printed a traceback: process has died."""
    from topspark_ros.nodes.entry import run
    (tmp_path / 'slow_node.py').write_text('raise KeyboardInterrupt  # (importing torch)\n')
    (tmp_path / 'fine_node.py').write_text('def main():\n    return 3\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert run('slow_node') == 0 and run('slow_node', interrupted=130) == 130
    assert capsys.readouterr().err.count('slow_node: interrupted while starting') == 2
    assert run('fine_node') == 3


@pytest.mark.parametrize('script', ['classifier', 'topspark'])
def test_the_executables_start_through_the_quiet_entry(script) -> None:
    """Each script runs its module's main through nodes.entry, nothing heavy imported before."""
    import pathlib
    path = pathlib.Path(__file__).resolve().parent.parent / 'scripts' / script
    assert 'from topspark_ros.nodes.entry import run' in path.read_text()
    shown = subprocess.run([sys.executable, str(path), '--help'], capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0 and 'usage:' in shown.stdout, shown.stderr


def test_only_the_first_stop_signal_interrupts(monkeypatch) -> None:
    """
    Five Ctrl-C 2 ms apart broke off the shutdown that saves learnt weights (a review).

    Signals soon after the first are ignored; a later SIGINT ends a stuck shutdown at once, a
    later SIGTERM (``ros2 launch``'s escalation) is ignored.
    """
    import signal

    from topspark_ros.nodes import runner
    now = [100.0]
    monkeypatch.setattr(runner, '_stop_signal', None)
    monkeypatch.setattr(runner.time, 'monotonic', lambda: now[0])
    with pytest.raises(KeyboardInterrupt):
        runner._stop(signal.SIGINT, None)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):  # a burst: noted only
        now[0] += 0.002
        runner._stop(signum, None)
    assert runner._stop_signal == signal.SIGINT
    with pytest.raises(KeyboardInterrupt):
        runner.check_stop()  # the loops that spin still stop
    exits = []
    monkeypatch.setattr(runner.os, '_exit', exits.append)
    now[0] += runner.REPEAT_IGNORED_S
    runner._stop(signal.SIGTERM, None)  # ros2 launch's escalation 5 s on: the save goes on
    assert exits == []
    runner._stop(signal.SIGINT, None)  # a person's Ctrl-C again, a shutdown stuck: it ends
    assert exits == [128 + signal.SIGINT]


def test_the_installed_executables_run_without_the_venv_on_path() -> None:
    """
    Each executable runs the interpreter the package was built with, the venv's.

    With ``#!/usr/bin/env python3`` a service or a shell that sourced the workspace but did
    not activate the venv ran the system's python3, without torch or numba (a review).
    """
    import os
    import shutil
    names = ('classifier', 'timestep_controller', 'energy_monitor', 'doctor', 'topspark')
    found = {name: shutil.which(name) for name in names}
    assert all(found.values()), found  # (dev/in_env.sh puts them on PATH, as ros2 run finds)
    env = {**os.environ, 'PATH': '/usr/bin:/bin'}  # no venv: the system's python3 first
    for name, path in found.items():
        with open(path, encoding='utf-8') as f:
            interpreter = f.readline()[2:].strip()
        assert os.path.isabs(interpreter) and os.path.samefile(
            os.path.dirname(interpreter), os.path.dirname(sys.executable)), (name, interpreter)
        run = subprocess.run([path, '--help'], env=env, capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0 and 'usage' in run.stdout.lower(), (name, run.stderr[-800:])


def test_a_later_files_value_of_another_type_is_refused_not_replaced(tmp_path) -> None:
    """
    Over the shipped config, ``default_timesteps: 50.0`` ran at the shipped 100 unsaid.

    rcl keeps a value of each type when two parameter files layer one parameter, and rclpy
    takes one by its type (a review): such a value is named, and what reads the same is not.
    """
    import rclpy
    from rclpy.node import Node

    from topspark_ros.nodes.bringup import default_params_file
    from topspark_ros.nodes.parameters import layered_value_misses
    shipped = default_params_file('topspark.yaml')
    mine = tmp_path / 'mine.yaml'
    mine.write_text('/**/classifier:\n  ros__parameters:\n    default_timesteps: 50.0\n'
                    '    early_exit: "true"\n    roi: [10.0, 10.0, 100.0, 100.0]\n'
                    '    max_timesteps: 2000\n    device: cpu\n'
                    'timestep_controller:\n  ros__parameters:\n    max_energy_j: 1e-6\n'
                    '    max_latency_ms: .nan\n')

    def misses(name, *extra):
        argv = ['x', '--ros-args', '--params-file', shipped, '--params-file', str(mine),
                *extra]
        context = rclpy.Context()
        rclpy.init(args=argv, context=context)
        try:
            node = Node(name, context=context)
            try:
                return layered_value_misses(node, argv)
            finally:
                node.destroy_node()
        finally:
            rclpy.shutdown(context=context)
    found = misses('classifier')
    assert [m.split("'")[1] for m in found] == ['default_timesteps', 'early_exit', 'roi']
    assert f'{mine} gives 50.0, but /classifier received 100: an earlier parameter file ' \
        'gives it as an integer' in found[0]
    assert 'write it as an array of integers' in found[2]
    assert misses('timestep_controller') == []  # 1e-6 and NaN read as the numbers they are
    # -p wins over every file: not a miss
    assert [m.split("'")[1] for m in misses('classifier', '-p', 'default_timesteps:=50')] \
        == ['early_exit', 'roi']
    # What rcl reads as given is no miss: 'y' (a bool to rcl, a string to PyYAML), and a
    # '/**' key after the shipped '/**/classifier' (rcl applies the keys in the order the
    # files first name them, so it wins over the user's own '/**/classifier'; a review).
    mine.write_text('/**:\n  ros__parameters:\n    diagnostics_period_s: 5.0\n'
                    '/**/classifier:\n  ros__parameters:\n    early_exit: y\n'
                    '    diagnostics_period_s: 2.0\n')
    assert misses('classifier') == []


def test_bringup_refuses_a_value_its_parameter_file_could_not_give(tmp_path) -> None:
    """The process ends with the reason, as for the value given alone."""
    mine = tmp_path / 'mine.yaml'
    mine.write_text('/**/classifier:\n  ros__parameters:\n    default_timesteps: 50.0\n')
    run = subprocess.run([sys.executable, '-m', 'topspark_ros.cli', 'bringup', '--params-file',
                          str(mine)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr[-2000:]
    assert "cannot start: ValueError: parameter 'default_timesteps'" in run.stderr


def test_bringup_passes_the_long_form_of_p_to_ros(monkeypatch) -> None:
    """``--param name:=value`` was taken for --params-file ('parameter file ... not found')."""
    from topspark_ros.nodes import bringup, runner

    seen = {}
    monkeypatch.setattr(runner, 'run_nodes', lambda factories, **kw: seen.update(kw) or 0)
    assert bringup.bringup(['--ros-args', '--param', 'classifier:default_timesteps:=50']) == 0
    assert seen['args'][-2:] == ['--param', 'classifier:default_timesteps:=50']
    assert sum(a == '--params-file' for a in seen['args']) == 1  # the shipped file alone


def test_ros_arguments_refused_get_the_hint_of_their_reason(tmp_path) -> None:
    """A YAML error and a log level were also told that a value is required after ':='."""
    from topspark_ros.nodes.runner import parse_process_args
    broken = tmp_path / 'broken.yaml'
    broken.write_text('classifier:\n  ros__parameters:\n    crop: [center\n')
    flat = tmp_path / 'flat.yaml'
    flat.write_text('classifier:\n  crop: none\n')
    for args, hint in ((['--params-file', str(broken)], 'a parameter file holds YAML'),
                       (['--params-file', str(flat)], 'a parameter file holds YAML'),
                       (['--log-level', 'verbose'], '--log-level takes debug, info'),
                       (['-p', 'profile_path:='], 'a value is required after :=')):
        with pytest.raises(ValueError) as raised:
            parse_process_args(['classifier', '--ros-args', *args])
        assert hint in str(raised.value) and '/project/src' not in str(raised.value)
        assert ('required after :=' in str(raised.value)) == (args[0] == '-p')


@pytest.mark.parametrize('signum', ['SIGTERM', 'SIGHUP'])
def test_a_stop_signal_while_a_node_imports_ends_it_as_ctrl_c_does(signum, tmp_path) -> None:
    """
    In its first second a node stopped by SIGTERM (systemd's, docker's) ended by the signal.

    Status -15 and nothing said, against 0 from then on (a review).
    """
    import signal
    import textwrap
    (tmp_path / 'slow_node.py').write_text(textwrap.dedent("""
        import time
        print('importing', flush=True)
        time.sleep(30)


        def main():
            return 3
    """))
    code = ('import sys; sys.path.insert(0, sys.argv[1]); '
            'from topspark_ros.nodes.entry import run; sys.exit(run("slow_node"))')
    proc = subprocess.Popen([sys.executable, '-c', code, str(tmp_path)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_signals_at_default)  # (a suite run under nohup)
    try:
        assert proc.stdout.readline().strip() == 'importing'
        proc.send_signal(getattr(signal, signum))
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and 'slow_node: interrupted while starting' in err, err


@pytest.mark.parametrize('signum', ['SIGTERM', 'SIGHUP'])
def test_a_stop_signal_while_a_ros_command_of_topspark_imports_is_said(signum,
                                                                       tmp_path) -> None:
    """
    `topspark record` stopped 0.5 s in (importing the recorder) ended by the signal, silently.

    Status -15 and nothing said, where a signal earlier said it was interrupted and one later
    closed the bag (a review). It unwinds as Ctrl-C does until the command sets its own
    handling: "terminated", 128 + the signal, nothing left behind.
    """
    import signal
    code = (
        'import os, signal, sys\n'
        'class Stop:  # the signal as the recorder module is imported\n'
        '    def find_spec(self, name, path, target=None):\n'
        "        if name == 'topspark_ros.nodes.recorder':\n"
        f'            os.kill(os.getpid(), signal.{signum})\n'
        'sys.meta_path.insert(0, Stop())\n'
        'from topspark_ros.cli.main import main\n'
        "sys.exit(main(['record', '/x', '--bag', sys.argv[1]]))\n")
    run = subprocess.run([sys.executable, '-c', code, str(tmp_path / 'b')], text=True,
                         capture_output=True, timeout=120, preexec_fn=_signals_at_default)
    assert run.returncode == 128 + getattr(signal, signum), run.stderr
    assert run.stderr.strip().endswith('topspark: terminated'), run.stderr
    assert list(tmp_path.iterdir()) == []


def _signals_at_default() -> None:
    """In a child: SIGHUP at its default (a suite run under nohup passes it on ignored)."""
    import signal
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def test_a_module_without_its_own_handling_dies_by_sigterm_once_imported(tmp_path) -> None:
    """
    Once imported, a module that sets no handler of its own dies by SIGTERM, as before.

    The start-up's handlers stayed: ``doctor`` killed mid-check said 'interrupted while
    starting' and exited 0, a killed check read as a success (a review).
    """
    import signal
    import textwrap
    (tmp_path / 'plain_tool.py').write_text(textwrap.dedent("""
        import time


        def main():
            print('running', flush=True)
            time.sleep(30)
            return 0
    """))
    code = ('import sys; sys.path.insert(0, sys.argv[1]); '
            'from topspark_ros.nodes.entry import run; sys.exit(run("plain_tool"))')
    proc = subprocess.Popen([sys.executable, '-c', code, str(tmp_path)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_signals_at_default)
    try:
        assert proc.stdout.readline().strip() == 'running'
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGTERM
