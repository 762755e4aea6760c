"""Put the live root on a disk: partitions, files, configuration, GRUB for BIOS and UEFI."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Callable

from .answers import ANSWER_LABEL, LIVE_MEDIUM, Answers, AnswerError, Network

SQUASHFS = LIVE_MEDIUM / "live" / "filesystem.squashfs"
TARGET = Path("/target")
LOG = Path("/tmp/cloudbox-install.log")
Say = Callable[[str], None]


def run(*cmd: str, input: str | None = None) -> str:
    """Run a command, log it, raise with its output when it fails."""
    with LOG.open("a") as log:
        log.write(f"$ {shlex.join(cmd)}\n")
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, check=False)
        log.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd[:3])} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-400:]}")
    return proc.stdout


def medium_disks() -> set[str]:
    """The disks the installer must not touch: the live medium and the answer drive."""
    busy = set()
    sources = [run("findmnt", "-nro", "SOURCE", str(LIVE_MEDIUM)).strip()] if LIVE_MEDIUM.is_dir() else []
    label = subprocess.run(["blkid", "-L", ANSWER_LABEL], capture_output=True, text=True, check=False).stdout.strip()
    for dev in filter(None, [*sources, label]):
        parent = subprocess.run(["lsblk", "-ndpo", "PKNAME", dev], capture_output=True, text=True, check=False).stdout.strip()
        busy.add(parent or dev)
    return busy


def disks() -> list[dict[str, str]]:
    """Disks an install can go to: name, size (bytes), model; largest first."""
    out = json.loads(run("lsblk", "-dpbJo", "NAME,SIZE,MODEL,TYPE,RO"))
    busy = medium_disks()
    found = [d for d in out["blockdevices"]
             if d["type"] == "disk" and not d["ro"] and d["name"] not in busy and int(d["size"] or 0) > 0]
    found.sort(key=lambda d: -int(d["size"]))
    return [{"name": d["name"], "size": str(d["size"]), "model": (d.get("model") or "").strip()} for d in found]


def interfaces() -> list[dict[str, str]]:
    """Ethernet interfaces: name, MAC, whether a cable (carrier) is seen."""
    found = []
    for path in sorted(Path("/sys/class/net").iterdir()):
        if not (path / "device").exists():  # lo, bridges, virtual links
            continue
        try:
            carrier = (path / "carrier").read_text().strip()
        except OSError:  # EINVAL while the link is administratively down
            carrier = "0"
        found.append({"name": path.name, "mac": (path / "address").read_text().strip(), "link": "up" if carrier == "1" else "down"})
    return found


def resolve_interface(want: str) -> dict[str, str]:
    found = interfaces()
    if not found:
        raise AnswerError("no Ethernet interface found")
    if want == "auto":
        for link in found:  # links come up a moment after boot
            run("ip", "link", "set", link["name"], "up")
        for _ in range(50):
            up = [i for i in interfaces() if i["link"] == "up"]
            if up:
                return up[0]
            time.sleep(0.2)
        return found[0]
    for link in found:
        if want in (link["name"], link["mac"]) or want.lower() == link["mac"]:
            return link
    raise AnswerError(f"network.interface: no interface named or with MAC {want!r} (found {', '.join(i['name'] for i in found)})")


def resolve_disk(want: str) -> str:
    found = disks()
    if want == "auto":
        if not found:
            raise AnswerError("no disk to install to")
        return found[0]["name"]
    real = os.path.realpath(want)
    if real not in {d["name"] for d in found}:
        raise AnswerError(f"disk: {want} is not a disk the installer may use ({', '.join(d['name'] for d in found) or 'none'})")
    return real


def partitions(disk: str) -> list[str]:
    out = run("lsblk", "-lnpo", "NAME,TYPE", disk)
    return [line.split()[0] for line in out.splitlines() if line.split()[1] == "part"]


def network_file(net: Network, mac: str) -> str:
    lines = ["# Written by the cloudbox installer.", "[Match]", f"MACAddress={mac}", "", "[Network]"]
    if net.mode == "dhcp":
        lines.append("DHCP=ipv4")
    else:
        lines.append(f"Address={net.address}")
        if net.gateway:
            lines.append(f"Gateway={net.gateway}")
    lines += [f"DNS={d}" for d in net.dns]
    return "\n".join(lines) + "\n"


def firstboot_file(a: Answers) -> str:
    # TOML by hand: three strings, quoted as JSON strings (a subset of TOML's basic strings).
    return (f"mode = {json.dumps(a.cloud)}\ntoken = {json.dumps(a.token)}\nadvertise = {json.dumps(a.advertise)}\n")


def install(a: Answers, say: Say) -> None:
    disk = resolve_disk(a.disk)
    link = resolve_interface(a.network.interface)
    extra_links = [resolve_interface(n.interface) for n in a.extra_networks]  # before the disk is touched
    need = int((LIVE_MEDIUM / "live" / "filesystem.size").read_text()) * 2**20 if (LIVE_MEDIUM / "live" / "filesystem.size").exists() else 0
    size = int(run("blockdev", "--getsize64", disk))
    if size < need + 2**30:
        raise AnswerError(f"{disk} has {size // 2**20} MiB; the system needs {(need + 2**30) // 2**20} MiB")
    say(f"partitioning {disk} (GPT: BIOS boot, EFI system, root)")
    run("wipefs", "-a", disk)
    run("sgdisk", "--zap-all", disk)
    run("sgdisk", "-n1:0:+1M", "-t1:ef02", "-c1:bios", "-n2:0:+512M", "-t2:ef00", "-c2:efi",
        "-n3:0:0", "-t3:8304", "-c3:cloudbox-root", disk)
    subprocess.run(["partx", "-u", disk], check=False, capture_output=True)  # sgdisk told the kernel already
    run("udevadm", "settle")
    parts = partitions(disk)
    if len(parts) != 3:
        raise RuntimeError(f"{disk}: expected 3 partitions after sgdisk, the kernel shows {parts}")
    _bios, esp, root = parts
    run("mkfs.vfat", "-F", "32", "-n", "EFI", esp)
    run("mkfs.ext4", "-q", "-F", "-L", "cloudbox-root", root)
    TARGET.mkdir(exist_ok=True)
    run("mount", root, str(TARGET))
    mounts = [str(TARGET)]
    try:
        (TARGET / "boot/efi").mkdir(parents=True, exist_ok=True)
        run("mount", esp, str(TARGET / "boot/efi"))
        mounts.append(str(TARGET / "boot/efi"))
        say("copying the system (this is the long step)")
        started = time.monotonic()
        run("unsquashfs", "-f", "-no-progress", "-d", str(TARGET), str(SQUASHFS))
        say(f"copied in {time.monotonic() - started:.0f} s")
        configure(a, disk, esp, root, [link, *extra_links], say)
        for sub in ("dev", "proc", "sys", "run"):
            run("mount", "--rbind" if sub in ("dev", "sys") else "--bind", f"/{sub}", str(TARGET / sub))
            mounts.append(str(TARGET / sub))
        bootloader(disk, say)
        with LOG.open("a") as log:
            log.write("done\n")
        (TARGET / "var/log/cloudbox-install.log").write_text(LOG.read_text())
    finally:
        for mnt in reversed(mounts):
            subprocess.run(["umount", "-R", mnt], check=False, capture_output=True)
    run("sync")


def configure(a: Answers, disk: str, esp: str, root: str, links: list[dict[str, str]], say: Say) -> None:
    nets = [a.network, *a.extra_networks]
    said = ", ".join(f"{link['name']} ({link['mac']}) {net.mode}{' ' + net.address if net.mode == 'static' else ''}"
                     for link, net in zip(links, nets))
    say(f"configuring {a.hostname}: {said}")
    t = TARGET
    uuid = {dev: run("blkid", "-s", "UUID", "-o", "value", dev).strip() for dev in (esp, root)}
    (t / "etc/fstab").write_text(
        "# Written by the cloudbox installer.\n"
        f"UUID={uuid[root]}\t/\text4\terrors=remount-ro\t0\t1\n"
        f"UUID={uuid[esp]}\t/boot/efi\tvfat\tumask=0077\t0\t1\n")
    short = a.hostname.split(".")[0]
    (t / "etc/hostname").write_text(short + "\n")
    names = f"{a.hostname} {short}" if short != a.hostname else short
    (t / "etc/hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{names}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    (t / "etc/systemd/network").mkdir(parents=True, exist_ok=True)
    for i, (link, net) in enumerate(zip(links, nets)):
        name = "20-cloudbox.network" if i == 0 else f"21-cloudbox-{i}.network"
        (t / "etc/systemd/network" / name).write_text(network_file(net, link["mac"]))
    if a.root_password_hash:
        run("chpasswd", "-e", "-R", str(t), input=f"root:{a.root_password_hash}\n")
    else:
        run("chpasswd", "-R", str(t), input=f"root:{a.root_password}\n")
    if a.ssh_keys:
        ssh = t / "root/.ssh"
        ssh.mkdir(mode=0o700, exist_ok=True)
        (ssh / "authorized_keys").write_text("\n".join(a.ssh_keys) + "\n")
        os.chmod(ssh / "authorized_keys", 0o600)
    # Per machine, never shared by nodes installed from the same ISO.
    run("systemd-machine-id-setup", f"--root={t}")
    run("ssh-keygen", "-A", "-f", str(t))
    # The live system's installer hooks are not part of the node.
    for unit in ("getty@.service", "serial-getty@.service"):
        (t / f"etc/systemd/system/{unit}.d/cloudbox-installer.conf").unlink(missing_ok=True)
    (t / "etc/cloudbox").mkdir(exist_ok=True)
    fb = t / "etc/cloudbox/firstboot.toml"
    fb.write_text(firstboot_file(a))
    os.chmod(fb, 0o600)
    wants = t / "etc/systemd/system/multi-user.target.wants/cloudbox-firstboot.service"
    wants.unlink(missing_ok=True)
    wants.symlink_to("/etc/systemd/system/cloudbox-firstboot.service")
    by_id = [p for p in Path("/dev/disk/by-id").glob("*") if os.path.realpath(p) == disk] if Path("/dev/disk/by-id").is_dir() else []
    grub_dev = str(sorted(by_id)[0]) if by_id else disk
    (t / "tmp/grub.debconf").write_text(f"grub-pc grub-pc/install_devices multiselect {grub_dev}\n")
    default = (t / "etc/default/grub").read_text()
    default = default.replace('GRUB_CMDLINE_LINUX_DEFAULT="quiet"', 'GRUB_CMDLINE_LINUX_DEFAULT="quiet console=ttyS0,115200 console=tty0"')
    default += ('\n# cloudbox: menus on the screen and on the first serial port\nGRUB_TERMINAL="console serial"\n'
                'GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"\nGRUB_TIMEOUT=3\nGRUB_DISABLE_OS_PROBER=true\n')
    (t / "etc/default/grub").write_text(default)


def bootloader(disk: str, say: Say) -> None:
    say("installing GRUB for BIOS and UEFI")
    t = str(TARGET)
    run("chroot", t, "debconf-set-selections", "/tmp/grub.debconf")
    os.unlink(TARGET / "tmp/grub.debconf")
    run("chroot", t, "grub-install", "--target=i386-pc", disk)
    # The removable path (EFI/BOOT/BOOTX64.EFI) boots without an NVRAM entry (a disk moved to
    # another machine, firmware that forgets entries); with EFI variables, a "debian" entry too.
    run("chroot", t, "grub-install", "--target=x86_64-efi", "--efi-directory=/boot/efi", "--removable", "--no-nvram")
    if Path("/sys/firmware/efi/efivars").is_dir() and any(Path("/sys/firmware/efi/efivars").iterdir()):
        try:
            run("chroot", t, "grub-install", "--target=x86_64-efi", "--efi-directory=/boot/efi", "--bootloader-id=debian")
        except RuntimeError as exc:
            say(f"warning: no UEFI boot entry ({exc}); the removable path still boots")
    run("chroot", t, "update-grub")
