"""Compose lingshu's Hydra config from Python (the quickstart, tests, notebooks).

    cfg = compose(["task=ner-crf", "model=tiny-bert", "data.train=train.json"])
    lingshu.training.train.run(cfg, "runs/x")
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

CONF_DIR = Path(__file__).parent / "conf"


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """The same config `lingshu train OVERRIDES…` (config_name="adapt": `lingshu adapt`) would
    resolve, without Hydra's run dir."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name, overrides=list(overrides or []))
