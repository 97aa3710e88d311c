"""Install routes name the same packages; the library imports without MPI or dolfinx; lint."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import yaml

# conda-forge names of the pip packages; the pip FEM wheel stands for three conda packages.
PIP_TO_CONDA = {
    "dolfinx-solver-complex": {"fenics-dolfinx", "petsc", "mpich"},
    "gmsh": {"python-gmsh"},
    "torch": {"pytorch"},
}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\s\[]", requirement, maxsplit=1)[0].lower()


def test_pip_and_conda_name_the_same_packages(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        pip_names |= {_name(r) for r in extra}
    expected = set()
    for name in pip_names:
        expected |= PIP_TO_CONDA.get(name, {name})
    environment = yaml.safe_load((repo / "environment.yml").read_text())
    conda_names = {_name(dep) for dep in environment["dependencies"] if isinstance(dep, str)} - {
        "python",
        "pip",
    }
    assert conda_names == expected


def test_library_imports_without_mpi_or_dolfinx():
    code = (
        "import sys, dime_pipeline.cli, dime_pipeline.config, dime_pipeline.store, "
        "dime_pipeline.phantoms, dime_pipeline.summary\n"
        "dime_pipeline.cli.build_parser()\n"
        "loaded = {'dolfinx', 'mpi4py', 'petsc4py'} & set(sys.modules)\n"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_only_one_module_imports_dolfinx(repo):
    importers = [
        path.relative_to(repo).as_posix()
        for path in (repo / "src").rglob("*.py")
        if re.search(r"^\s*(import|from) (dolfinx|dolfinx_solver)\b", path.read_text(), re.M)
    ]
    assert importers == ["src/dime_pipeline/fem/backend.py"]


def test_ruff_and_snakemake_lint_are_clean(repo, tool_env):
    subprocess.run(["ruff", "check", "--quiet", str(repo)], check=True, env=tool_env)
    result = subprocess.run(
        ["snakemake", "--lint", "--snakefile", str(repo / "Snakefile"), "--directory", str(repo)],
        capture_output=True,
        text=True,
        env=tool_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
