"""The language side of the Heat API through the real CLI: template validate, create --dry-run,
resource types and template versions (no guests: nothing is made)."""

from __future__ import annotations

from pathlib import Path

from tests.cloud import Cloud
from tests.test_orchestration_cli import EXAMPLES, cli, prepare, refused, user_env  # noqa: F401 (the fixture)


def test_validate_preview_types_and_versions(new_cloud: Cloud, user_env: dict[str, str], tmp_path: Path):
    cloud, env = new_cloud, user_env
    template = str(EXAMPLES / "devenv.yaml")
    validated = cli(cloud, env, "orchestration", "template", "validate", "-t", template)
    assert validated["Description"] == "Heat template to deploy an instance"
    assert validated["Parameters"]["root_password"]["NoEcho"] == "true"
    assert validated["Parameters"]["flavor_name"]["AllowedValues"] == ["m1.small", "m1.medium"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("heat_template_version: 2016-04-08\nresources:\n  a:\n    type: OS::Heat::None\n"
                   "    depends_on: [nowhere]\n")
    assert "nowhere" in refused(cloud, env, "orchestration", "template", "validate", "-t", str(bad))

    prepare(cloud, env, tmp_path, "Fedora23")
    preview = cli(cloud, env, "stack", "create", "--dry-run", "-t", template, "--parameter", "ssh_key_name=demo",
                  "devenv")
    assert sorted(r["resource_name"] for r in preview["resources"]) == ["security_group", "server"]
    server = next(r for r in preview["resources"] if r["resource_name"] == "server")
    assert server["properties"]["flavor"] == "m1.small" and server["resource_type"] == "OS::Nova::Server"
    assert cli(cloud, env, "stack", "list") == [] and cli(cloud, env, "server", "list") == []  # nothing made

    types = {t["Resource Type"] for t in cli(cloud, env, "orchestration", "resource", "type", "list")}
    assert {"OS::Nova::Server", "OS::Neutron::Port", "OS::Heat::WaitCondition", "OS::Cinder::Volume"} <= types
    shown = cli(cloud, env, "orchestration", "resource", "type", "show", "OS::Nova::Server")
    assert shown["properties"]["flavor"]["update_allowed"] is True
    assert shown["properties"]["image"]["update_allowed"] is False
    versions = {v["Version"] for v in cli(cloud, env, "orchestration", "template", "version", "list")}
    assert {"heat_template_version.2013-05-23", "heat_template_version.2021-04-16"} <= versions
    functions = {f["Functions"] for f in cli(cloud, env, "orchestration", "template", "function", "list",
                                              "heat_template_version.2016-10-14")}
    assert {"get_attr", "str_replace", "yaql"} <= functions
