"""prefect.yaml read as data: the one place schedules and default parameters are written.

`deployments.serve` and the tests read the deployments from here, so what `prefect deploy`
registers and what `serve` runs cannot drift apart.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PREFECT_YAML = ROOT / "prefect.yaml"
WORK_POOL = "gitguardian-remediation"


@dataclass(frozen=True)
class Schedule:
    cron: str
    timezone: str
    active: bool = True


@dataclass(frozen=True)
class DeploymentSpec:
    """One entry of prefect.yaml's `deployments:` list."""

    name: str
    entrypoint: str  # "flows/departed_developers.py:departed_developers"
    description: str = ""
    tags: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[Schedule, ...] = ()
    concurrency_limit: int | None = None
    work_pool: str | None = None
    # prefect.yaml `triggers:` as written (event triggers: expect, match, parameters, ...)
    triggers: tuple[dict[str, Any], ...] = ()

    @property
    def module(self) -> str:
        """The entrypoint as an importable module name (flows/x.py -> flows.x)."""
        path = self.entrypoint.split(":", 1)[0]
        return path.removesuffix(".py").replace("/", ".")

    @property
    def function(self) -> str:
        return self.entrypoint.split(":", 1)[1]

    def load_flow(self) -> Any:
        """The Flow object, imported as a package module (the checkout must be on sys.path)."""
        return getattr(importlib.import_module(self.module), self.function)


def _schedule(raw: dict[str, Any]) -> Schedule:
    if "cron" not in raw:
        raise ValueError(f"only cron schedules are used here, got {sorted(raw)}")
    return Schedule(cron=str(raw["cron"]), timezone=str(raw.get("timezone") or "UTC"),
                    active=bool(raw.get("active", True)))


def _limit(raw: Any) -> int | None:
    # prefect.yaml allows `concurrency_limit: 1` or `{limit: 1, collision_strategy: ...}`.
    if isinstance(raw, dict):
        return raw.get("limit")
    return raw


def load(path: Path = PREFECT_YAML) -> list[DeploymentSpec]:
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    specs = []
    for raw in document.get("deployments") or []:
        specs.append(DeploymentSpec(
            name=raw["name"],
            entrypoint=raw["entrypoint"],
            description=" ".join(str(raw.get("description") or "").split()),
            tags=tuple(raw.get("tags") or ()),
            parameters=dict(raw.get("parameters") or {}),
            schedules=tuple(_schedule(s) for s in raw.get("schedules") or ()),
            concurrency_limit=_limit(raw.get("concurrency_limit")),
            work_pool=(raw.get("work_pool") or {}).get("name"),
            triggers=tuple(dict(t) for t in raw.get("triggers") or ()),
        ))
    return specs


def pull_steps(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return list(document.get("pull") or [])
