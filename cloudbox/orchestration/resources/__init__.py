"""The resource types this cloud's stacks can hold, by Heat type name."""

from __future__ import annotations

from cloudbox.orchestration.resources import compute, group, heat, nested, network, software, testing, volume, wait
from cloudbox.orchestration.resources.base import Context, Plugin, ResourceFailed

PLUGINS: dict[str, Plugin] = {p.type: p for p in (
    compute.Server(), compute.KeyPair(), compute.Flavor(),
    network.Net(), network.Subnet(), network.Port(), network.Router(), network.RouterInterface(),
    network.SecurityGroup(), network.FloatingIP(), network.FloatingIPAssociation(),
    volume.Volume(), volume.VolumeAttachment(),
    heat.RandomString(), heat.NoneResource(), heat.SoftwareConfig(), heat.CloudConfig(), heat.MultipartMime(),
    wait.WaitConditionHandle(), wait.WaitCondition(),
    testing.TestResource(),
    group.ResourceGroup(), group.AutoScalingGroup(), group.ScalingPolicy(), nested.TemplateResource(),
    *software.PLUGINS,  # the configs kept as /software_configs rows (replacing heat.py's), and deployments
)}
TEMPLATE_RESOURCE = nested.TemplateResource.type
CONFIG_TYPES = frozenset({"OS::Heat::SoftwareConfig", "OS::Heat::CloudConfig", "OS::Heat::MultipartMime",
                          "OS::Heat::StructuredConfig"})


def update_allowed(kind: str) -> set[str]:
    plugin = PLUGINS.get(kind)
    return set(plugin.update_allowed) if plugin else set()


__all__ = ["CONFIG_TYPES", "PLUGINS", "TEMPLATE_RESOURCE", "Context", "Plugin", "ResourceFailed", "update_allowed"]
