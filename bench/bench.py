#!/usr/bin/python3
"""flowpath system benchmark: flowpath vs Open vSwitch-DPDK vs testpmd io.

Run through scripts/bench, which installs dependencies and builds flowpath
first.  This program generates the workloads (bench/workloads.py), runs every
system on each (bench/runners.py), alternating systems round by round, and
writes bench/results/<date>/{report.md,results.json,*.png} (bench/report.py).
"""

import argparse
import datetime
import glob
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import openflow_flow_mods  # noqa: E402
import report  # noqa: E402
import rulechanges  # noqa: E402
import runners  # noqa: E402
import workloads  # noqa: E402

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
WORKLOAD_ORDER = ["emc", "megaflow", "tss", "upcall", "conntrack", "ct_new"]
COUNTS_NEW_CONNECTIONS = ("ct_new",)  # workloads whose new connections per second are measured
# Issue 8's measurements, after the sweeps: group -> what runs them.
LIVE_GROUPS = ("storm", "rulechange", "ruleload", "flowmods")
# ovs_smc: Open vSwitch with other_config:smc-enable=true (issue 10), in the
# hit-path workloads, the sweeps and tse; not in the flow-setup, storm and
# rule-change measurements, where the slow path decides.
SYSTEM_ORDER = ["testpmd", "ovs", "ovs_smc", "flowpath"]
HIT_PATH_ONLY = ("ovs_smc",)


class Config:
    """Knobs of one benchmark run (mode defaults, overridden by options)."""

    def __init__(self, args):
        self.quick = args.quick
        # Full mode: 5 rounds, so a min-max spread means something on a
        # shared machine; quick: 3.
        self.rounds = args.rounds or (3 if args.quick else 5)
        self.sweep_rounds = args.sweep_rounds or (1 if args.quick else 2)
        # Full mode spreads a workload's rounds over the run (one round per
        # pass through the workloads), so its min-max also holds the
        # machine's drift over the run's ten minutes, not just over one
        # workload's minute: that is what makes a rerun land inside it.
        self.passes = max(1, min(args.passes or (1 if args.quick else self.rounds), self.rounds))
        self.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
        self.window = args.window if args.window is not None else (1.0 if args.quick else 2.5)
        self.start_timeout = 60
        # ovs-ofctl add-flows and flowpath-ctl add-flows of the ruleload file
        self.rules_timeout = 60
        # Rule-change latency: repetitions per change, and how long to wait
        # for a system to install the workload's megaflows.
        self.change_reps = 2 if args.quick else 5
        self.megaflow_wait = 45.0 if args.quick else 120.0
        self.first_pass_timeout = 8.0 if args.quick else 15.0
        self.max_settle = 6.0 if args.quick else 12.0
        self.keep_logs = args.keep_logs
        self.build_dir = os.path.abspath(args.build_dir)
        self.flowpath = os.path.join(self.build_dir, "flowpath")
        self.flowpath_ctl = os.path.join(self.build_dir, "flowpath-ctl")
        self.systems = args.systems.split(",") if args.systems else list(SYSTEM_ORDER)
        # 1M flows: full mode, or quick when --only names flows-1000000 (a
        # 1M-packet pcap holds ~4.5 GiB of mbufs per system under --no-huge).
        self.flow_points = ([1000, 10000, 100000] if args.quick
                            else [1000, 10000, 100000, 200000, 1000000])
        self.flow_points_on_request = [1000000] if args.quick else []
        self.mask_points = [1, 16, 256] if args.quick else [1, 4, 16, 64, 128, 256]
        self.sweep_flows_for_masks = 16384
        self.conn_points = ([1000, 10000, 100000] if args.quick
                            else [1000, 10000, 100000, 1000000])
        self.ct_setup_timeout = 60.0 if args.quick else 180.0


def log(message):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), message), flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# --------------------------------------------------------------------------
# Measurement


def window_result(before, after, details):
    """Rates and hit ratios between two samples of one system."""
    dt = after["t"] - before["t"]
    result = {"seconds": dt,
              "rx_pps": (after["rx"] - before["rx"]) / dt,
              "tx_pps": (after["tx"] - before["tx"]) / dt}
    result["forwarded_fraction"] = (result["tx_pps"] / result["rx_pps"]) if result["rx_pps"] else None
    if after.get("tx_p2") is not None and before.get("tx_p2") is not None:
        result["tx_p2_pps"] = (after["tx_p2"] - before["tx_p2"]) / dt
    if after.get("queue_drops") is not None and before.get("queue_drops") is not None:
        result["queue_drops_per_s"] = (after["queue_drops"] - before["queue_drops"]) / dt
    if "exact_hits" in after:
        deltas = {key: (after.get(key) or 0) - (before.get(key) or 0)
                  for key in ("exact_hits", "cache_hits", "misses")}
        # Per datapath pass: a recirculated packet (ct) is looked up twice.
        lookups = sum(deltas.values())
        result.update(deltas)
        result["lookups"] = lookups
        for key, rate in (("exact_hits", "exact_hit_rate"), ("cache_hits", "cache_hit_rate"),
                          ("misses", "miss_rate")):
            result[rate] = deltas[key] / lookups if lookups > 0 else None
        if lookups == 0 and after["rx"] > before["rx"]:
            result["note"] = "no cache or miss counter moved: packets were forwarded without classification"
        result["upcalls_per_s"] = ((after.get("upcalls") or 0) - (before.get("upcalls") or 0)) / dt
        result["installs_per_s"] = ((after.get("installed") or 0) - (before.get("installed") or 0)) / dt
    result.update(details)
    return result


def settle(system, workload, config):
    """Extended warm-up of a system's first round: lets caches fill.

    Waits until the pcap went through twice and the rate over the last two
    half-second steps agrees within 15 %, or `config.max_settle` seconds.
    """
    start = time.monotonic()
    first = previous = system.sample()
    last_rate = None
    while time.monotonic() - start < config.max_settle:
        time.sleep(0.5)
        current = system.sample()
        rate = (current["rx"] - previous["rx"]) / max(current["t"] - previous["t"], 1e-6)
        passes = (current["rx"] - first["rx"]) / max(workload.packets, 1)
        if passes >= 2 and last_rate and abs(rate - last_rate) <= 0.15 * max(rate, last_rate):
            break
        previous, last_rate = current, rate
    return time.monotonic() - start


def measure_window(system, config, want_details=True, workload=None, count_commits=False):
    """One round of one system: warm-up, then counters over a fixed window.
    With `count_commits`, also the rules' ct(commit) counters (new
    connections per second)."""
    system.resume()
    settled = None
    try:
        time.sleep(config.warmup)
        if workload is not None:
            settled = settle(system, workload, config)
        before = system.sample()
        commits_before = system.commits() if count_commits else None
        time.sleep(config.window)
        commits_after = system.commits() if count_commits else None
        after = system.sample()
        details = system.details() if want_details else {}
    finally:
        system.pause()
    result = window_result(before, after, details)
    if commits_before is not None and commits_after is not None:
        # The rule counters are read inside the window's two samples.
        result["new_conns_per_s"] = (commits_after - commits_before) / (after["t"] - before["t"])
    if settled is not None:
        result["settle_seconds"] = settled
    return result


def first_pass_result(samples, packets):
    """Flow-setup rate while the pcap's first pass (all misses) goes through."""
    if len(samples) < 2:
        return {"first_pass_note": "fewer than two samples"}
    j = 0
    k = next((i for i, s in enumerate(samples) if s["rx"] >= packets), len(samples) - 1)
    note = ""
    if k - 1 > j:
        k -= 1  # the last sample still inside the first pass
    else:
        note = "first pass shorter than the sampling interval: rates are lower bounds"
    a, b = samples[j], samples[k]
    dt = b["t"] - a["t"]
    if dt <= 0:
        return {"first_pass_note": "no time between samples"}
    if not samples[-1]["upcalls"]:
        return {"first_pass_note": "no slow-path counter moved during the first pass: "
                                   "no flow setups to measure"}
    return {"setups_per_s": (b["upcalls"] - a["upcalls"]) / dt,
            "installs_per_s_first_pass": (b["installed"] - a["installed"]) / dt,
            "first_pass_pps": (b["rx"] - a["rx"]) / dt,
            "first_pass_seconds_sampled": dt,
            "first_pass_samples": k - j + 1,
            "first_pass_note": note}


def start_system(name, workload, config, results):
    """Starts one system and pauses it; records why when it cannot start."""
    entry = results.setdefault(name, {"status": "ok", "rounds": []})
    if name == "flowpath" and not os.path.exists(config.flowpath):
        entry.update(status="not built", message="%s does not exist" % config.flowpath)
        return None
    system = runners.SYSTEMS[name](config)
    t0 = time.monotonic()
    try:
        system.start(workload)
        system.pause()
    except runners.StartFailure as failure:
        entry.update(status=failure.status, message=failure.message)
        system.stop()
        log("    %s: %s: %s" % (name, failure.status, failure.message))
        return None
    except Exception as error:  # a broken system must not stop the whole run
        entry.update(status="failed", message=str(error)[:300])
        system.stop()
        log("    %s: failed: %s" % (name, error))
        return None
    entry["startup_seconds"] = time.monotonic() - t0
    return system


def set_up_connections(system, workload, config, entry):
    """ct_sweep: lets the system read its whole set-up pcap (p2) and track
    the workload's connections, then deletes the gate rule that held p0's
    traffic back; records how long the set-up took."""
    want = workload.meta["connections"]
    system.resume()
    start = time.monotonic()
    try:
        while True:
            have = system.connections()
            if have is not None and have >= want and system.setup_rx() == workload.meta["setup_packets"]:
                break
            if time.monotonic() - start > config.ct_setup_timeout:
                entry["setup_note"] = "%s of %d connections, %s of %d set-up packets read after %.0f s" % (
                    have, want, system.setup_rx(), workload.meta["setup_packets"], config.ct_setup_timeout)
                break
            time.sleep(0.05)
        entry["setup_seconds"] = time.monotonic() - start
        system.delete_rules(workload.meta["gate"])
    finally:
        system.pause()
    entry["setup_connections"] = have
    log("    %-8s %s connections set up in %.1f s" % (system.name, have, entry["setup_seconds"]))


def run_alternating(workload, config, rounds, names=None):
    """Starts every system (or those of `names`), then measures A B C,
    A B C, ... for `rounds` rounds."""
    results = {}
    systems = []
    count_commits = workload.kind in COUNTS_NEW_CONNECTIONS
    try:
        for name in names or config.systems:
            system = start_system(name, workload, config, results)
            if system:
                systems.append(system)
        if workload.kind == "ct_sweep":
            for system in systems:
                set_up_connections(system, workload, config, results[system.name])
        for round_index in range(rounds):
            for system in list(systems):
                try:
                    result = measure_window(system, config,
                                            workload=workload if round_index == 0 else None,
                                            count_commits=count_commits and system.name != "testpmd")
                except Exception as error:
                    results[system.name].update(status="failed", message="round %d: %s" % (
                        round_index + 1, str(error)[:300]))
                    log("    %s failed: %s" % (system.name, error))
                    system.stop()
                    systems.remove(system)
                    continue
                results[system.name]["rounds"].append(result)
                log("    round %d %-8s %7.3f Mpps processed, %7.3f Mpps forwarded%s" % (
                    round_index + 1, system.name, result["rx_pps"] / 1e6, result["tx_pps"] / 1e6,
                    ", %.0fk new connections/s" % (result["new_conns_per_s"] / 1e3)
                    if result.get("new_conns_per_s") is not None else ""))
    finally:
        for system in systems:
            system.stop()
    return results


def run_cold_starts(workload, config, rounds):
    """Flow-setup workload: every round starts OVS and flowpath with empty caches."""
    results = {}
    io_systems = []
    try:
        if "testpmd" in config.systems:
            system = start_system("testpmd", workload, config, results)
            if system:
                io_systems.append(system)
        for round_index in range(rounds):
            for system in io_systems:
                result = measure_window(system, config, workload=workload if round_index == 0 else None)
                results[system.name]["rounds"].append(result)
                log("    round %d %-8s %7.3f Mpps" % (round_index + 1, system.name, result["rx_pps"] / 1e6))
            for name in config.systems:
                if name in ("testpmd",) + HIT_PATH_ONLY or results.get(name, {}).get("status", "ok") != "ok":
                    continue
                system = start_system(name, workload, config, results)
                if not system:
                    continue
                try:
                    system.resume()
                    samples = []
                    deadline = time.monotonic() + config.first_pass_timeout
                    while time.monotonic() < deadline:
                        samples.append(system.fast_sample())
                        if samples[-1]["rx"] >= workload.packets:
                            break
                        time.sleep(0.02)
                    system.pause()
                    first = first_pass_result(samples, workload.packets)
                    result = measure_window(system, config)
                    result.update(first)
                    result["first_pass_complete"] = samples[-1]["rx"] >= workload.packets
                    results[name]["rounds"].append(result)
                    setups = first.get("setups_per_s")
                    log("    round %d %-8s %s slow-path misses/s (first pass), %7.3f Mpps after" % (
                        round_index + 1, name, "%9.0f" % setups if setups is not None else "      n/a",
                        result["rx_pps"] / 1e6))
                except Exception as error:
                    results[name].update(status="failed", message=str(error)[:300])
                    log("    %s failed: %s" % (name, error))
                finally:
                    system.stop()
    finally:
        for system in io_systems:
            system.stop()
    return results


# --------------------------------------------------------------------------
# Summaries


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarize(system_results):
    for entry in system_results.values():
        rounds = entry.get("rounds", [])
        summary = {}
        for key in ("rx_pps", "tx_pps", "forwarded_fraction", "exact_hit_rate", "cache_hit_rate", "benign_pps",
                    "miss_rate", "setups_per_s", "installs_per_s_first_pass", "first_pass_pps",
                    "upcalls_per_s", "tx_p2_pps", "queue_drops_per_s", "new_conns_per_s"):
            value = spread([r.get(key) for r in rounds])
            if value:
                summary[key] = value
        if rounds:
            last = rounds[-1]
            for key in ("megaflows", "subtables", "rss_kib", "connections", "cache_bytes", "widened", "ct_bytes"):
                if last.get(key) is not None:
                    summary[key] = last[key]
        for key in ("setup_seconds", "setup_connections", "setup_note"):
            if entry.get(key) is not None:
                summary[key] = entry[key]
            notes = sorted({r.get(key) for r in rounds for key in ("first_pass_note", "note") if r.get(key)})
            if notes:
                summary["notes"] = notes
        entry["summary"] = summary


def connection_memory(all_results):
    """The connection sweep: per system and point, bytes per connection as
    the RSS difference to the smallest point over the connections added
    (every point holds the same traffic pcap, rules and mbufs), and, for
    flowpath, its tracker's own account (stats-json) per connection."""
    points = sorted((r["x"], r) for r in all_results.values() if r["group"] == "conns")
    if not points:
        return
    base_x, base = points[0]
    for x, result in points:
        for system, entry in result["systems"].items():
            summary = entry.get("summary", {})
            memory = summary.setdefault("memory", {})
            conns = summary.get("connections")
            base_summary = base["systems"].get(system, {}).get("summary", {})
            if (x != base_x and summary.get("rss_kib") is not None and base_summary.get("rss_kib") is not None
                    and conns and base_summary.get("connections") is not None
                    and conns > base_summary["connections"]):
                delta = (summary["rss_kib"] - base_summary["rss_kib"]) * 1024
                added = conns - base_summary["connections"]
                memory["per_connection"] = {
                    "bytes": delta / added, "rss_delta_bytes": delta, "entries": added,
                    "how": "(RSS at %s connections - RSS at %s) / connections added" % (
                        "{:,}".format(conns), "{:,}".format(base_summary["connections"]))}
            if summary.get("ct_bytes") and conns:
                memory["tracker_per_connection"] = {
                    "bytes": summary["ct_bytes"] / conns, "rss_delta_bytes": summary["ct_bytes"],
                    "entries": conns, "how": "stats-json conntrack memory / connections"}
            if not memory:
                summary.pop("memory")


def memory_estimates(all_results):
    """RSS delta against the emc run of the same system, per megaflow / connection."""
    connection_memory(all_results)
    base = all_results.get("emc", {}).get("systems", {})
    for name, per_entry, key in (("upcall", "per_megaflow", "megaflows"),
                                 ("megaflow", "per_megaflow", "megaflows"),
                                 ("conntrack", "per_connection", "connections")):
        for system, entry in all_results.get(name, {}).get("systems", {}).items():
            summary = entry.get("summary", {})
            base_rss = base.get(system, {}).get("summary", {}).get("rss_kib")
            count = summary.get(key)
            if base_rss is None or summary.get("rss_kib") is None or not count:
                continue
            delta = (summary["rss_kib"] - base_rss) * 1024
            summary.setdefault("memory", {})[per_entry] = {
                "bytes": delta / count, "rss_delta_bytes": delta, "entries": count,
                "how": "(RSS at end of %s - RSS at end of emc) / %s" % (name, key)}


# --------------------------------------------------------------------------
# Issue 10: tuple-space explosion (tse) and the flows sweep's memory


def tse_items():
    """The calm reference (no attack packets) and the attack, like the storm."""
    items = []
    for attack in (False, True):
        params = dict(workloads.default_params("tse"))
        if not attack:
            params["attack"] = 0
        items.append(("tse" if attack else "tse-calm", "tse", params, "tse", "attack" if attack else "calm"))
    return items


def tse_benign_rates(workload, rounds):
    """Adds each round's benign rate: processed packets times the benign
    share of the pcap (attack packets are spread evenly through it)."""
    share = workload.meta["benign_packets"] / workload.packets
    for entry in rounds.values():
        for measured in entry.get("rounds", []):
            measured["benign_pps"] = measured["rx_pps"] * share
            measured["attack_pps"] = measured["rx_pps"] - measured["benign_pps"]


def tse_shares(all_results):
    """Per system: benign rate under the attack / calm benign rate."""
    calm, attack = all_results.get("tse-calm"), all_results.get("tse")
    if not calm or not attack:
        return
    for system, entry in attack["systems"].items():
        mine = entry.get("summary", {}).get("benign_pps")
        base = calm["systems"].get(system, {}).get("summary", {}).get("benign_pps")
        if mine and base and base["median"]:
            entry["summary"]["benign_share"] = mine["median"] / base["median"]


def flows_memory(all_results):
    """Memory per flow along the flows sweep.

    `rss_delta`: (RSS at N - RSS at the smallest point) / (N - smallest N),
    only between points with the same mbuf pool (the pool is sized by the
    pcap: the 1M point's is four times larger). flowpath also states its
    caches' own size (stats `cache.bytes`: exact, signature and megaflow
    caches) per flow at every point.
    """
    points = sorted((r["x"], name) for name, r in all_results.items() if r["group"] == "flows")
    if not points:
        return
    for system in SYSTEM_ORDER:
        base = None
        for x, name in points:
            result = all_results[name]
            summary = result["systems"].get(system, {}).get("summary", {})
            if summary.get("rss_kib") is None:
                continue
            pool = runners.mbufs_for(result["workload"]["packets"])
            memory = {}
            if base is None:
                base = (x, summary["rss_kib"], pool)
            elif base[2] == pool:
                memory["rss_delta_bytes_per_flow"] = (summary["rss_kib"] - base[1]) * 1024 / (x - base[0])
                memory["rss_delta_from"] = base[0]
            if summary.get("cache_bytes"):
                memory["cache_bytes_per_flow"] = summary["cache_bytes"] / x
            if memory:
                summary["flows_memory"] = memory


# --------------------------------------------------------------------------
# Micro-benchmarks


def previous_results(explicit, out_dir, mode):
    """results.json of the run to compare with: `explicit` (a results dir or
    file), else the newest earlier run in bench/results of the same mode."""
    if explicit:
        path = os.path.join(explicit, "results.json") if os.path.isdir(explicit) else explicit
        with open(path) as f:
            return path, json.load(f)
    # Run directories are named by date, so the newest sorts last; the
    # "latest" link is skipped (it names one of them).
    candidates = sorted((p for p in glob.glob(os.path.join(BENCH_DIR, "results", "*", "results.json"))
                         if not os.path.islink(os.path.dirname(p))), reverse=True)
    for path in candidates:
        if os.path.dirname(os.path.realpath(path)) == os.path.realpath(out_dir):
            continue
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        if data.get("meta", {}).get("mode") == mode:
            return path, data
    return None, None


def reproducibility(previous_path, previous, all_results):
    """Whether each workload's median of the other run lies inside this run's
    min-max, and this run's median inside the other's, per system."""
    rows = []
    for name, result in all_results.items():
        if result["group"] != "workload":
            continue
        before = previous.get("results", {}).get(name, {}).get("systems", {})
        for system in SYSTEM_ORDER:
            now = result["systems"].get(system, {}).get("summary", {}).get("rx_pps")
            then = before.get(system, {}).get("summary", {}).get("rx_pps")
            if not now or not then:
                continue
            rows.append({"workload": name, "system": system, "now": now, "then": then,
                         "then_in_now": now["min"] <= then["median"] <= now["max"],
                         "now_in_then": then["min"] <= now["median"] <= then["max"]})
    return {"compared_with": os.path.relpath(previous_path, REPO_DIR),
            "compared_date": previous.get("meta", {}).get("date"),
            "compared_loadavg": previous.get("meta", {}).get("loadavg_start"), "rows": rows}


def run_micro(config):
    """Runs every micro_* Google Benchmark executable found in the build dir."""
    results = []
    exes = sorted(p for p in glob.glob(os.path.join(config.build_dir, "**", "micro_*"), recursive=True)
                  if os.path.isfile(p) and os.access(p, os.X_OK))
    for exe in exes:
        log("  micro-benchmark %s" % os.path.basename(exe))
        cmd = ["taskset", "-c", "1", exe, "--benchmark_format=json",
               "--benchmark_min_time=%s" % ("0.05" if config.quick else "0.5")]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            data = json.loads(out.stdout)
            results.append({"executable": os.path.relpath(exe, config.build_dir),
                            "benchmarks": data.get("benchmarks", []), "context": data.get("context", {})})
        except (subprocess.TimeoutExpired, ValueError, OSError) as error:
            results.append({"executable": os.path.relpath(exe, config.build_dir), "error": str(error)[:300]})
    return results


# --------------------------------------------------------------------------


def _output(args):
    """A command's stdout, stripped; "" when it cannot run."""
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _package_of(path):
    """"PACKAGE VERSION" of the Debian package that installed `path`, or ""."""
    if not path:
        return ""
    owner = _output(["dpkg-query", "-S", os.path.realpath(path)]).split(":", 1)[0]
    version = _output(["dpkg-query", "-W", "-f=${Version}", owner]) if owner else ""
    return "%s %s" % (owner, version) if version else ""


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _os_name():
    """"Debian GNU/Linux 12 (bookworm) (12.11)": the release and its point release."""
    fields = dict(line.split("=", 1) for line in _read("/etc/os-release").splitlines() if "=" in line)
    name = fields.get("PRETTY_NAME", "").strip('"')
    point = _read("/etc/debian_version").strip()
    return "%s (%s)" % (name, point) if point else name


def versions():
    """What this run ran, each as the component itself (or its package) says:
    flowpath's commit and the DPDK it is built with, Open vSwitch and its
    DPDK, dpdk-testpmd's package, the kernel and the OS."""
    commit = _output(["git", "-C", REPO_DIR, "rev-parse", "--short", "HEAD"])
    dirty = bool(_output(["git", "-C", REPO_DIR, "status", "--porcelain", "--", "src", "include"]))
    ovs = _output([runners.Ovs.VSWITCHD, "--version"]).splitlines()
    return {
        "flowpath": (commit or "unknown commit (no git)") + (" with uncommitted changes" if dirty else ""),
        "flowpath DPDK": _output(["pkg-config", "--modversion", "libdpdk"]) or "?",
        "Open vSwitch": " ".join(line for line in ovs if not line.startswith("DPDK")) or "not installed",
        "Open vSwitch DPDK": next((line.split(None, 1)[1] for line in ovs if line.startswith("DPDK ")), "?"),
        "dpdk-testpmd": _package_of(shutil.which("dpdk-testpmd")) or "not installed",
        "kernel": platform.release(),
        "OS": _os_name(),
    }


def machine_info(config):
    cmd = _output
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "ovs": cmd(["ovs-vsctl", "--version"]).splitlines()[0:1],
            "dpdk": cmd(["dpkg-query", "-W", "-f=${Version}", "dpdk"]),
            "flowpath_commit": cmd(["git", "-C", REPO_DIR, "rev-parse", "--short", "HEAD"]),
            "flowpath_dirty": bool(cmd(["git", "-C", REPO_DIR, "status", "--porcelain", "--", "src", "include"])),
            "flowpath_binary": config.flowpath, "loadavg_start": loadavg(), "versions": versions()}


def plan(config, only):
    """(name, kind, params, group, x) for every workload of this run."""
    items = []
    for kind in WORKLOAD_ORDER:
        items.append((kind, kind, workloads.default_params(kind), "workload", None))
    for flows in config.flow_points:
        params = dict(workloads.default_params("megaflow"), flows=flows)
        items.append(("flows-%d" % flows, "megaflow", params, "flows", flows))
    for flows in config.flow_points_on_request:
        params = dict(workloads.default_params("megaflow"), flows=flows)
        items.append(("flows-%d" % flows, "megaflow", params, "flows-on-request", flows))
    items += tse_items()
    for masks in config.mask_points:
        params = dict(workloads.default_params("tss"), masks=masks, flows=config.sweep_flows_for_masks)
        items.append(("masks-%d" % masks, "tss", params, "masks", masks))
    for conns in config.conn_points:
        params = dict(workloads.default_params("ct_sweep"), connections=conns)
        items.append(("conns-%d" % conns, "ct_sweep", params, "conns", conns))
    # Issue 8: the storm (calm reference, then the flood), rule-change
    # latency at 10,000 and 100,000 megaflows, rule load.
    for flood in (False, True):
        params = dict(workloads.default_params("storm"), flood=flood)
        items.append(("storm" if flood else "storm-calm", "storm", params, "storm",
                      "flood" if flood else "calm"))
    for megaflows in (10000, 100000):
        params = dict(workloads.default_params("rulechange"), megaflows=megaflows)
        items.append(("rulechange-%d" % megaflows, "rulechange", params, "rulechange", megaflows))
    params = workloads.default_params("ruleload")
    items.append(("ruleload", "ruleload", params, "ruleload", params["rules"]))
    # Issue 12: flow_mods per second through the OpenFlow agent.
    items.append(("flowmods", "flowmods", {"rules": 100000}, "flowmods", 100000))
    if config.quick and not only:
        # A few minutes each (OVS takes ~45 s to reach 100,000 megaflows and
        # more than a minute to load 100,000 masks): full mode, or --only.
        items = [i for i in items if i[0] not in ("rulechange-100000", "ruleload")]
    if only:
        wanted = only.split(",")
        items = [i for i in items if i[0] in wanted or i[3] in wanted or
                 (i[3] in ("flows", "masks", "conns") and "sweeps" in wanted)]
        # A point on request is measured as a point of the flows sweep.
        items = [i[:3] + ("flows",) + i[4:] if i[3] == "flows-on-request" else i for i in items]
    else:
        items = [i for i in items if i[3] != "flows-on-request"]
        if not items:
            raise SystemExit("--only: nothing matches %s (workloads: %s, flows, masks, conns, sweeps, tse, %s)"
                             % (only, ", ".join(WORKLOAD_ORDER), ", ".join(LIVE_GROUPS)))
    return items


def rounds_per_pass(rounds, passes):
    """`rounds` split over `passes` passes as evenly as possible."""
    return [rounds // passes + (1 if p < rounds % passes else 0) for p in range(passes)]


def run_item(item, rounds, pass_index, config, work_dir, all_results):
    """Measures one workload for `rounds` rounds and adds them to its results."""
    name, kind, params, group, x = item
    if kind == "flowmods":  # no traffic: ovs-ofctl add-flows over TCP into both (bench/openflow_flow_mods.py)
        load_before = loadavg()
        try:
            systems = openflow_flow_mods.run(config.build_dir, params["rules"], max(rounds, 3))
        except (Exception, SystemExit) as error:
            systems = {"error": str(error)[:300]}
        log("flowmods: %s" % ", ".join("%s %.0f flow_mods/s" % (n, r["flow_mods_per_second"])
                                       for n, r in systems.items() if isinstance(r, dict)) or systems)
        all_results[name] = {"group": group, "x": x, "workload": {"kind": kind, "params": params},
                             "loadavg_before": load_before, "loadavg_after": loadavg(), "systems": systems}
        return
    workload = workloads.generate(work_dir, name, kind, params, log=log)
    log("%s: %d packets, %d flows, %d rounds" % (name, workload.packets, workload.flows, rounds))
    load_before = loadavg()
    if kind == "upcall":
        systems = run_cold_starts(workload, config, rounds)
    elif kind == "rulechange":
        systems = rulechanges.run_rule_change(workload, config, log)
    elif kind == "ruleload":
        systems = rulechanges.run_rule_load(workload, config, log)
    elif kind in ("storm", "ct_sweep"):
        # Three ports (storm: and a flow limit; ct_sweep: a set-up pcap read
        # once): testpmd has nothing to compare here.
        systems = run_alternating(workload, config, rounds,
                                  [n for n in config.systems if n not in ("testpmd",) + HIT_PATH_ONLY])
    elif kind == "tse":
        systems = run_alternating(workload, config, rounds, [n for n in config.systems if n != "testpmd"])
    else:
        systems = run_alternating(workload, config, rounds)
    if kind == "tse":
        tse_benign_rates(workload, systems)
    result = all_results.setdefault(name, {"group": group, "x": x, "workload": {
        "kind": kind, "params": params, "packets": workload.packets, "flows": workload.flows,
        "description": workload.notes, "rules": os.path.relpath(workload.rules, REPO_DIR),
        "pcap": os.path.relpath(workload.pcap, REPO_DIR)},
        "loadavg_before": load_before, "loadavg_passes": [], "systems": {}})
    result["loadavg_passes"].append(load_before)
    if group in ("rulechange", "ruleload"):
        result["systems"].update(systems)  # measured once, not in rounds
        return
    for system, entry in systems.items():
        merged = result["systems"].setdefault(system, {"status": "ok", "rounds": []})
        for measured in entry.get("rounds", []):
            measured["pass"] = pass_index + 1
            merged["rounds"].append(measured)
        if entry.get("status", "ok") != "ok":
            merged["status"] = entry["status"]
            merged["message"] = entry.get("message")
        if "startup_seconds" in entry:
            merged.setdefault("startup_seconds", entry["startup_seconds"])
        for key in ("setup_seconds", "setup_connections", "setup_note"):
            if key in entry:
                merged[key] = entry[key]


def _terminate(signum, _frame):
    # Turns SIGTERM/SIGHUP into an exception so every `finally` stops its systems.
    raise SystemExit("stopped by signal %d" % signum)


def main():
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short windows, fewer sweep points (< 5 min)")
    parser.add_argument("--only", help="comma list of workloads (emc, megaflow, tss, upcall, conntrack, "
                        "ct_new), sweep points (flows-1000, masks-16, conns-1000), flows / masks / conns / "
                        "sweeps, or issue 8's storm / rulechange (rulechange-10000, rulechange-100000) / "
                        "ruleload / flowmods")
    parser.add_argument("--rounds", type=int, help="rounds per workload (default: quick 3, full 5)")
    parser.add_argument("--sweep-rounds", type=int, help="rounds per sweep point (quick 1, full 2)")
    parser.add_argument("--passes", type=int, help="passes through the workloads that their rounds are spread "
                        "over (quick 1; full: one per round)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before each window")
    parser.add_argument("--window", type=float, help="seconds of each measurement window")
    parser.add_argument("--systems", help="comma list among testpmd,ovs,flowpath")
    parser.add_argument("--build-dir", default=os.path.join(REPO_DIR, "build"),
                        help="build directory with flowpath, flowpath-ctl and micro_* (default build/)")
    parser.add_argument("--out", help="results directory (default bench/results/<date>)")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro_* benchmarks")
    parser.add_argument("--compare", help="results dir (or results.json) to check reproducibility against "
                        "(default: the newest earlier run of the same mode in bench/results)")
    parser.add_argument("--keep-logs", action="store_true", help="keep OVS/flowpath run directories")
    args = parser.parse_args()
    config = Config(args)

    items = plan(config, args.only)  # before anything is written: --only may be wrong
    started = time.monotonic()
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    out_dir = os.path.abspath(args.out or os.path.join(BENCH_DIR, "results", stamp))
    os.makedirs(out_dir, exist_ok=True)
    work_dir = os.path.join(BENCH_DIR, "work")
    info = machine_info(config)
    info.update(mode="quick" if config.quick else "full", rounds=config.rounds, passes=config.passes,
                sweep_rounds=config.sweep_rounds, warmup_s=config.warmup, window_s=config.window,
                systems=config.systems, date=stamp, command=" ".join(sys.argv[1:]))
    log("results in %s (load average %.2f)" % (out_dir, info["loadavg_start"]))

    runners.cleanup_stale()
    all_results = {}
    main_items = [item for item in items if item[3] == "workload"]
    passes = rounds_per_pass(config.rounds, config.passes)
    for pass_index, rounds in enumerate(passes):
        if len(passes) > 1 and main_items:
            log("pass %d of %d through the workloads" % (pass_index + 1, len(passes)))
        for item in main_items:
            run_item(item, rounds, pass_index, config, work_dir, all_results)
    for item in items:
        if item[3] != "workload":
            rounds = config.rounds if item[3] in ("storm", "tse") else config.sweep_rounds
            run_item(item, rounds, 0, config, work_dir, all_results)
    for result in all_results.values():
        if result["group"] not in ("rulechange", "ruleload", "flowmods"):
            summarize(result["systems"])
    memory_estimates(all_results)
    flows_memory(all_results)
    tse_shares(all_results)

    micro = [] if args.no_micro else run_micro(config)
    info["wall_seconds"] = time.monotonic() - started
    info["loadavg_end"] = loadavg()
    results = {"meta": info, "results": all_results, "micro": micro}
    previous_path, previous = previous_results(args.compare, out_dir, info["mode"])
    if previous:
        results["reproducibility"] = reproducibility(previous_path, previous, all_results)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    report.write(out_dir, results)
    latest = os.path.join(BENCH_DIR, "results", "latest")
    if not args.out:
        try:
            if os.path.islink(latest):
                os.unlink(latest)
            os.symlink(stamp, latest)
        except OSError:
            pass
    with open(os.path.join(out_dir, "report.md")) as f:
        text = f.read()
    if "## Summary" in text:
        print("\n" + text.split("## Summary", 1)[1].split("![", 1)[0].strip() + "\n")
    log("done in %.0f s: %s" % (info["wall_seconds"], os.path.join(out_dir, "report.md")))


if __name__ == "__main__":
    main()
