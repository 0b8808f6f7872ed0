"""Lint with ROS 2's own tools and settings, and check package.xml the way rosdep reads it."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYTHON_PATHS = [ROOT / p for p in ('topspark_ros', 'test', 'launch', 'benchmarks', 'setup.py')]
# Third-party Python modules -> the rosdep key package.xml must declare for them.
PYTHON_ROSDEP_KEYS = {
    'numpy': 'python3-numpy',
    'yaml': 'python3-yaml',
    'tqdm': 'python3-tqdm',
    'matplotlib': 'python3-matplotlib',
    'PIL': 'python3-pil',
}
# Modules with no usable rosdep key -> their pip distribution in requirements/robot.txt (the
# README's robot path; test/test_package_deps.py checks that file).
PYTHON_PIP_ON_ROBOTS = {'torch': 'torch', 'numba': 'numba', 'safetensors': 'safetensors',
                        'rosbags': 'rosbags', 'nir': 'nir', 'h5py': 'h5py', 'optuna': 'optuna'}
# Optional, imported only when asked for and never needed on a robot: Ray (`--ray`, the `ray`
# extra of setup.cfg) and NVML's Python binding (`energy_source: nvml` on a CUDA machine).
OPTIONAL_MODULES = {'ray', 'pynvml'}


def _existing(paths: list[pathlib.Path]) -> list[str]:
    return [str(p) for p in paths if p.exists()]


def test_flake8() -> None:
    """
    ament_flake8 (99 columns, single quotes, google import order, ...) finds nothing.

    It runs in a fresh interpreter: flake8 forks a pool of workers, and a fork of this
    process, which other tests leave with threads (rclpy executors, Ray), can deadlock.
    """
    pytest.importorskip('ament_flake8.main')
    run = subprocess.run(
        [sys.executable, '-c', 'import sys; from ament_flake8.main import main; '
         'sys.exit(main(argv=sys.argv[1:]))', *_existing(PYTHON_PATHS)],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f'flake8 errors:\n{run.stdout}{run.stderr}'


def test_pep257() -> None:
    """ament_pep257 (ROS 2's docstring conventions) finds nothing."""
    ament_pep257 = pytest.importorskip('ament_pep257.main')
    rc = ament_pep257.main(argv=_existing(PYTHON_PATHS))
    assert rc == 0, 'docstring style errors (see the output above)'


def _package():
    from catkin_pkg.package import parse_package
    warnings: list[str] = []
    package = parse_package(str(ROOT / 'package.xml'), warnings=warnings)
    return package, warnings


def test_package_xml_is_valid_format_3() -> None:
    """package.xml parses as format 3 with catkin_pkg (what rosdep and bloom use), strictly."""
    package, warnings = _package()
    package.validate()
    assert not warnings, warnings
    assert package.package_format == 3
    assert package.name == 'topspark_ros'
    assert list(package.licenses) == ['Apache-2.0']
    assert package.get_build_type() == 'ament_cmake'
    assert 'rosidl_interface_packages' in [g.name for g in package.member_of_groups]


def test_package_xml_version_matches_python() -> None:
    """package.xml, setup.cfg (via the module) and the Python package agree on the version."""
    import topspark_ros
    package, _ = _package()
    assert package.version == topspark_ros.__version__


def _imported_top_level_modules() -> set[str]:
    modules = set()
    for path in (ROOT / 'topspark_ros').rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split('.')[0])
    return modules


def test_package_xml_declares_every_import() -> None:
    """Every ROS package and third-party module the code imports is a package.xml dependency."""
    package, _ = _package()
    declared = {dep.name for dep in (package.build_depends + package.exec_depends
                                     + package.buildtool_depends + package.build_export_depends)}
    imported = (_imported_top_level_modules() - {'topspark_ros'} - set(sys.stdlib_module_names)
                - OPTIONAL_MODULES)
    robot_txt = (ROOT / 'requirements' / 'robot.txt').read_text().split()
    missing = []
    for module in sorted(imported):
        if module in PYTHON_PIP_ON_ROBOTS:
            if not any(line.startswith(PYTHON_PIP_ON_ROBOTS[module] + '==')
                       for line in robot_txt):
                missing.append(f'{module} (requirements/robot.txt)')
            continue
        key = PYTHON_ROSDEP_KEYS.get(module, module)
        if key not in declared:
            missing.append(f'{module} (rosdep key {key})')
    assert not missing, 'imported but not declared in package.xml: ' + ', '.join(missing)
