"""What the benchmark parts share: Django set up on a chosen database, synthetic ICD codes made
with bulk_create, percentiles, and the CPU time of processes read from /proc."""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def django_setup(*, data_dir: str, database_url: str = "", broker_url: str = "") -> None:
    """Django on `database_url` (SQLite in `data_dir` when empty) and `broker_url` (the
    filesystem broker in `data_dir` when empty), before anything imports a model."""
    sys.path.insert(0, str(ROOT))
    os.environ["MEDSYNTH_DATA_DIR"] = data_dir
    for name, value in (("DATABASE_URL", database_url), ("CELERY_BROKER_URL", broker_url)):
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medsynth_site.settings")
    import django

    django.setup()


def synthetic_codes(count: int, *, prefix: str = "Z") -> list:  # type: ignore[type-arg]
    """`count` billable codes that are not in ICD-10-CM (letter + three digits), in one bulk insert."""
    from generation.models import IcdCode, code_compact

    rows = []
    for i in range(count):
        code = f"{prefix}{i // 10:03d}.{i % 10}"
        chapter = str(i % 22 + 1)
        rows.append(
            IcdCode(
                code=code, code_compact=code_compact(code), description=f"Benchmark condition {prefix}{i}",
                chapter=chapter, chapter_title=f"Chapter {chapter}", block=f"{prefix}{chapter}",
                block_title=f"Block {chapter}", depth=2, is_billable=True, frequency=1 + i % 50,
            )
        )  # fmt: skip
    IcdCode.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    return list(IcdCode.objects.filter(description__startswith=f"Benchmark condition {prefix}").order_by("pk"))


def result_report(result: dict, path: Path | None) -> None:  # type: ignore[type-arg]
    """A part's figures: printed as one JSON line, and written to `path` (its --json) when given."""
    print(json.dumps(result), flush=True)
    if path:
        path.write_text(json.dumps(result, indent=1))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def p50_p95(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), percentile(values, 0.95)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- CPU time from /proc ------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its closing one.
    return text[text.rindex(")") + 2 :].split()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def cpu_seconds(pid: int, *, with_reaped_children: bool = False) -> float:
    """User + system CPU of a process (and of its children that have exited and been waited for)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # Fields after the name: state is [0]; utime [11], stime [12], cutime [13], cstime [14].
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    parent_of = {}
    for pid in all_pids():
        fields = _stat_fields(pid)
        if fields is not None:
            parent_of[pid] = int(fields[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parent_of.items() if parent in frontier]
        found += frontier
    return found


def processes_named(*names: str) -> list[int]:
    return [pid for pid in all_pids() if _comm(pid) in names]


def cpu_of(pids: Iterable[int], *, with_reaped_children: bool = True) -> float:
    return sum(cpu_seconds(pid, with_reaped_children=with_reaped_children) for pid in pids)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown",
    )  # fmt: skip
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    load = Path("/proc/loadavg").read_text().split()[:3]
    return {
        "cpu": f"{os.cpu_count()} × {model}",
        "memory": f"{memory_kb / 1024 / 1024:.1f} GiB",
        "load": " / ".join(load),
        "python": sys.version.split()[0],
    }
