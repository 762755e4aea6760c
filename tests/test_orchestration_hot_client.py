"""The HOT library fed what python-heatclient really sends: the template, files and
environment that ``openstack stack create -t ... -e ...`` builds from files on disk (types and
get_file paths rewritten to file:// URLs, environment files named in environment_files). No node:
heatclient's own template_utils make the request body."""

from __future__ import annotations

import json
import os
from pathlib import Path

from heatclient.common import template_utils

from cloudbox.orchestration import hot

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "examples"


def client_body(directory: Path, template: str, environments: list[str]) -> dict:
    """The body of POST /stacks as python-heatclient makes it (round-tripped through JSON)."""
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        files, tmpl = template_utils.get_template_contents(template_file=template)
        names: list[str] = []
        env_files, env = template_utils.process_multiple_environments_and_files(
            env_paths=environments, env_list_tracker=names)
    finally:
        os.chdir(cwd)
    files.update(env_files)
    body = {"template": tmpl, "files": files, "environment": env, "environment_files": names}
    return json.loads(json.dumps(body, default=lambda b: b.decode()))


def test_devenv_as_the_client_sends_it(tmp_path):
    (tmp_path / "devenv.yaml").write_text((EXAMPLES / "devenv.yaml").read_text())
    body = client_body(tmp_path, "devenv.yaml", [])
    template = hot.parse_template(body["template"], body["files"])
    assert template.version.date == "2016-04-08"  # the client's YAML loader keeps it text too
    params = template.parameters(hot.parse_environment(body["environment"]), {"ssh_key_name": "demo"})
    assert params.values["flavor_name"] == "m1.small"


def test_nested_templates_files_and_environment_files_as_the_client_sends_them(tmp_path):
    (tmp_path / "nested.yaml").write_text(
        "heat_template_version: 2016-04-08\n"
        "parameters: {size: {type: number}}\n"
        "outputs: {ip: {value: {get_param: size}}}\n")
    (tmp_path / "init.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "top.yaml").write_text(
        "heat_template_version: 2016-10-14\n"
        "parameters: {size: {type: number}}\n"
        "resources:\n"
        "  n: {type: nested.yaml, properties: {size: {get_param: size}}}\n"
        "  c: {type: OS::Heat::SoftwareConfig, properties: {config: {get_file: init.sh}}}\n"
        "  r: {type: My::Thing, properties: {size: 1}}\n"
        "outputs: {o: {value: {get_attr: [n, ip]}}}\n")
    (tmp_path / "env.yaml").write_text("resource_registry: {My::Thing: nested.yaml}\n"
                                       "parameter_defaults: {size: 4}\n")
    body = client_body(tmp_path, "top.yaml", ["env.yaml"])
    nested_url = (tmp_path / "nested.yaml").as_uri()
    assert body["environment_files"] == [(tmp_path / "env.yaml").as_uri()]

    template = hot.parse_template(body["template"], body["files"])
    env = hot.merge_environments(body["environment_files"], body["files"],
                                 hot.parse_environment(body["environment"]))
    params = template.parameters(env, {})
    defs = template.resources(params)
    assert {name: d.type for name, d in defs.items()} == {
        "n": nested_url, "c": "OS::Heat::SoftwareConfig", "r": nested_url}
    assert params.values["size"] == 4

    def attributes_of(kind: str):
        return hot.parse_template(body["files"][kind]).nested_attributes if hot.is_template_name(kind) else None

    template.check_attributes(defs, attributes_of)
    ctx = hot.StackContext(params.values, version=template.version, files=template.files)
    assert hot.resolve(defs["c"].properties, ctx) == {"config": "#!/bin/sh\necho hi\n"}
    nested = hot.parse_template(body["files"][defs["n"].type], body["files"])
    nested_params = nested.parameters(env.for_nested("n", None), hot.resolve(defs["n"].properties, ctx))
    assert nested_params.values["size"] == 4
