"""Config validation: defaults, the shipped config, and one clear line for a wrong value."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from dime_pipeline.cli import main
from dime_pipeline.config import PipelineConfig, dump_config, load_config, validate_config
from dime_pipeline.errors import UserError


def test_shipped_config_is_valid_and_complete(repo):
    config = load_config(repo / "config" / "config.yaml")
    assert config.seed >= 0
    # The shipped file spells out every key, so it stays in step with the typed model.
    raw = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    assert set(raw) == set(PipelineConfig.model_fields)


def test_dump_then_load_round_trips(tmp_path):
    config = validate_config({"seed": 11, "grid": {"shape": [40, 48], "voxel_size_mm": 2.0}})
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(config))
    again = load_config(path)
    assert again == config
    assert again.digest() == config.digest()
    assert again.grid.voxel_size_m == pytest.approx(2e-3)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"seed": "not-a-number"}, "seed"),
        ({"seed": -1}, "seed"),
        ({"samples": {"homogeneous": -2}}, "samples.homogeneous"),
        ({"grid": {"voxel_size_mm": 0}}, "grid.voxel_size_mm"),
        ({"frequency_hz": {"min": 80, "max": 50}}, "frequency_hz"),
        ({"materials": {"loss_ratio": {"min": -0.1, "max": 0.2}}}, "materials"),
        ({"sead": 3}, "sead"),
    ],
)
def test_bad_value_names_the_key(raw, key):
    with pytest.raises(UserError) as info:
        validate_config(raw)
    message = str(info.value)
    assert f"'{key}" in message
    assert "\n" not in message


def test_cli_bad_config_is_one_line_and_nonzero(tmp_path, capsys):
    out = tmp_path / "resolved.yaml"
    status = main(["config", "--json", '{"seed": "not-a-number"}', "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1
    assert "'seed'" in err and "integer" in err
    assert not out.exists()


def test_cli_unreadable_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [unclosed\n")
    assert main(["config", "--config", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_console_script_runs(tool_env):
    result = subprocess.run(
        ["dime-pipeline", "config", "--json", '{"seed": 5}'],
        capture_output=True,
        text=True,
        env=tool_env,
        check=True,
    )
    assert yaml.safe_load(result.stdout)["seed"] == 5


def test_later_keys_at_their_defaults_leave_the_hash_alone():
    """Keys added after studies were made (config.LATER_KEYS) are out of the digest while at
    their defaults, for the whole config and for a subset (the phantoms' keys) alike; set,
    they change it."""
    from dime_pipeline.config import PHANTOM_KEYS

    plain = validate_config({})
    spelled = validate_config(
        {"boundary": {"odds": {"absorbing": 1.0}}, "driver": {"count": {"min": 1, "max": 1}}}
    )
    assert spelled.digest() == plain.digest()
    assert spelled.digest(PHANTOM_KEYS) == plain.digest(PHANTOM_KEYS)
    varied = validate_config({"boundary": {"odds": {"free": 1.0}}})
    assert varied.digest(PHANTOM_KEYS) != plain.digest(PHANTOM_KEYS)
    contaminated = validate_config({"acquisition": {"bulk": 0.2}})
    assert contaminated.digest() != plain.digest()
    assert contaminated.digest(PHANTOM_KEYS) == plain.digest(PHANTOM_KEYS)


def test_the_data_digest_ignores_dime_training_settings() -> None:
    """The pack's config_hash: a training setting changed re-packs (and re-inverts) nothing."""
    plain = validate_config({})
    retrained = validate_config({"dime": {"training": {"trainer": {"max_epochs": 3}}}})
    assert retrained.digest() != plain.digest()
    assert retrained.data_digest() == plain.data_digest()
    noisier = validate_config({"acquisition": {"snr": [5.0]}})
    assert noisier.data_digest() != plain.data_digest()
