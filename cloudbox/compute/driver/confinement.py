"""Guests' QEMU runs as an unprivileged user under libvirt's confinement, never as root.

What each piece does, and why:

- The embedded driver reads ``<root>/etc/qemu.conf`` at each open (``embed_qemu_conf``):
  QEMU runs as ``guest_user`` (Debian's ``libvirt-qemu``), libvirt's DAC driver
  chowns to it what a guest needs while it runs (disks, console log, sockets) and
  gives it back to root when the guest stops, and QEMU's seccomp sandbox is on.
  libvirt picks its MAC driver itself (SELinux, or AppArmor when usable: see
  ``apparmor_finding``).
- The guest's user is read back from libvirt's capabilities (the DAC base label),
  so ``qemu:///system``, whose qemu.conf is the host's, gets the same treatment.
- QEMU opens its files by path, so every directory above them must be searchable
  by the guest (``ensure_reachable``).  Inside the node's own directories (the
  0700 data dir, the libvirt root) a POSIX ACL entry gives the guest's group
  search (x) where it lacks it: nobody else gains anything and nothing can be
  listed.  Entries of the data dir that are open to "other" (the 0644 state
  database) are then closed to "other" (``seal``): a no-op for everyone but the
  guest, who could otherwise read them.  Directories above the node's own are
  the host's: they are never changed, and one the guest cannot search is
  reported with what to do (a home directory made searchable would show its
  0644 files to every guest).
- Backing files (the cached image every guest booted from it shares) are never
  handed to the guest user: the domain XML names the chain with
  ``relabel='no'`` (``with_backing_chains``) and the file stays root's, readable
  by the guest's group only (``make_backing_readable``).  A QEMU taken over by
  its guest can read the image but not rewrite what other tenants boot.
- /dev/kvm: udev makes it root:kvm 0660 on ordinary hosts; where nothing does
  (containers), ``ensure_kvm_access`` does the same.  Without it libvirt
  re-probes QEMU on every call (its cached capabilities saw KVM, its user
  cannot open it) and a start takes a minute.

What DAC cannot do: every guest's QEMU runs as the same user, so one taken over
can open the files libvirt has lent to the others while they run.  Keeping
guests from each other takes a MAC driver (AppArmor, SELinux) or a user per
guest.
"""

from __future__ import annotations

import errno
import grp
import logging
import os
import pwd
import stat
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cloudbox.errors import Unavailable

log = logging.getLogger(__name__)

DEFAULT_GUEST_USER = "libvirt-qemu"


@dataclass(frozen=True)
class GuestIdentity:
    """The credentials QEMU runs with, as libvirt sets them (gid plus the user's groups)."""

    name: str
    uid: int
    gid: int
    groups: frozenset[int]

    def describe(self) -> str:
        return f"{self.name} (uid {self.uid}, gid {self.gid})"


def _groups_of(name: str, primary: int, gid: int) -> frozenset[int]:
    # libvirt gives QEMU the user's supplementary groups (getgrouplist) plus its configured group.
    return frozenset(os.getgrouplist(name, primary)) | {gid}


def guest_identity(user: str) -> GuestIdentity:
    """The identity the embedded driver's QEMU gets for ``user``; its group is the one of the same
    name when there is one (Debian: libvirt-qemu), else the user's primary group."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise Unavailable(
            f"guest_user {user!r} does not exist on this host: install libvirt-daemon-system "
            f"(it creates {DEFAULT_GUEST_USER}) or set guest_user to an unprivileged user"
        ) from None
    if entry.pw_uid == 0:
        raise Unavailable(f"guest_user {user!r} is root: a guest that escaped QEMU would own the host")
    try:
        gid = grp.getgrnam(user).gr_gid
    except KeyError:
        gid = entry.pw_gid
    if gid == 0:
        raise Unavailable(f"guest_user {user!r} has the root group: choose a user with a group of its own")
    return GuestIdentity(user, entry.pw_uid, gid, _groups_of(user, entry.pw_gid, gid))


def embed_qemu_conf(identity: GuestIdentity, nbd_tls_dir: Path | None = None) -> str:
    """The embedded driver's qemu.conf.  remember_owner=0: files go back to root:root when a guest
    stops, which is whom they belong to here; stdio_handler=file: no virtlogd needed;
    nbd_tls_x509_cert_dir: the client certificates of NBD disks with tls='yes' (cloudbox.nbd_tls)."""
    group = grp.getgrgid(identity.gid).gr_name
    nbd = f'nbd_tls_x509_cert_dir = "{nbd_tls_dir}"\n' if nbd_tls_dir is not None else ""
    return (
        "# Written by cloudbox; rewritten each time the driver opens this root.\n"
        f'user = "{identity.name}"\n'
        f'group = "{group}"\n'
        "dynamic_ownership = 1\n"
        "remember_owner = 0\n"
        "seccomp_sandbox = 1\n"
        'stdio_handler = "file"\n'
        f"{nbd}"
    )


# --- what libvirt says it does ---------------------------------------------------


def identity_from_capabilities(capabilities_xml: str) -> GuestIdentity | None:
    """QEMU's identity from the DAC model's base label ("+64055:+64055"); None without DAC."""
    host = ET.fromstring(capabilities_xml).find("host")
    for secmodel in host.iterfind("secmodel") if host is not None else ():
        if secmodel.findtext("model") != "dac":
            continue
        label = secmodel.findtext("baselabel") or ""
        try:
            uid, gid = (int(part.lstrip("+")) for part in label.split(":"))
        except ValueError:
            return None
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return GuestIdentity(str(uid), uid, gid, frozenset({gid}))
        return GuestIdentity(entry.pw_name, uid, gid, _groups_of(entry.pw_name, entry.pw_gid, gid))
    return None


def security_models(capabilities_xml: str) -> list[str]:
    """The security drivers libvirt stacks for QEMU ("none" when it has no MAC driver)."""
    host = ET.fromstring(capabilities_xml).find("host")
    return [m.findtext("model") or "" for m in host.iterfind("secmodel")] if host is not None else []


APPARMOR_ENABLED = Path("/sys/module/apparmor/parameters/enabled")
APPARMOR_PROFILES = Path("/sys/kernel/security/apparmor/profiles")


def apparmor_finding(embedded: bool) -> str:
    """Whether this host has AppArmor, and whether libvirt can confine guests with it."""
    try:
        enabled = APPARMOR_ENABLED.read_text().strip() == "Y"
    except OSError:
        return "AppArmor: not in this kernel (no /sys/module/apparmor)"
    if not enabled:
        return "AppArmor: in the kernel but disabled"
    if not embedded:
        return "AppArmor: enabled; libvirtd confines each guest with a profile when its own profile is loaded"
    # libvirt's AppArmor driver works only when the calling program runs under a loaded
    # profile (it checks /proc/self/exe in the profiles list); here that program is Python.
    exe = os.path.realpath("/proc/self/exe")
    try:
        loaded = any(line.startswith(exe + " ") for line in APPARMOR_PROFILES.read_text().splitlines())
    except OSError:
        loaded = False
    if loaded:
        return "AppArmor: enabled; libvirt confines each guest with a profile of its own"
    return (
        f"AppArmor: enabled, but libvirt's embedded driver uses it only when the calling program "
        f"({exe}) runs under a loaded profile, and it does not: guests get DAC and seccomp only "
        f"(libvirt_uri = qemu:///system gives them AppArmor)"
    )


# --- POSIX ACLs (system.posix_acl_access, as the kernel stores it) --------------------

ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_NO_ID = 0xFFFFFFFF
SEARCH, READ, READ_WRITE = 0o1, 0o4, 0o6

Acl = list[tuple[int, int, int]]  # (tag, permissions, id)


def _read_acl(path: Path) -> Acl:
    try:
        data = os.getxattr(path, ACL_XATTR)
    except OSError as exc:
        if exc.errno not in (errno.ENODATA, errno.EOPNOTSUPP):
            raise
        mode = os.stat(path).st_mode
        return [(_USER_OBJ, mode >> 6 & 7, _NO_ID), (_GROUP_OBJ, mode >> 3 & 7, _NO_ID), (_OTHER, mode & 7, _NO_ID)]
    (version,) = struct.unpack_from("<I", data)
    if version != _ACL_VERSION:
        raise Unavailable(f"{path}: POSIX ACL version {version} is not understood")
    return [struct.unpack_from("<HHI", data, 4 + 8 * i) for i in range((len(data) - 4) // 8)]


def _write_acl(path: Path, acl: Acl) -> None:
    data = struct.pack("<I", _ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in sorted(acl, key=lambda e: (e[0], e[2])))
    os.setxattr(path, ACL_XATTR, data)


def allows(path: Path, identity: GuestIdentity, wanted: int) -> bool:
    """Whether ``identity`` has the ``wanted`` permission bits on ``path`` (POSIX ACL rules)."""
    st = os.stat(path)
    acl = _read_acl(path)
    mask = next((perm for tag, perm, _ in acl if tag == _MASK), 7)
    if st.st_uid == identity.uid:
        return next(perm for tag, perm, _ in acl if tag == _USER_OBJ) & wanted == wanted
    for tag, perm, uid in acl:
        if tag == _USER and uid == identity.uid:
            return perm & mask & wanted == wanted
    group_perms = [
        perm & mask
        for tag, perm, gid in acl
        if (tag == _GROUP_OBJ and st.st_gid in identity.groups) or (tag == _GROUP and gid in identity.groups)
    ]
    if group_perms:  # a matching group entry decides, even when it grants nothing
        return any(perm & wanted == wanted for perm in group_perms)
    return next(perm for tag, perm, _ in acl if tag == _OTHER) & wanted == wanted


def grant_search(directory: Path, identity: GuestIdentity) -> bool:
    """Give the guest's group search permission on ``directory`` (an ACL entry); True if it lacked it."""
    if allows(directory, identity, SEARCH):
        return False
    acl = _read_acl(directory)
    old = next((perm for tag, perm, gid in acl if tag == _GROUP and gid == identity.gid), 0)
    named = [e for e in acl if not (e[0] == _GROUP and e[2] == identity.gid)] + [(_GROUP, old | SEARCH, identity.gid)]
    if any(tag == _MASK for tag, _, _ in named):
        named = [(tag, perm | SEARCH, i) if tag == _MASK else (tag, perm, i) for tag, perm, i in named]
    else:  # a minimal ACL: the mask keeps the owning group's permissions as they were
        group_obj = next(perm for tag, perm, _ in named if tag == _GROUP_OBJ)
        named.append((_MASK, group_obj | SEARCH, _NO_ID))
    try:
        _write_acl(directory, named)
    except OSError as exc:
        raise Unavailable(
            f"QEMU runs as {identity.describe()} and cannot reach its files through {directory}, "
            f"whose filesystem takes no ACL ({exc.strerror}): make it searchable (chmod o+x) "
            f"or move the data directory"
        ) from exc
    if not allows(directory, identity, SEARCH):
        raise Unavailable(f"QEMU runs as {identity.describe()} and cannot search {directory} even with an ACL entry")
    log.info("directory made searchable for guests", extra={"path": str(directory), "group": identity.gid})
    return True


def _spellings(path: str | Path) -> tuple[Path, Path]:
    return Path(os.path.abspath(path)), Path(os.path.realpath(path))


def _inside(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def ensure_reachable(paths: Iterable[str | Path], identity: GuestIdentity, owned: Iterable[Path]) -> list[Path]:
    """Make every directory on the way to ``paths`` (and each of them that is a directory)
    searchable by the guest, as written and with symlinks resolved; the directories that needed it.

    Only directories inside ``owned`` (the node's own) are changed; any other the guest cannot
    search raises Unavailable, naming it and what to do.
    """
    roots = {spelling for root in owned for spelling in _spellings(root)}
    directories: set[Path] = set()
    for path in paths:
        for spelling in _spellings(path):
            directories.update(spelling.parents)
            if spelling.is_dir():
                directories.add(spelling)
    granted = []
    for directory in sorted(directories, key=lambda d: len(d.parts)):
        if not directory.is_dir() or allows(directory, identity, SEARCH):
            continue
        if not _inside(directory, roots):
            raise Unavailable(
                f"QEMU runs as {identity.describe()} and cannot search {directory}, which is outside "
                f"cloudbox's own directories: let it through (setfacl -m g:{identity.gid}:x {directory}, "
                f"or chmod o+x) or keep the data dir under a searchable directory such as /var/lib"
            )
        if grant_search(directory, identity):
            granted.append(directory)
    return granted


def _private_to_guest(directory: Path, identity: GuestIdentity) -> bool:
    """Nobody but the owner and the guest's group may search ``directory``."""
    acl = _read_acl(directory)
    mask = next((perm for tag, perm, _ in acl if tag == _MASK), 7)
    for tag, perm, who in acl:
        effective = perm if tag in (_USER_OBJ, _OTHER) else perm & mask
        if tag in (_USER_OBJ, _MASK) or (tag == _GROUP and who == identity.gid) or not effective & SEARCH:
            continue
        if tag == _GROUP_OBJ and os.stat(directory).st_gid == 0:
            continue  # root's group
        return False
    return True


def seal(directory: Path, keep: Iterable[Path], identity: GuestIdentity) -> list[str]:
    """Close to "other" the entries of ``directory`` except ``keep``, when ``directory`` is private
    but for the guest's search entry: there "other" can only mean the guest.  The names sealed."""
    if not _private_to_guest(directory, identity):
        return []
    kept = {Path(os.path.abspath(p)) for p in keep}
    sealed = []
    for entry in os.scandir(directory):
        if Path(entry.path) in kept or entry.is_symlink():
            continue
        mode = entry.stat(follow_symlinks=False).st_mode
        if mode & 0o007:
            os.chmod(entry.path, stat.S_IMODE(mode) & ~0o007)
            sealed.append(entry.name)
    if sealed:
        log.info("data closed to guests", extra={"path": str(directory), "entries": sealed})
    return sealed


# --- files -------------------------------------------------------------------------


def make_backing_readable(path: Path, identity: GuestIdentity, owned: Iterable[Path]) -> None:
    """A backing file: root's, readable by the guest's group, writable by nobody else (0640).
    One outside ``owned`` is left as it is: it must be readable already."""
    roots = {spelling for root in owned for spelling in _spellings(root)}
    if not _inside(Path(os.path.realpath(path)), roots):
        if not allows(path, identity, READ):
            raise Unavailable(f"QEMU runs as {identity.describe()} and cannot read the backing file {path}")
        return
    st = os.stat(path)
    if (st.st_uid, st.st_gid) != (0, identity.gid):
        os.chown(path, 0, identity.gid)
    if stat.S_IMODE(st.st_mode) != 0o640:
        os.chmod(path, 0o640)


KVM_DEVICE = Path("/dev/kvm")


def ensure_kvm_access(identity: GuestIdentity, device: Path = KVM_DEVICE) -> str:
    """Let the guest user open /dev/kvm as udev's rule does (root:kvm 0660); what was found or done."""
    if not device.exists():
        return f"no {device}"
    if allows(device, identity, READ_WRITE):
        return f"{device} opens for {identity.name}"
    try:
        kvm = grp.getgrnam("kvm").gr_gid
    except KeyError:
        return f"{device} is closed to {identity.name} and there is no group kvm"
    st = os.stat(device)
    if kvm not in identity.groups or st.st_gid not in (0, kvm):
        return f"{device} is closed to {identity.name} (left as it is: owner group {st.st_gid})"
    os.chown(device, -1, kvm)
    os.chmod(device, stat.S_IMODE(st.st_mode) | 0o060)
    log.info("/dev/kvm made root:kvm, group read-write, as udev does", extra={"device": str(device)})
    return f"{device} made group kvm read-write (no udev rule had done it)"


# --- the domain XML ---------------------------------------------------------------------


def guest_paths(domain_xml: str) -> list[str]:
    """Every host path a domain's QEMU opens by name: disks and their backing files, file and
    socket character devices, graphics sockets."""
    root = ET.fromstring(domain_xml)
    found: list[str] = []
    devices = root.find("devices")
    for element in devices.iter() if devices is not None else ():
        for attribute in ("file", "path", "socket"):
            value = element.get(attribute)
            if element.tag in ("source", "graphics", "listen") and value and value.startswith("/"):
                found.append(value)
    return found


def backing_files(domain_xml: str) -> list[str]:
    """The backing files the domain XML states."""
    sources = ET.fromstring(domain_xml).iterfind("devices/disk//backingStore/source")
    return [source.get("file", "") for source in sources if source.get("file")]


Chain = list[tuple[str, str]]  # (path, format) of each backing file, nearest first


def disks_without_chain(domain_xml: str) -> list[str]:
    """The qcow2 file disks whose backing chain the XML does not state (libvirt would probe it and
    chown the backing files to the guest user)."""
    found = []
    for disk in ET.fromstring(domain_xml).iterfind("devices/disk"):
        source, driver = disk.find("source"), disk.find("driver")
        if disk.get("type") != "file" or source is None or not source.get("file"):
            continue
        if driver is not None and driver.get("type") == "qcow2" and disk.find("backingStore") is None:
            found.append(source.get("file", ""))
    return found


def with_backing_chains(domain_xml: str, chains: dict[str, Chain]) -> str:
    """``domain_xml`` with the backing chain of each disk in ``chains`` written out, each backing
    file marked relabel='no' for the DAC driver.  An empty chain says "no backing file"."""
    root = ET.fromstring(domain_xml)
    changed = False
    for disk in root.iterfind("devices/disk"):
        source = disk.find("source")
        path = source.get("file") if source is not None else None
        if path not in chains or disk.find("backingStore") is not None:
            continue
        parent, position = disk, list(disk).index(source) + 1
        for backing, fmt in chains[path]:
            store = ET.Element("backingStore", type="file")
            ET.SubElement(store, "format", type=fmt)
            ET.SubElement(ET.SubElement(store, "source", file=backing), "seclabel", model="dac", relabel="no")
            parent.insert(position, store)
            parent, position = store, len(store)
        parent.insert(position, ET.Element("backingStore"))  # the chain ends here
        changed = True
    if not changed:
        return domain_xml
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")
