"""A throw-away one-node SLURM cluster on this machine, for testing ``--profile profiles/slurm``.

Debian's slurmctld, slurmd, slurm-client and munge, installed with apt-get when missing. The
cluster lives entirely in one folder (config, munge key and socket, state, logs), its daemons run
in the foreground under ``timeout`` (so they die even if a test run is killed) and are stopped by
:meth:`LocalSlurm.stop`. Client commands find it through the ``SLURM_CONF`` variable of
:attr:`LocalSlurm.env`; sbatch hands the environment on to the jobs (``--export=ALL``). Inside a
job, though, the plugin's jobstep drops every ``SLURM_*`` variable but the job's identity before
its ``srun``, so srun looks for ``/etc/slurm/slurm.conf``, then ``/run/slurm/conf/slurm.conf``
(where configless slurmd caches its config): the cluster links ``/run/slurm/conf`` to its own
config folder while it runs (and refuses to start where either already exists).

One node (this host, its real CPUs and memory from ``slurmd -C``) in two partitions, ``cpu``
(default) and ``gpu``, with a fake GPU (``Gres=gpu:1``, ``File=/dev/null``: a count-only gres
drains the node). No accounting (no slurmdbd): ``squeue`` is the status command, so
``MinJobAge`` must be at least 3 x the plugin's initial status delay.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")  # a real cluster's config: never touched
RUN_CONF = Path("/run/slurm/conf")  # where client commands look after SYSTEM_CONF
DAEMON_LIFETIME_S = 3600  # upper bound on a daemon's life, whatever happens to the test
MIN_JOB_AGE_S = 1800  # >= 3 x slurm-init-seconds-before-status-checks (40 s in profiles/slurm), and
# longer than a test run, so that `scontrol show job` still lists every job of the run at its end


def skip_reason() -> str | None:
    """Why a local cluster cannot be set up here, or ``None`` if it can."""
    if os.geteuid() != 0:
        return "a local SLURM cluster needs root (daemons run as root, packages via apt-get)"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "SLURM is not installed and apt-get is not available to install it"
    if SYSTEM_CONF.exists() or RUN_CONF.exists() or RUN_CONF.is_symlink():
        return f"this host already has a SLURM configuration ({SYSTEM_CONF} or {RUN_CONF}); not replacing it"
    return None


def install(timeout: int = 900) -> None:
    """Install the SLURM and munge packages once (``apt-get update`` and install), if missing."""
    if all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "sbatch", "munged")):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=timeout,
                   capture_output=True, text=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
                   check=True, env=env, timeout=timeout, capture_output=True, text=True)


def node_line() -> str:
    """This host as a slurm.conf node line, from ``slurmd -C`` (NodeName, CPUs, RealMemory...)."""
    output = subprocess.run(["slurmd", "-C"], check=True, capture_output=True, text=True, timeout=60).stdout
    line = next(row for row in output.splitlines() if row.startswith("NodeName="))
    return line.strip()


def slurm_conf(root: Path, node: str, host: str) -> str:
    """The slurm.conf text of a one-node cluster whose files all live under ``root``."""
    node_name = node.split()[0].split("=", 1)[1]
    return f"""\
ClusterName=dnormtest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root / 'munge' / 'munge.socket'}
CredType=cred/munge
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
DefMemPerCPU=1000
MinJobAge={MIN_JOB_AGE_S}
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
{node} Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes={node_name} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={node_name} Default=NO MaxTime=INFINITE State=UP
"""


@dataclass
class LocalSlurm:
    """A running one-node cluster under ``root``; :meth:`stop` ends every daemon it started."""

    root: Path
    env: dict = field(default_factory=dict)
    node: str = ""  # this host's slurm.conf node line (NodeName=... CPUs=... RealMemory=...)
    processes: list = field(default_factory=list)
    made: list = field(default_factory=list)  # paths created outside root, removed by stop()

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def ctld_log(self) -> Path:
        return self.root / "log" / "slurmctld.log"

    def command(self, *args: str, timeout: int = 30, check: bool = True) -> str:
        """Run a client command (sinfo, squeue, scontrol, sbatch...) against this cluster."""
        result = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result.stdout

    def _daemon(self, name: str, *args: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")
        process = subprocess.Popen(["timeout", "-k", "10", str(DAEMON_LIFETIME_S), *args], env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        log.close()
        self.processes.append((name, process))
        time.sleep(1)
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at once ({process.returncode}): "
                               f"{(self.root / 'log' / f'{name}.out').read_text()[-2000:]}")

    def start(self, wait_s: float = 60) -> "LocalSlurm":
        for sub in ("etc", "munge", "state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        host = socket.gethostname().split(".")[0]
        self.node = node = node_line()
        self.conf.write_text(slurm_conf(self.root, node, host))
        node_name = node.split()[0].split("=", 1)[1]
        (self.conf.parent / "gres.conf").write_text(f"NodeName={node_name} Name=gpu File=/dev/null\n")
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        if SYSTEM_CONF.exists() or RUN_CONF.exists() or RUN_CONF.is_symlink():
            raise RuntimeError(f"{SYSTEM_CONF} or {RUN_CONF} exists: another SLURM configuration is in use")
        if not RUN_CONF.parent.exists():
            RUN_CONF.parent.mkdir(parents=True)
            self.made.insert(0, RUN_CONF.parent)
        RUN_CONF.symlink_to(self.conf.parent, target_is_directory=True)
        self.made.insert(0, RUN_CONF)
        munge = self.root / "munge"
        self._daemon("munged", "munged", "--foreground", "--force", f"--key-file={key}",
                     f"--socket={munge / 'munge.socket'}", f"--pid-file={munge / 'munged.pid'}",
                     f"--log-file={self.root / 'log' / 'munged.log'}", f"--seed-file={munge / 'munged.seed'}")
        self._daemon("slurmctld", "slurmctld", "-D", "-i", "-f", str(self.conf))
        self._daemon("slurmd", "slurmd", "-D", "-f", str(self.conf))
        deadline = time.monotonic() + wait_s
        state = ""
        while time.monotonic() < deadline:
            state = self.command("sinfo", "--noheader", "-N", "-o", "%N %T", check=False, timeout=10).strip()
            if state and all(row.split()[-1] == "idle" for row in state.splitlines()):
                return self
            time.sleep(1)
        raise RuntimeError(f"the node did not become idle within {wait_s:.0f} s (sinfo: {state!r}); "
                           f"slurmctld log:\n{self.ctld_log.read_text()[-3000:] if self.ctld_log.exists() else ''}")

    def stop(self) -> None:
        """Cancel leftover jobs, then stop the daemons (slurmd, slurmctld, munged) and wait for them."""
        if any(name == "slurmctld" and p.poll() is None for name, p in self.processes):
            self.command("scancel", "--user", "root", check=False, timeout=15)
            time.sleep(1)
        for name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # timeout relays it to the daemon
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
        self.processes.clear()
        for path in self.made:
            if path.is_symlink():
                path.unlink()
            elif path.is_dir():
                path.rmdir()
        self.made.clear()

    def running(self) -> list[str]:
        return [name for name, process in self.processes if process.poll() is None]
