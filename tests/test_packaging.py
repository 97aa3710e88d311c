"""Install routes name the same packages, each one used; the base install inverts without the
extras and a missing extra is one line; licence and citation files; the conda route; lint."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import nibabel as nib
import numpy as np
import pytest
import yaml

from dime_pipeline.cli import EXTRAS

# conda-forge names of the pip packages; the pip FEM wheel stands for three conda packages.
PIP_TO_CONDA = {
    "dolfinx-solver-complex": {"fenics-dolfinx", "petsc", "mpich"},
    "gmsh": {"python-gmsh"},
    "torch": {"pytorch"},
}


# Distributions whose import name differs from their name; None: used otherwise (see USED_BY).
MODULE_OF = {
    "pyyaml": "yaml",
    "dolfinx-solver-complex": "dolfinx_solver",
    "snakemake-executor-plugin-slurm": None,
    "ruff": None,
}
# Dependencies used without an import: (file, what in it uses the package).
USED_BY = {
    "snakemake-executor-plugin-slurm": ("profiles/slurm/config.yaml", r"^executor: slurm\b"),
    "ruff": ("Makefile", r"\bruff check\b"),
}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\s\[]", requirement, maxsplit=1)[0].lower()


def _declared(repo) -> dict[str, list[str]]:
    """Requirement names by group: "base" and each extra."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    groups = {"base": project["dependencies"], **project["optional-dependencies"]}
    return {group: [_name(r) for r in requirements] for group, requirements in groups.items()}


def test_pip_and_conda_name_the_same_packages(repo):
    pip_names = {name for names in _declared(repo).values() for name in names}
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
    # Rules deliberately have no `conda:` environment (test_conda_route): that lint only.
    lints = set(re.findall(r"^ {4}\* (.+?):?$", result.stdout + result.stderr, re.M))
    assert lints <= {MISSING_ENV_LINT}, result.stdout + result.stderr
    assert result.returncode == (1 if lints else 0), result.stdout + result.stderr


def test_every_declared_dependency_is_used(repo):
    sources = [*(repo / "src").rglob("*.py"), *(repo / "tests").rglob("*.py")]
    sources += [repo / "Snakefile", *(repo / "workflow").rglob("*.smk")]
    imported = set()
    for path in sources:
        imported |= set(re.findall(r"^\s*(?:import|from) (\w+)", path.read_text(), re.M))
    unused = []
    for name in {name for names in _declared(repo).values() for name in names}:
        if name in USED_BY:
            file, pattern = USED_BY[name]
            used = re.search(pattern, (repo / file).read_text(), re.M) is not None
        else:
            used = MODULE_OF.get(name, name.replace("-", "_")) in imported
        if not used:
            unused.append(name)
    assert not unused, f"declared but never used: {sorted(unused)}"


def test_base_install_is_what_invert_needs_and_extras_are_what_cli_names(repo):
    declared = _declared(repo)
    assert set(declared) == {"base", "fem", "train", "workflow", "dev"}
    assert not {"gmsh", "dolfinx-solver-complex", "lightning", "snakemake"} & set(declared["base"])
    extra_of = {MODULE_OF.get(n, n.replace("-", "_")): g for g, ns in declared.items() for n in ns}
    for module, extra in EXTRAS.items():
        assert extra_of.get(module, extra) == extra, module  # dolfinx, mpi4py...: from the wheel
    assert "-e .[fem,train,workflow,dev]" in (repo / "Makefile").read_text().replace('"', "")


MISSING_ENV_LINT = "Specify a conda environment or container for each rule."

# Run in a subprocess: modules of the extras cannot be imported, as in a base install.
BLOCKER = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
assert not BLOCKED & set(sys.modules), BLOCKED & set(sys.modules)
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Blocker())
from dime_pipeline.cli import main
codes = [main(line.split()) for line in sys.argv[2:]]
loaded = sorted(BLOCKED & set(sys.modules))
print("exit codes", *codes, "loaded", *loaded)
sys.exit(max(codes))
"""
EXTRA_MODULES = sorted({*EXTRAS, "pytest"})


def _without_extras(*command_lines: str) -> subprocess.CompletedProcess:
    arguments = [",".join(EXTRA_MODULES), *command_lines]
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, *arguments], capture_output=True, text=True, timeout=300
    )


def test_invert_runs_without_the_extras(tmp_path):
    """`dime-pipeline invert` of a NIfTI with each method, without lightning, gmsh, dolfinx, MPI,
    snakemake (nor pytest): what `pip install dime-pipeline` gives."""
    i, j = np.indices((40, 36))
    wave = np.exp(-1j * 2 * np.pi * (i * 0.04 + j * 0.03))
    offsets = np.stack([np.real(wave * np.exp(2j * np.pi * t / 4)) for t in range(4)], axis=-1)
    image = nib.Nifti1Image(offsets[:, :, None, :], np.diag([1.5, 1.5, 5.0, 1.0]))
    image.header.set_xyzt_units("mm", "sec")
    source = tmp_path / "waves.nii.gz"
    nib.save(image, source)
    lines = [
        f"--quiet invert {source} --method {method} --frequency-hz 60 "
        f"--out {tmp_path / method}.nii.gz"
        for method in ("dime", "mmdi", "di")
    ]
    result = _without_extras(*lines)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["exit", "codes", "0", "0", "0", "loaded"]
    for method in ("dime", "mmdi", "di"):
        assert nib.load(tmp_path / f"{method}.nii.gz").shape[:2] == (40, 36)


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        ("train --train {d}/t.zarr --val {d}/v.zarr --out-dir {d}/out", "train"),
        ("phantom homogeneous --seed 1 --no-preview --out {d}/phantom", "fem"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(tmp_path, command, extra):
    result = _without_extras("--quiet " + command.format(d=tmp_path))
    assert result.returncode == 2, result.stderr[-3000:]
    command_name = command.split()[0]
    assert result.stderr.splitlines() == [
        f"dime-pipeline {command_name}: error: no module named "
        f"{'lightning' if extra == 'train' else 'gmsh'!r}: this command needs the [{extra}] "
        f"extra (pip install 'dime-pipeline[{extra}]')"
    ]
    assert not (tmp_path / "phantom").exists() and not (tmp_path / "out").exists()


def test_license_and_citation(repo):
    assert (repo / "LICENSE").read_text().startswith("MIT License")
    assert "dime-pipeline developers" in (repo / "LICENSE").read_text()
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    citation = yaml.safe_load((repo / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "MIT"
    assert citation["version"] == project["version"]
    (paper,) = citation["references"]
    assert {"type": "other", "value": "arXiv:2512.13010", "description": "arXiv identifier"} in (
        paper["identifiers"]
    )
    assert [author["family-names"] for author in paper["authors"]] == [
        "Iftikhar",
        "Ahmad",
        "Kolipaka",
    ]
    assert "doi" not in paper and "journal" not in paper


def test_conda_route(repo):
    """environment.yml: snakemake and its SLURM plugin come from bioconda, after conda-forge.
    No rule has a `conda:` environment: Snakemake would copy the file to .snakemake/conda/, where
    its `pip: -e .` finds no package; the jobs run in the environment Snakemake runs in."""
    environment = yaml.safe_load((repo / "environment.yml").read_text())
    assert environment["channels"][:2] == ["conda-forge", "bioconda"]
    names = {_name(dep) for dep in environment["dependencies"] if isinstance(dep, str)}
    assert {"snakemake", "snakemake-executor-plugin-slurm"} <= names
    for path in [repo / "Snakefile", *(repo / "workflow").rglob("*.smk")]:
        assert not re.search(r"^\s*conda:", path.read_text(), re.M), path
