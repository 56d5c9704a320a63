"""Every YAML in every config group composes, and the data stage builds from it without Hydra."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sedbench.data.features import params_from_config

CONF = Path(__file__).resolve().parents[1] / "conf"
CHOICES = [(g.name, y.stem) for g in sorted(CONF.iterdir()) if g.is_dir() for y in sorted(g.glob("*.yaml"))]


@pytest.mark.parametrize(("group", "choice"), CHOICES)
def test_every_config_composes(group, choice):
    overrides = [f"{group}={choice}"] + (["data.root=/some/dir"] if (group, choice) == ("data", "folder") else [])
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["data"]["seq_len"] > 0 and resolved["data"]["name"]
    params, _ = params_from_config(resolved["features"])
    expected = (0.0115, 0.023) if params.kind == "gammatone" else (0.02, 0.04)  # ACRNN's 23-ms frames
    assert (params.hop_seconds, params.frame_seconds) == expected


def test_groups_present():
    assert {"data", "features"} <= {g for g, _ in CHOICES}
    assert {c for g, c in CHOICES if g == "data"} >= {"synth", "esc10_mix", "folder", "tut_sed_synth_2016",
                                                      "tut_sed_2016", "chime_home", "urban_sed", "desed", "esc10"}


def test_trainer_presets_inherit_from_cpu_and_change_only_their_own_keys():
    def trainer(choice: str) -> dict:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return OmegaConf.to_container(compose(config_name="config", overrides=[f"trainer={choice}"]).trainer)

    cpu = trainer("cpu")
    readme = (CONF.parent / "README.md").read_text()
    for choice, own in (("gpu", {"accelerator"}),
                        ("paper", {"accelerator", "max_epochs", "max_time", "patience", "log_every_n_steps"}),
                        ("cpu_bf16", {"precision"})):
        preset = trainer(choice)
        assert set(preset) == set(cpu) and {k for k in cpu if preset[k] != cpu[k]} == own, choice
        assert "- cpu" in (CONF / "trainer" / f"{choice}.yaml").read_text()
        assert preset["deterministic"] is True and preset["tf32"] is False, choice  # every preset repeatable
        row = next(line for line in readme.splitlines() if line.startswith(f"| `trainer={choice}` |"))
        assert all(f"`{k}" in row for k in own), (choice, row)  # the README states exactly what it changes


def test_model_keys_come_from_the_constructors():
    from sedbench.models.families import ARCHITECTURES as ARCHS
    from sedbench.models.families import FAMILIES, arch_keys

    assert set(arch_keys("crnn")) == {"maps", "pool", "rnn_layers", "fnn_layers", "kernel", "cell", "bidirectional",
                                      "dropout", "temporal_pool", "output_bias", "rnn_init",
                                      "output_dropout"}
    assert set(arch_keys("gmm")) == {"n_components", "window_seconds", "max_frames", "max_iter"}
    assert "hop_seconds" in arch_keys("crnn_attention")  # its own front end's hop, a model setting
    for choice in (CONF / "model").glob("*.yaml"):  # every preset's keys are known to its architecture
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            model = OmegaConf.to_container(compose(config_name="config", overrides=[f"model={choice.stem}"]).model,
                                         resolve=True)
        assert model.get("arch", "crnn") in ARCHS
        assert FAMILIES[model["family"]].group_option == choice.stem  # each preset is its family's, registered
        from sedbench.models.families import model_config

        model_config(model)
