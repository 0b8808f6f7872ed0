"""
The robot install path (README, "On a robot"), checked offline.

``rosdep install --from-paths src --ignore-src -y`` must work as written on Jazzy: every key in
package.xml exists in rosdistro and installs from the system package manager on Jazzy's
platforms (a pip key fails there: rosdep's pip installer meets PEP 668 on Ubuntu 24.04). What
rosdep cannot give comes from pip, ``requirements/robot.txt``, pinned to the tested versions.

rosdistro is not reachable from the tests: ``test/data/rosdep/keys.yaml`` is a pinned copy of
the entries package.xml relies on, made by ``test/data/rosdep/copy_keys.py`` from a rosdistro
commit it names. A typo, or a key rosdistro does not have, is missing from that copy and fails.
"""

import pathlib
import re
import subprocess
import sys

from packaging.requirements import Requirement
from packaging.version import Version
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
KEYS = ROOT / 'test' / 'data' / 'rosdep' / 'keys.yaml'
ROBOT_REQUIREMENTS = ROOT / 'requirements' / 'robot.txt'
# (os, version) rosdep resolves keys for: Jazzy's Tier 1 (Ubuntu 24.04) and Tier 3 (Debian 12)
# platforms; Kilted's Tier 1 is Ubuntu 24.04 as well.
PLATFORMS = [('ubuntu', 'noble'), ('debian', 'bookworm')]
DISTROS = ['jazzy', 'kilted']
INSTALLERS = {'apt', 'pip', 'source', 'dnf', 'yum', 'pacman', 'portage', 'homebrew', 'zypper'}
# setup.cfg's install_requires that rosdep provides -> the key package.xml declares for it.
ROSDEP_PROVIDES = {'numpy': 'python3-numpy', 'pyyaml': 'python3-yaml', 'tqdm': 'python3-tqdm',
                   'matplotlib': 'python3-matplotlib', 'pillow': 'python3-pil'}


def _pinned() -> dict:
    return yaml.safe_load(KEYS.read_text())


def _package_keys() -> dict[str, str]:
    """Return every dependency of package.xml -> the tag it is declared with."""
    from catkin_pkg.package import parse_package
    package = parse_package(str(ROOT / 'package.xml'))
    keys = {}
    for tag in ('buildtool_depends', 'build_depends', 'build_export_depends', 'exec_depends',
                'test_depends', 'doc_depends'):
        for dep in getattr(package, tag):
            keys[dep.name] = tag
    return keys


def resolve(rule: dict, os_name: str, codename: str):
    """
    Resolve a rosdep rule for one OS version the way rosdep reads rosdep/*.yaml.

    Return ``(installer, packages)``, or None where the rule has nothing for that OS version.
    An OS entry is a package list (the OS's default installer: apt here), a map of OS versions
    ('*' for any) to such entries, or a map of one installer to its packages.
    """
    entry = rule.get(os_name)
    if isinstance(entry, dict) and not set(entry) & INSTALLERS:
        entry = entry.get(codename, entry.get('*'))
    if entry is None:
        return None
    if isinstance(entry, list):
        return 'apt', entry
    ((installer, spec),) = entry.items()
    packages = spec.get('packages', []) if isinstance(spec, dict) else spec
    return installer, packages


def test_resolve_reads_rosdep_rules() -> None:
    """The resolver reads the rule shapes rosdistro uses (a check of the helper itself)."""
    rule = {'debian': ['python3-x'], 'ubuntu': {'*': ['python3-x'], 'focal': None},
            'fedora': {'pip': {'packages': ['x']}}}
    assert resolve(rule, 'debian', 'bookworm') == ('apt', ['python3-x'])
    assert resolve(rule, 'ubuntu', 'noble') == ('apt', ['python3-x'])
    assert resolve(rule, 'ubuntu', 'focal') is None
    assert resolve(rule, 'fedora', '40') == ('pip', ['x'])
    assert resolve(rule, 'rhel', '9') is None


def test_pinned_copy_says_where_and_when_it_was_copied() -> None:
    """keys.yaml names the rosdistro commit, its date, the day it was copied and the files."""
    source = _pinned()['source']
    assert source['repository'] == 'https://github.com/ros/rosdistro'
    assert re.fullmatch(r'[0-9a-f]{40}', source['commit'])
    assert source['committed'] and source['copied']
    assert 'rosdep/python.yaml' in source['files'] and 'jazzy/distribution.yaml' in source['files']


def test_every_package_xml_key_exists_in_rosdistro() -> None:
    """Each dependency is a ROS package released for Jazzy and Kilted, or a rosdep key."""
    pinned = _pinned()
    missing = []
    for key, tag in sorted(_package_keys().items()):
        is_ros_package = [key in pinned['ros_packages'][d] for d in DISTROS]
        if any(is_ros_package):
            if not all(is_ros_package):
                missing.append(f'{key} ({tag}): not released for all of {DISTROS}')
        elif key not in pinned['rosdep']:
            missing.append(f'{key} ({tag})')
    assert not missing, (
        'package.xml keys not in the pinned rosdistro copy test/data/rosdep/keys.yaml (a typo, '
        'or a key rosdistro lacks; for a real new key rerun copy_keys.py): ' + '; '.join(missing))


@pytest.mark.parametrize('os_name,codename', PLATFORMS)
def test_rosdep_keys_install_from_the_system_package_manager(os_name, codename) -> None:
    """Each non-ROS key resolves to apt packages on Jazzy's platforms: `rosdep -y` just works."""
    pinned = _pinned()['rosdep']
    problems = []
    for key in sorted(set(_package_keys()) & set(pinned)):
        resolved = resolve(pinned[key]['rule'], os_name, codename)
        if resolved is None:
            problems.append(f'{key}: no rule for {os_name} {codename}')
        elif resolved[0] != 'apt' or not resolved[1]:
            problems.append(f'{key}: {resolved[0]} {resolved[1]}')
    assert not problems, problems


def _requirements(path: pathlib.Path) -> list[Requirement]:
    lines = (line.split('#')[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def _name(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def _locked(lock: str) -> dict[str, Version]:
    return {_name(r.name): Version(str(next(iter(r.specifier)).version))
            for r in _requirements(ROOT / 'requirements' / lock)}


def _setup_cfg_requires() -> list[Requirement]:
    import configparser
    config = configparser.ConfigParser()
    config.read(ROOT / 'setup.cfg')
    text = config['options']['install_requires']
    return [Requirement(line.strip()) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize('lock', ['core.lock', 'ros-jazzy.lock', 'ros-kilted.lock'])
def test_robot_requirements_are_the_locked_versions(lock) -> None:
    """Each line of requirements/robot.txt is pinned (==) to the version the lock file holds."""
    locked = _locked(lock)
    for requirement in _requirements(ROBOT_REQUIREMENTS):
        (spec,) = requirement.specifier
        assert spec.operator == '==', requirement
        version = locked[_name(requirement.name)]
        assert Version(spec.version) == Version(version.base_version), (requirement, version)
        assert version in requirement.specifier, (requirement, version)


def test_setup_cfg_requirements_come_from_rosdep_or_robot_requirements() -> None:
    """Every install_requires comes from exactly one of package.xml and robot.txt, new enough."""
    keys = _package_keys()
    robot = {_name(r.name): r for r in _requirements(ROBOT_REQUIREMENTS)}
    for requirement in _setup_cfg_requires():
        name = _name(requirement.name)
        from_rosdep = ROSDEP_PROVIDES.get(name) in keys
        assert from_rosdep != (name in robot), f'{name}: from rosdep and pip, or from neither'
        if name in robot:
            (pin,) = robot[name].specifier
            assert Version(pin.version) in requirement.specifier, (robot[name], requirement)


def test_pip_accepts_robot_requirements() -> None:
    """The pip of this environment reads requirements/robot.txt and finds every pin satisfied."""
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-index',
         '--disable-pip-version-check', '-r', str(ROBOT_REQUIREMENTS)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Would install' not in result.stdout, result.stdout


def test_readme_robot_path_matches_the_package() -> None:
    """The README's robot path installs robot.txt and says the maintainer must be set."""
    from catkin_pkg.package import parse_package
    readme = (ROOT / 'README.md').read_text()
    robot = readme[readme.index('## On a robot'):]
    robot = robot[:robot.index('\n## ', 1)]
    assert 'rosdep install --from-paths src --ignore-src -y' in robot
    assert 'pip install -r src/topspark_ros/requirements/robot.txt' in robot
    assert '--system-site-packages' in robot
    for maintainer in parse_package(str(ROOT / 'package.xml')).maintainers:
        if maintainer.email.endswith('.invalid'):
            assert maintainer.email in readme and 'before a release' in readme


def test_the_topspark_command_is_on_path_in_a_sourced_workspace() -> None:
    """After colcon build and sourcing, `topspark` was not found: it was in lib/ only."""
    import os
    distro = os.environ.get('TOPSPARK_ROS_DISTRO', 'jazzy')
    setup = ROOT / 'install' / distro / 'local_setup.bash'
    if not setup.exists():
        pytest.skip(f'{setup} is made by dev/build.sh (make build)')
    found = subprocess.run(
        ['bash', '-c', f'source "{setup}" && command -v topspark'], capture_output=True,
        text=True, env={'HOME': os.environ.get('HOME', '/'), 'PATH': '/usr/bin:/bin'})
    assert found.stdout.strip() == str(ROOT / 'install' / distro / 'bin' / 'topspark'), found
