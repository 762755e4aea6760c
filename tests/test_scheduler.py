"""The scheduler's filters and weights, as pure functions."""

from __future__ import annotations

from cloudbox.compute.scheduler import HostState, Ratios, Request, no_valid_host_message, schedule


def host(name: str, *, ram=8192, vcpus=4, disk=100, used_ram=0, used_vcpus=0, used_disk=0, zone="nova",
         enabled=True) -> HostState:
    return HostState(name, vcpus, ram, disk, used_vcpus, used_ram, used_disk, zone, enabled)


RATIOS = Ratios(cpu=2.0, ram=1.0, disk=1.0, reserved_ram_mb=0)


def test_filters_say_why_each_host_was_turned_away():
    hosts = [
        host("small", ram=1024), host("busy", used_vcpus=8), host("full-disk", disk=5),
        host("elsewhere", zone="az2"), host("off", enabled=False), host("good"),
    ]
    plan = schedule(hosts, Request(vcpus=2, ram_mb=2048, disk_gb=10, availability_zone="nova"), RATIOS)
    assert [h.name for h, _ in plan.ranked] == ["good"]
    assert plan.rejected["small"].startswith("RAM")
    assert plan.rejected["busy"].startswith("vCPU")
    assert plan.rejected["full-disk"].startswith("disk")
    assert "zone" in plan.rejected["elsewhere"]
    assert plan.rejected["off"] == "compute service disabled"


def test_overcommit_ratio_counts():
    h = host("h", vcpus=2, used_vcpus=3)
    assert schedule([h], Request(1, 512, 1), Ratios(cpu=2.0, reserved_ram_mb=0)).ranked
    assert not schedule([h], Request(1, 512, 1), Ratios(cpu=1.5, reserved_ram_mb=0)).ranked


def test_reserved_memory_is_not_placed():
    h = host("h", ram=4096)
    assert schedule([h], Request(1, 3584, 1), Ratios(reserved_ram_mb=512)).ranked
    assert not schedule([h], Request(1, 3585, 1), Ratios(reserved_ram_mb=512)).ranked


def test_spread_prefers_free_ram_and_pack_prefers_full_hosts():
    hosts = [host("a", used_ram=6000), host("b", used_ram=1000), host("c", used_ram=3000)]
    req = Request(1, 512, 1)
    assert [h.name for h, _ in schedule(hosts, req, RATIOS, "spread").ranked] == ["b", "c", "a"]
    assert [h.name for h, _ in schedule(hosts, req, RATIOS, "pack").ranked] == ["a", "c", "b"]


def test_server_groups():
    hosts = [host("a"), host("b")]
    anti = Request(1, 512, 1, group_policy="anti-affinity", group_hosts=("a",))
    assert [h.name for h, _ in schedule(hosts, anti, RATIOS).ranked] == ["b"]
    affinity = Request(1, 512, 1, group_policy="affinity", group_hosts=("b",))
    assert [h.name for h, _ in schedule(hosts, affinity, RATIOS).ranked] == ["b"]
    soft = Request(1, 512, 1, group_policy="soft-anti-affinity", group_hosts=("b",))
    assert [h.name for h, _ in schedule(hosts, soft, RATIOS).ranked] == ["a", "b"]


def test_image_properties():
    req = Request(1, 512, 1, image_properties={"hw_architecture": "aarch64"})
    plan = schedule([host("a")], req, RATIOS)
    assert not plan.ranked and "architecture" in plan.rejected["a"]


def test_no_valid_host_message_names_every_reason():
    req = Request(64, 512, 1)
    plan = schedule([host("a"), host("b")], req, RATIOS)
    message = no_valid_host_message(req, plan)
    assert message.startswith("No valid host was found.")
    assert "a: vCPU" in message and "b: vCPU" in message
