"""Reading the deployment files without the tools that run them (``tests/test_deploy.py``).

No container engine runs here, so the tests read what docker and kubectl would: the
Dockerfile's instructions, compose files as YAML, and a kustomize overlay rendered the
way kustomize does for the features the overlays use (resources, namespace, images,
strategic-merge patches). When ``kubectl`` is installed, its own rendering is compared
with this one.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Kinds kustomize leaves without a namespace.
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole",
                  "ClusterRoleBinding", "CustomResourceDefinition"}
# The lists a strategic merge patch merges item by item, by this key (everything else the
# overlays patch is a map, or a list the patch replaces).
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name",
              "ports": "containerPort", "volumes": "name", "volumeMounts": "mountPath"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int  # 0 for the first FROM's stage


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    instructions, stage = [], -1
    for text in logical:
        keyword, _, arguments = text.strip().partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split()),
                                        max(stage, 0)))
    return instructions


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose_variables(path: Path) -> set[str]:
    """The ``${NAME}`` variables a compose file reads from its environment (``$$`` escapes
    one for the container's shell, which is not compose's)."""
    text = path.read_text(encoding="utf-8").replace("$$", "")
    return set(_VARIABLE.findall(text))


def bind_sources(service: dict[str, Any], compose_dir: Path) -> dict[str, Path]:
    """Container path → host path of each bind mount of a compose service."""
    found = {}
    for volume in service.get("volumes", []):
        parts = volume.split(":")
        if len(parts) >= 2 and parts[0].startswith("."):
            found[parts[1]] = (compose_dir / parts[0]).resolve()
    return found


def render_kustomization(directory: Path) -> list[dict[str, Any]]:
    """The resources ``kustomize build directory`` prints, for the features used here."""
    kustomization = load_yaml(directory / "kustomization.yaml")
    unknown = set(kustomization) - {"apiVersion", "kind", "namespace", "resources", "images",
                                    "patches"}
    assert not unknown, f"{directory}: kustomize features this renderer lacks: {unknown}"
    resources: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            resources += render_kustomization(path)
        else:
            resources += [document for document in yaml.safe_load_all(
                path.read_text(encoding="utf-8")) if document]
    for patch in kustomization.get("patches", []):
        change = load_yaml(directory / patch["path"])
        (target,) = [resource for resource in resources
                     if (resource["kind"], resource["metadata"]["name"])
                     == (change["kind"], change["metadata"]["name"])]
        merged = strategic_merge(target, change)
        resources[resources.index(target)] = merged
    for image in kustomization.get("images", []):
        for container in containers(resources):
            name, _, _ = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image['newTag']}"
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    return resources


def strategic_merge(base: Any, patch: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for name, value in patch.items():
            merged[name] = strategic_merge(base[name], value, name) if name in base \
                else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        merge_key = MERGE_KEYS[key]
        merged_list = copy.deepcopy(base)
        for item in patch:
            matches = [index for index, old in enumerate(merged_list)
                       if old.get(merge_key) == item.get(merge_key)]
            if matches:
                merged_list[matches[0]] = strategic_merge(merged_list[matches[0]], item)
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(patch)


def containers(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for resource in resources:
        pod = resource.get("spec", {}).get("template", {}).get("spec", {})
        found += pod.get("containers", []) + pod.get("initContainers", [])
    return found


def by_kind(resources: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(resource["kind"], resource["metadata"]["name"]): resource
            for resource in resources}
