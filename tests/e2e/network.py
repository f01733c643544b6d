"""A weak network for the browser tests, made by the kernel: the UDP traffic on loopback (where the test
browsers' WebRTC media flows) goes through a token bucket of a given rate, with Linux traffic control (``tc``
from iproute2, run as root). TCP (pages, signalling, databases) is left alone.

This is the real thing for WebRTC: the browsers' congestion control sees packets queue and drop, and their
bandwidth estimate falls; nothing in the page is told to pretend."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest

DEVICE = "lo"


def _tc(*args: str) -> None:
    tc = shutil.which("tc") or "/usr/sbin/tc"
    done = subprocess.run([tc, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"tc {' '.join(args)} a échoué ({done.stderr.strip()}) : il faut iproute2 et les droits root "
            "(CAP_NET_ADMIN) pour simuler un réseau faible.",
            pytrace=False,
        )


@contextlib.contextmanager
def udp_limited(rate: str = "400kbit") -> Iterator[None]:
    """Limit every UDP packet on loopback (IPv4 and IPv6) to ``rate`` in all, for the duration of the block."""
    _tc("qdisc", "add", "dev", DEVICE, "root", "handle", "1:", "htb", "default", "10", "r2q", "1000")
    try:
        _tc("class", "add", "dev", DEVICE, "parent", "1:", "classid", "1:10", "htb", "rate", "100gbit")
        _tc(
            "class",
            "add",
            "dev",
            DEVICE,
            "parent",
            "1:",
            "classid",
            "1:20",
            "htb",
            "rate",
            rate,
            "ceil",
            rate,
        )
        for priority, (protocol, match) in enumerate((("ip", "ip"), ("ipv6", "ip6")), start=1):
            _tc(
                "filter", "add", "dev", DEVICE, "parent", "1:", "protocol", protocol, "prio", str(priority),
                "u32", "match", match, "protocol", "17", "0xff", "flowid", "1:20",
            )  # fmt: skip
        yield
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", DEVICE, "root"], capture_output=True, check=False)
