"""Writes report.md and the PNG plots of one benchmark run from results.json data."""

import os

SYSTEMS = [("testpmd", "testpmd io"), ("ovs", "OVS-DPDK"), ("ovs_smc", "OVS-DPDK +SMC"), ("flowpath", "flowpath")]
# The storm, rule-change and rule-load measurements run Open vSwitch as shipped only.
LIVE_SYSTEMS = [("ovs", "OVS-DPDK"), ("flowpath", "flowpath")]
COLORS = {"testpmd": "#9e9e9e", "ovs": "#1f77b4", "ovs_smc": "#2ca02c", "flowpath": "#d62728"}


def _mpps(value):
    return "%.2f" % (value / 1e6) if value is not None else "–"


def _spread_mpps(spread):
    if not spread:
        return "–"
    if spread["n"] == 1:
        return _mpps(spread["median"])
    return "%s (%s–%s)" % (_mpps(spread["median"]), _mpps(spread["min"]), _mpps(spread["max"]))


def _spread_k(spread):
    if not spread:
        return "–"
    text = "%.0fk" % (spread["median"] / 1e3)
    if spread["n"] > 1:
        text += " (%.0fk–%.0fk)" % (spread["min"] / 1e3, spread["max"] / 1e3)
    return text


def _pct(spread):
    if not spread or spread.get("median") is None:
        return "–"
    return "%.1f%%" % (100 * spread["median"])


def _ratio(a, b):
    if not a or not b or not b.get("median"):
        return "–"
    return "%.2f×" % (a["median"] / b["median"])


NO_CLASSIFY = "no cache or miss counter moved"
FOOTNOTES = [
    "† flowpath moved none of its cache or miss counters: it forwarded without classifying "
    "(e.g. a fixed port map), so its ratio compares a port-to-port forwarder with OVS's whole pipeline.",
    "‡ flowpath and OVS forwarded different shares of the processed packets: they did not apply "
    "the rules alike, so the rates are not comparable yet.",
]


def _flags(system, systems):
    """† / ‡ marks of a flowpath cell (see FOOTNOTES)."""
    if system != "flowpath":
        return ""
    summary = (systems.get("flowpath") or {}).get("summary", {})
    marks = ""
    if any(NO_CLASSIFY in note for note in summary.get("notes", [])):
        marks += " †"
    mine = summary.get("forwarded_fraction")
    theirs = (systems.get("ovs") or {}).get("summary", {}).get("forwarded_fraction")
    if mine and theirs and abs(mine["median"] - theirs["median"]) > 0.01:
        marks += " ‡"
    return marks


def _status_cell(entry):
    if not entry:
        return "not run"
    status = entry.get("status", "ok")
    if status != "ok" and not entry.get("rounds"):
        return status
    return None


def _headline_metrics(result):
    """(metric key, unit label, formatter) rows of the summary table for one workload."""
    if result["workload"]["kind"] == "upcall":
        return [("setups_per_s", "slow-path misses/s, 1st pass", _spread_k),
                ("installs_per_s_first_pass", "megaflow installs/s, 1st pass", _spread_k),
                ("rx_pps", "Mpps after 1st pass", _spread_mpps)]
    if result["workload"]["kind"] == "ct_new":
        return [("rx_pps", "Mpps", _spread_mpps), ("new_conns_per_s", "new connections/s", _spread_k)]
    return [("rx_pps", "Mpps", _spread_mpps)]


# Issue 9's targets: (workload, metric, least flowpath / OVS ratio, what).
CT_TARGETS = [("conntrack", "rx_pps", 5.0, "packets per second"),
           ("ct_new", "new_conns_per_s", 3.0, "new connections per second")]


def _median(results, workload, system, key):
    spread = (results.get(workload, {}).get("systems", {}).get(system, {})
              .get("summary", {}).get(key))
    return spread["median"] if spread else None


def _conntrack_targets_section(results):
    """The conntrack targets against Open vSwitch, and memory per connection."""
    if not any(name in results for name, _k, _r, _l in CT_TARGETS) and not any(
            r["group"] == "conns" for r in results.values()):
        return []
    md = ["## Conntrack targets", "",
          "| target | OVS-DPDK | flowpath | flowpath / OVS | met |", "|---|---|---|---|---|"]
    for workload, key, ratio, label in CT_TARGETS:
        ovs = _median(results, workload, "ovs", key)
        fp = _median(results, workload, "flowpath", key)
        fmt = (lambda v: "%.2f Mpps" % (v / 1e6)) if key == "rx_pps" else (lambda v: "%.0fk/s" % (v / 1e3))
        if ovs and fp:
            verdict = "**yes**" if fp / ovs >= ratio else "**no**"
            md.append("| %s: %s ≥ %.0f× OVS | %s | %s | %.2f× | %s |" % (
                workload, label, ratio, fmt(ovs), fmt(fp), fp / ovs, verdict))
        else:
            status = (results.get(workload, {}).get("systems", {}).get("flowpath", {}).get("status")
                      if workload in results else "not run")
            md.append("| %s: %s ≥ %.0f× OVS | %s | %s | – | not measured |" % (
                workload, label, ratio, fmt(ovs) if ovs else "–", fmt(fp) if fp else (status or "–")))
    largest = max((r for r in results.values() if r["group"] == "conns"), key=lambda r: r["x"], default=None)
    if largest:
        per = {}
        for system in ("ovs", "flowpath"):
            memory = largest["systems"].get(system, {}).get("summary", {}).get("memory", {})
            per[system] = memory.get("per_connection", {}).get("bytes")
        cells = ["%.0f B" % per[s] if per[s] else "–" for s in ("ovs", "flowpath")]
        met = ("**yes**" if per["ovs"] and per["flowpath"] and per["flowpath"] < per["ovs"]
               else "**no**" if per["ovs"] and per["flowpath"] else "not measured")
        md.append("| memory per connection below OVS's (RSS, %s connections) | %s | %s | %s | %s |" % (
            "{:,}".format(largest["x"]), cells[0], cells[1],
            "%.2f×" % (per["flowpath"] / per["ovs"]) if per["ovs"] and per["flowpath"] else "–", met))
    md += ["", "New connections per second: packets that went through `ct(commit)` per second over "
           "the window (flowpath: its rules' counters, `flowpath-ctl dump-flows`; OVS: its datapath "
           "flows' counters, `dpctl/dump-flows`, which are live where its rules' lag behind the "
           "revalidators). In `ct_new` every pass sets every connection up again (SYN, SYN-ACK, ACK, "
           "RST; the next SYN reuses the closed connection's ports), so it should be the processed "
           "rate / 4.", ""]
    return md


def _conns_sweep_table(results):
    """The connection-count sweep: rate and memory for both datapaths."""
    points = sorted((r["x"], name) for name, r in results.items() if r["group"] == "conns")
    if not points:
        return []
    lines = ["| connections | OVS-DPDK Mpps | flowpath Mpps | flowpath / OVS | tracked OVS / flowpath "
             "| RSS MiB OVS / flowpath | bytes per connection OVS / flowpath (RSS) "
             "| flowpath tracker bytes per connection |",
             "|---|---|---|---|---|---|---|---|"]
    notes = []
    for x, name in points:
        systems = results[name]["systems"]
        cells, spreads, extra = [], {}, {}
        for system in ("ovs", "flowpath"):
            entry = systems.get(system)
            status = _status_cell(entry)
            s = entry.get("summary", {}) if entry else {}
            spreads[system] = s.get("rx_pps")
            cells.append((status or _spread_mpps(spreads[system]))
                         + (_flags(system, systems) if spreads[system] else ""))
            memory = s.get("memory", {})
            extra[system] = {
                "conns": "{:,}".format(s["connections"]) if s.get("connections") is not None else "–",
                "rss": "%.0f" % (s["rss_kib"] / 1024) if s.get("rss_kib") else "–",
                "per": "%.0f" % memory["per_connection"]["bytes"] if "per_connection" in memory else "–",
                "tracker": "%.0f" % memory["tracker_per_connection"]["bytes"]
                if "tracker_per_connection" in memory else "–"}
            if s.get("setup_note"):
                notes.append("- %s at %s: %s" % (system, "{:,}".format(x), s["setup_note"]))
            if entry and entry.get("message"):
                notes.append("- %s at %s: **%s** — `%s`" % (system, "{:,}".format(x), entry.get("status"),
                                                            entry["message"].replace("`", "'")))
        o, f = extra["ovs"], extra["flowpath"]
        lines.append("| %s | %s | %s | %s | %s / %s | %s / %s | %s / %s | %s |" % (
            "{:,}".format(x), cells[0], cells[1], _ratio(spreads["flowpath"], spreads["ovs"]),
            o["conns"], f["conns"], o["rss"], f["rss"], o["per"], f["per"], f["tracker"]))
    base = "{:,}".format(points[0][0])
    lines += ["", "Each point: port p2 reads a set-up pcap once (SYN, SYN-ACK, ACK of every connection, "
              "repeated) while a gate rule drops p0's traffic; once the datapath tracks them all, the "
              "gate rule is deleted, p0 replays the same-sized traffic pcap (data segments spread over "
              "all connections) and the rate is measured. Bytes per connection: RSS difference to the "
              "%s-connection point over the connections added (same pcaps, rules and mbufs). "
              "Connection set-up speed is `ct_new`'s measure." % base]
    return lines + notes


def _summary_table(results, names):
    lines = ["| workload | metric | testpmd io | OVS-DPDK | OVS-DPDK +SMC | flowpath | flowpath / OVS "
             "| flowpath / OVS +SMC | flowpath / testpmd |", "|---|---|---|---|---|---|---|---|---|"]
    for name, key, unit, fmt in [(n,) + m for n in names for m in _headline_metrics(results[n])]:
        result = results[name]
        cells = []
        spreads = {}
        for system, _label in SYSTEMS:
            entry = result["systems"].get(system)
            status = _status_cell(entry)
            spread = entry.get("summary", {}).get(key) if entry else None
            if system == "testpmd" and key != "rx_pps":
                spread = None
                status = "n/a (no classification)" if entry and not status else status
            spreads[system] = spread
            if not status and not spread:
                status = "n/a"
            cells.append((status or fmt(spread)) + (_flags(system, result["systems"]) if spread else ""))
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            name, unit, " | ".join(cells), _ratio(spreads["flowpath"], spreads["ovs"]),
            _ratio(spreads["flowpath"], spreads["ovs_smc"]), _ratio(spreads["flowpath"], spreads["testpmd"])))
    return lines


def _detail_table(result):
    lines = ["| system | status | processed Mpps | forwarded Mpps | forwarded | exact-cache hits "
             "| megaflow hits | misses | megaflows | subtables | RSS MiB | conns |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for system, label in SYSTEMS:
        entry = result["systems"].get(system)
        if not entry:
            continue
        s = entry.get("summary", {})
        status = entry.get("status", "ok")
        if entry.get("message"):
            notes.append("- %s: **%s** — `%s`" % (label, status, entry["message"].replace("`", "'")))
        rss = s.get("rss_kib")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, status, _spread_mpps(s.get("rx_pps")), _spread_mpps(s.get("tx_pps")),
            _pct(s.get("forwarded_fraction")), _pct(s.get("exact_hit_rate")),
            _pct(s.get("cache_hit_rate")), _pct(s.get("miss_rate")),
            s.get("megaflows", "–") if s.get("megaflows") is not None else "–",
            s.get("subtables", "–") if s.get("subtables") is not None else "–",
            "%.0f" % (rss / 1024) if rss else "–",
            s.get("connections") if s.get("connections") is not None else "–"))
        for key, memory in sorted(s.get("memory", {}).items()):
            notes.append("- %s: memory %s ≈ %.0f bytes (%s: %.1f MiB over %d entries)" % (
                label, key.replace("_", " "), memory["bytes"], memory["how"],
                memory["rss_delta_bytes"] / 2**20, memory["entries"]))
        if "setups_per_s" in s:
            notes.append("- %s: first pass: %s flow setups/s (misses handled), %s installs/s, "
                         "%s Mpps while setting up; steady Mpps above is after the first pass." % (
                             label, _spread_k(s.get("setups_per_s")),
                             _spread_k(s.get("installs_per_s_first_pass")),
                             _spread_mpps(s.get("first_pass_pps"))))
        if s.get("widened"):
            notes.append("- %s: %d megaflows installed under a wider mask than translated (mask limit, "
                         "stats `slow_path.widened`)." % (label, s["widened"]))
        for note in s.get("notes", []):
            notes.append("- %s: %s" % (label, note))
    return lines + [""] + notes


def _sweep_table(results, group, label):
    points = sorted((r["x"], name) for name, r in results.items() if r["group"] == group)
    if not points:
        return []
    lines = ["| %s | testpmd io Mpps | OVS-DPDK Mpps | OVS-DPDK +SMC Mpps | flowpath Mpps | flowpath / OVS "
             "| flowpath / OVS +SMC | OVS megaflows / subtables | flowpath megaflows / subtables |" % label,
             "|---|---|---|---|---|---|---|---|---|"]
    for x, name in points:
        cells = []
        spreads = {}
        extra = {}
        for system, _l in SYSTEMS:
            entry = results[name]["systems"].get(system)
            status = _status_cell(entry)
            spread = entry.get("summary", {}).get("rx_pps") if entry else None
            spreads[system] = spread
            cells.append((status or _spread_mpps(spread))
                         + (_flags(system, results[name]["systems"]) if spread else ""))
            s = entry.get("summary", {}) if entry else {}
            extra[system] = "%s / %s" % (s.get("megaflows", "–"), s.get("subtables", "–"))
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            "{:,}".format(x), " | ".join(cells), _ratio(spreads["flowpath"], spreads["ovs"]),
            _ratio(spreads["flowpath"], spreads["ovs_smc"]), extra["ovs"], extra["flowpath"]))
    return lines


def _connection_memory_note(micro):
    """flowpath's bytes per connection from micro_conntrack (its table alone)."""
    for exe in micro or []:
        sizes = [(int(b["name"].rsplit("/", 1)[-1]), b["B/conn"]) for b in exe.get("benchmarks", [])
                 if "B/conn" in b and b.get("name", "").rsplit("/", 1)[-1].isdigit()]
        if sizes:
            line = ", ".join("%s at %s connections" % ("%.0f B" % v, "{:,}".format(n)) for n, v in sorted(set(sizes)))
            return ["- flowpath: memory per connection (connection table and its index, measured by "
                    "`micro_conntrack`): " + line + "."]
    return []


def _micro_section(micro):
    if not micro:
        return ["No `micro_*` executables were found in the build directory (or `--no-micro`)."]
    lines = ["| executable | benchmark | time / iteration | items/s | counters |", "|---|---|---|---|---|"]
    skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations",
            "real_time", "cpu_time", "time_unit", "items_per_second", "bytes_per_second", "family_index",
            "per_family_instance_index", "aggregate_name", "aggregate_unit", "label"}
    for exe in micro:
        if "error" in exe:
            lines.append("| %s | – | error: %s | | |" % (exe["executable"], exe["error"]))
            continue
        for bench in exe["benchmarks"]:
            counters = ", ".join("%s=%.4g" % (k, v) for k, v in bench.items()
                                 if k not in skip and isinstance(v, (int, float)))
            items = bench.get("items_per_second")
            lines.append("| %s | %s | %.1f %s (cpu %.1f) | %s | %s |" % (
                exe["executable"], bench.get("name"), bench.get("real_time", 0), bench.get("time_unit", ""),
                bench.get("cpu_time", 0), "%.3g" % items if items else "–", counters or "–"))
    return lines


def _reproducibility_section(check):
    """Another run's medians against this run's spreads (bench.reproducibility)."""
    md = ["## Reproducibility", ""]
    if not check or not check.get("rows"):
        return md + ["No earlier run of the same mode to compare with (`--compare DIR` names one).", ""]
    rows = check["rows"]
    md.append("Against `%s` (%s, load average %.2f at its start): is the other run's median inside this "
              "run's min–max, and this run's median inside the other's? Processed Mpps." % (
                  check["compared_with"], check.get("compared_date"), check.get("compared_loadavg") or 0))
    md += ["", "| workload | system | this run | other run | other median in this spread "
           "| this median in other spread |", "|---|---|---|---|---|---|"]
    for row in rows:
        md.append("| %s | %s | %s | %s | %s | %s |" % (
            row["workload"], dict(SYSTEMS).get(row["system"], row["system"]), _spread_mpps(row["now"]),
            _spread_mpps(row["then"]), "yes" if row["then_in_now"] else "**no**",
            "yes" if row["now_in_then"] else "**no**"))
    for system in ("ovs", "testpmd"):
        mine = [r for r in rows if r["system"] == system]
        if mine:
            both = sum(1 for r in mine if r["then_in_now"] or r["now_in_then"])
            md.append("")
            md.append("%s: %d of %d workloads reproduce (either median inside the other run's spread)." % (
                dict(SYSTEMS)[system], both, len(mine)))
    md += [""] + _host_drift_table(rows)
    return md + [""]


def _host_drift_table(rows):
    """testpmd (pure I/O) between the runs shows how much the host itself
    moved; the systems' rates relative to it are what a run can compare."""
    by_key = {(r["workload"], r["system"]): r for r in rows}
    lines = ["How much the host moved between the runs (testpmd io, no classification, is the yardstick) "
             "and the rates relative to it, which one run compares:", "",
             "| workload | testpmd this / other | OVS / testpmd this (other) | flowpath / testpmd this (other) |",
             "|---|---|---|---|"]
    found = False
    for workload in dict.fromkeys(r["workload"] for r in rows):
        io = by_key.get((workload, "testpmd"))
        if not io:
            continue
        found = True
        cells = []
        for system in ("ovs", "flowpath"):
            r = by_key.get((workload, system))
            cells.append("%.4f (%.4f)" % (r["now"]["median"] / io["now"]["median"],
                                          r["then"]["median"] / io["then"]["median"]) if r else "–")
        lines.append("| %s | %+.1f%% | %s | %s |" % (
            workload, 100 * (io["now"]["median"] / io["then"]["median"] - 1), cells[0], cells[1]))
    return lines if found else []


def _versions_section(versions):
    """The versions the run ran (bench.versions()); older results have none."""
    if not versions:
        return []
    lines = ["## Versions", "", "| component | version |", "| --- | --- |"]
    lines += ["| %s | %s |" % (name, value) for name, value in versions.items()]
    return lines + [""]


# ---------------------------------------------------------------------------
# Issue 8: storm, rule-change latency, rule load


def _ms(spread):
    if not spread:
        return "–"
    text = "%.1f" % (spread["median"] * 1e3)
    if spread.get("n", 1) > 1:
        text += " (%.1f–%.1f)" % (spread["min"] * 1e3, spread["max"] * 1e3)
    return text


def _seconds(value):
    return "%.2f s" % value if value is not None else "–"


def _storm_ratio(results, system):
    calm = (results.get("storm-calm", {}).get("systems", {}).get(system) or {}).get("summary", {}).get("tx_pps")
    flood = (results.get("storm", {}).get("systems", {}).get(system) or {}).get("summary", {}).get("tx_pps")
    return calm, flood, (flood["median"] / calm["median"] if calm and flood and calm["median"] else None)


def _storm_section(results):
    if "storm" not in results and "storm-calm" not in results:
        return []
    w = (results.get("storm") or results["storm-calm"])["workload"]
    params = w["params"]
    md = ["## Storm — cached flows with and without a flood of new flows", "",
          "Every other packet belongs to one of %d cached flows (to p1); the packets between them (to p2) are "
          "each a new flow in `storm` (%d in the pcap, each needing its own megaflow) and %d repeating flows in "
          "`storm-calm`. Both systems run with a flow limit of %d megaflows (flowpath `--flow-limit`, OVS "
          "`other_config:flow-limit`), below the flood, so the flood misses on every pass. *Cached Mpps* = "
          "p1's tx rate; flowpath's target: at least 80%% of its calm rate under the flood." % (
              params["cached"], params["packets"] // 2, params["cached"], params["flow_limit"]), "",
          "| system | cached flows Mpps, calm | cached flows Mpps, flood | flood / calm | flood packets forwarded "
          "Mpps (p2) | processed Mpps (flood) | misses/s (flood) | upcall queue drops/s |",
          "|---|---|---|---|---|---|---|---|"]
    not_a_storm = False
    for system, label in LIVE_SYSTEMS:
        calm, flood, ratio = _storm_ratio(results, system)
        entry = results.get("storm", {}).get("systems", {}).get(system) or {}
        summary = entry.get("summary", {})
        status = _status_cell(entry) or _status_cell(results.get("storm-calm", {}).get("systems", {}).get(system))
        misses = summary.get("upcalls_per_s")
        mark = ""
        if flood and misses is not None and misses["max"] == 0:
            mark, not_a_storm = " §", True
        md.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, status or _spread_mpps(calm), (status or _spread_mpps(flood)) + mark,
            "%.0f%%" % (100 * ratio) if ratio is not None else "–", _spread_mpps(summary.get("tx_p2_pps")),
            _spread_mpps(summary.get("rx_pps")), _spread_k(misses),
            _spread_k(summary.get("queue_drops_per_s")) if system == "flowpath" else "n/a"))
    if not_a_storm:
        md += ["", "§ no miss at all during the flood windows: the flood's flows were cached (the flow limit "
               "did not hold them back), so this measured hits, not a storm."]
    for name in ("storm-calm", "storm"):
        for system, label in LIVE_SYSTEMS:
            entry = results.get(name, {}).get("systems", {}).get(system) or {}
            if entry.get("message"):
                md.append("- %s %s: **%s** — `%s`" % (name, label, entry.get("status"), entry["message"]))
    return md + [""]


def _rulechange_section(results):
    names = sorted((r["x"], n) for n, r in results.items() if r["group"] == "rulechange")
    if not names:
        return []
    md = ["## Rule-change latency", "",
          "With one megaflow per flow installed, `add-flow` of a rule redirecting a marker flow (every 16th "
          "packet) to p2 (`flowpath-ctl add-flow` / `ovs-ofctl add-flow`); *latency* = from starting the "
          "command until p2's tx counter moves (sampled every ~1 ms), *command* = until the command returned. "
          "`narrow` matches the marker's dl_src (one megaflow affected), `broad` its nw_dst (every megaflow "
          "may be affected: all must be revalidated). flowpath-ctl returns once every worker forwards by the "
          "new rule: *at return* counts the repetitions in which p2 was already moving at the first read "
          "after the return. Median (min–max) in ms. flowpath's target: at most 50 ms at 100,000 megaflows.",
          "", "| megaflows (target) | change | system | megaflows installed | latency ms | command ms | at return |",
          "|---|---|---|---|---|---|---|"]
    for x, name in names:
        for system, label in LIVE_SYSTEMS:
            entry = results[name]["systems"].get(system)
            if not entry:
                continue
            if entry.get("status", "ok") != "ok" and not entry.get("summary"):
                md.append("| %s | – | %s | %s | %s | | |" % ("{:,}".format(x), label, "{:,}".format(entry["megaflows"]) if entry.get("megaflows") else "–",
                                                          entry.get("status")))
                continue
            for change, s in sorted(entry.get("summary", {}).items()):
                md.append("| %s | %s | %s | %s | %s | %s | %d of %d |" % (
                    "{:,}".format(x), change, label, "{:,}".format(entry.get("megaflows") or 0),
                    _ms(s["latency_s"]), _ms(s["command_s"]), s["moving_at_return"], s["latency_s"]["n"]))
    for x, name in names:
        for system, label in LIVE_SYSTEMS:
            entry = results[name]["systems"].get(system) or {}
            if entry.get("message"):
                md.append("- %s, %s: **%s** — `%s`" % (name, label, entry.get("status"), entry["message"]))
    return md + [""]


_LOAD_STATUS = {"load_seconds": "start_status", "add_flows_seconds": "add_flows_status"}


def _load_value(entry, key):
    """A rule-load time in seconds, or None when it was not measured."""
    if entry.get("status", "ok") != "ok" or entry.get(_LOAD_STATUS[key]):
        return None
    return entry.get(key)


def _load_cell(entry, key):
    if not entry:
        return "not run"
    value = _load_value(entry, key)
    if value is not None:
        return _seconds(value)
    status = entry.get(_LOAD_STATUS[key]) if entry.get("status", "ok") == "ok" else entry["status"]
    return status or "–"


def _ruleload_section(results):
    result = results.get("ruleload")
    if not result:
        return []
    n = result["workload"]["params"]["rules"]
    md = ["## Rule load — %s rules over as many distinct masks" % "{:,}".format(n), "",
          "*At start*: flowpath, time from exec to its control socket with the rule file minus the same with "
          "a one-rule file; OVS, `ovs-ofctl add-flows` into the bridge before the pcap port. *Into a running "
          "datapath*: `flowpath-ctl add-flows` / `ovs-ofctl add-flows` while 64 flows of traffic run. Rules "
          "counted back afterwards (dump-flows / dump-aggregate). flowpath's target: at most 2 s each.", "",
          "| system | at start | rules counted | into a running datapath | rules counted | traffic during |",
          "|---|---|---|---|---|---|"]
    notes = []
    for system, label in LIVE_SYSTEMS:
        e = result["systems"].get(system)
        if not e:
            continue
        start, add = _load_cell(e, "load_seconds"), _load_cell(e, "add_flows_seconds")
        md.append("| %s | %s | %s | %s | %s | %s |" % (
            label, start, e.get("start_rules", "–"), add, e.get("add_flows_rules", "–"),
            {True: "yes", False: "**no**"}.get(e.get("traffic_during_add"), "–")))
        for key, what in (("message", ""), ("start_message", "at start: "),
                          ("add_flows_message", "into a running datapath: ")):
            if e.get(key):
                notes.append("- %s: %s`%s`" % (label, what, e[key].replace("`", "'")))
    return md + [""] + notes + [""]


def _flowmods_section(results):
    """Issue 12: flow_mods per second through OpenFlow, beside Open vSwitch's."""
    result = results.get("flowmods")
    if not result:
        return []
    systems = result["systems"]
    md = ["## OpenFlow flow_mods — `ovs-ofctl -O OpenFlow13 add-flows` of %s rules over TCP" %
          "{:,}".format(result["x"]), "",
          "bench/openflow_flow_mods.py: Open vSwitch (ovs-vswitchd, dummy ports, ptcp controller port) and the "
          "flowpath binary (`--openflow-listen`, four net_null ports without traffic); rounds alternate; time "
          "from the command's start to its end (it waits for a barrier reply after each flow_mod). Switch CPU: "
          "ovs-vswitchd's, flowpath's without its busy-polling worker. Load average %.1f before, %.1f after. "
          "The null switch (bench/null_openflow_switch, on the CPUs of flowpath's agent) answers what ovs-ofctl "
          "waits for and drops the flow_mods: its time is the floor any switch pays here, a switch's own share "
          "is its time above it. "
          "flowpath's target: at least 2x Open vSwitch's flow_mods per second." % (
              result.get("loadavg_before", 0), result.get("loadavg_after", 0)), ""]
    if "error" in systems:
        return md + ["not measured: `%s`" % systems["error"].replace("`", "'"), ""]
    md += ["| system | add-flows (median) | flow_mods/s | rounds | switch CPU | dump-flows |", "|---|---|---|---|---|---|"]
    for name, r in systems.items():
        md.append("| %s | %.2f s | %s | %s | %.2f s | %.2f s |" % (
            name, r["add_seconds"], "{:,.0f}".format(r["flow_mods_per_second"]),
            ", ".join("%.2f" % x for x in r["add_rounds"]), r["cpu_seconds"], r["dump_seconds"]))
    fp, ovs = systems.get("flowpath"), systems.get("Open vSwitch")
    if fp and ovs:
        ratio = fp["flow_mods_per_second"] / ovs["flow_mods_per_second"]
        md += ["", "flowpath / Open vSwitch: **%.2fx** flow_mods per second (%s)" % (
            ratio, "met" if ratio >= 2 else "not met")]
        floor = systems.get("null switch")
        if floor:
            md += ["", "Above the null switch's %.2f s: Open vSwitch %.2f s, flowpath %.2f s; the null switch "
                   "itself is %.2fx Open vSwitch (the most any switch could reach here)" % (
                       floor["add_seconds"], ovs["add_seconds"] - floor["add_seconds"],
                       fp["add_seconds"] - floor["add_seconds"], ovs["add_seconds"] / floor["add_seconds"])]
    return md + [""]


def _targets_section(results):
    """Issue 8's 'done when' figures in one place, OVS beside flowpath."""
    rows = []
    upcall = results.get("upcall", {}).get("systems", {})
    fp = (upcall.get("flowpath") or {}).get("summary", {})
    ovs = (upcall.get("ovs") or {}).get("summary", {})
    if fp.get("installs_per_s_first_pass") or ovs.get("setups_per_s"):
        mine = fp.get("installs_per_s_first_pass")
        theirs = ovs.get("setups_per_s")
        ratio = mine["median"] / theirs["median"] if mine and theirs and theirs["median"] else None
        rows.append(("upcall: flowpath's new flows installed/s (slow path on core 0, worker on core 1) "
                     "vs OVS's misses handled/s", "≥ 10×", "%s vs %s" % (_spread_k(mine), _spread_k(theirs)),
                     "%.1f×" % ratio if ratio else "–"))
    if "storm" in results:
        _, _, r_fp = _storm_ratio(results, "flowpath")
        _, _, r_ovs = _storm_ratio(results, "ovs")
        fp_misses = ((results["storm"]["systems"].get("flowpath") or {}).get("summary", {})
                     .get("upcalls_per_s") or {}).get("max")
        if fp_misses == 0:
            r_fp = None  # no storm happened (see the storm section)
        rows.append(("storm: cached flows' rate under the flood / calm", "≥ 80%",
                     "flowpath %s, OVS %s" % ("%.0f%%" % (100 * r_fp) if r_fp is not None else "–",
                                              "%.0f%%" % (100 * r_ovs) if r_ovs is not None else "–"),
                     "met" if r_fp is not None and r_fp >= 0.8 else "not met" if r_fp is not None else "–"))
    for name in sorted(n for n in results if results[n]["group"] == "rulechange"):
        for change in ("narrow", "broad"):
            cells = {}
            for system in ("flowpath", "ovs"):
                s = ((results[name]["systems"].get(system) or {}).get("summary") or {}).get(change)
                cells[system] = s["latency_s"]["median"] if s else None
            if not any(v is not None for v in cells.values()):
                continue
            fp_ms = cells["flowpath"]
            rows.append(("%s (%s): rule-change latency" % (name, change),
                         "≤ 50 ms" if results[name]["x"] >= 100000 else "(reported)",
                         "flowpath %s ms, OVS %s ms" % tuple("%.1f" % (v * 1e3) if v is not None else "–"
                                                             for v in (fp_ms, cells["ovs"])),
                         ("met" if fp_ms <= 0.05 else "not met") if fp_ms is not None and
                         results[name]["x"] >= 100000 else "–"))
    load = results.get("ruleload", {}).get("systems", {})
    if load:
        for key, what in (("load_seconds", "at start"), ("add_flows_seconds", "add-flows into a running datapath")):
            f, o = load.get("flowpath") or {}, load.get("ovs") or {}
            fv = _load_value(f, key)
            rows.append(("ruleload: %s rules / masks %s" % ("{:,}".format(results["ruleload"]["x"]), what), "≤ 2 s",
                         "flowpath %s, OVS %s" % (_load_cell(f, key), _load_cell(o, key)),
                         ("met" if fv <= 2 else "not met") if fv is not None else "–"))
    if not rows:
        return []
    md = ["## Issue 8 targets", "", "| measurement | target | values | flowpath |", "|---|---|---|---|"]
    md += ["| %s | %s | %s | %s |" % row for row in rows]
    return md + [""]


# ---------------------------------------------------------------------------
# Issue 10: tuple-space explosion, memory per flow, the targets


def _tse_section(results):
    if "tse" not in results and "tse-calm" not in results:
        return []
    w = (results.get("tse") or results["tse-calm"])["workload"]
    attack = results.get("tse", {}).get("workload", {}).get("params", {}).get("attack", 0)
    md = ["## tse — tuple-space explosion: benign flows while crafted packets install masks", "",
          "The megaflow workload's %s benign flows (same ACL, same packets) with %d crafted packets spread evenly "
          "among them in `tse` (none in `tse-calm`): each leaves a /24 source and a /24 destination prefix of the "
          "ACL at another pair of bits, over TCP and UDP, so a datapath with prefix tracking installs a mask per "
          "crafted packet (CVE-2019-25076). The pcap replays at the datapath's own rate, so the crafted stream "
          "runs at the share of packets below (not the paper's 0.7 Mbit/s: a pass of the pcap takes "
          "milliseconds). *Benign Mpps* = processed Mpps × the benign share of the pcap. Target for flowpath: "
          "benign traffic keeps ≥ 80%% of its calm rate." % ("{:,}".format(w["params"]["flows"]), attack), "",
          "| system | benign Mpps, calm | benign Mpps, attack | attack / calm | attack Mpps (Mbit/s at 84 B) "
          "| megaflows / subtables, calm | megaflows / subtables, attack |", "|---|---|---|---|---|---|---|"]
    for system, label in SYSTEMS[1:]:
        calm = results.get("tse-calm", {}).get("systems", {}).get(system) or {}
        hit = results.get("tse", {}).get("systems", {}).get(system) or {}
        cs, hs = calm.get("summary", {}), hit.get("summary", {})
        if not calm and not hit:
            continue
        share = hs.get("benign_share")
        rounds = hit.get("rounds") or []
        attack_pps = sorted(r["attack_pps"] for r in rounds if r.get("attack_pps") is not None)
        attack_cell = "–"
        if attack_pps:
            median = attack_pps[len(attack_pps) // 2]
            attack_cell = "%.3f (%.0f)" % (median / 1e6, median * 84 * 8 / 1e6)
        md.append("| %s | %s | %s | %s | %s | %s / %s | %s / %s |" % (
            label, _status_cell(calm) or _spread_mpps(cs.get("benign_pps")),
            _status_cell(hit) or _spread_mpps(hs.get("benign_pps")),
            "%.0f%%" % (100 * share) if share is not None else "–", attack_cell,
            cs.get("megaflows", "–"), cs.get("subtables", "–"), hs.get("megaflows", "–"), hs.get("subtables", "–")))
    for name in ("tse-calm", "tse"):
        for system, label in SYSTEMS[1:]:
            entry = results.get(name, {}).get("systems", {}).get(system) or {}
            if entry.get("message"):
                md.append("- %s %s: **%s** — `%s`" % (name, label, entry.get("status"), entry["message"]))
            if entry.get("summary", {}).get("widened"):
                md.append("- %s %s: %d megaflows widened by the mask limit" % (
                    name, label, entry["summary"]["widened"]))
    return md + [""]


def _flows_memory_section(results):
    points = sorted((r["x"], n) for n, r in results.items() if r["group"] == "flows")
    rows = []
    for x, name in points:
        cells = []
        for system in ("ovs", "ovs_smc", "flowpath"):
            s = (results[name]["systems"].get(system) or {}).get("summary", {})
            memory = s.get("flows_memory", {})
            rss = s.get("rss_kib")
            cell = "%.0f MiB" % (rss / 1024) if rss else "–"
            if "rss_delta_bytes_per_flow" in memory:
                cell += ", %.0f B/flow" % memory["rss_delta_bytes_per_flow"]
            cells.append(cell)
        fp = (results[name]["systems"].get("flowpath") or {}).get("summary", {})
        per_flow = fp.get("flows_memory", {}).get("cache_bytes_per_flow")
        cells.append("%.1f MiB, %.0f B/flow" % (fp["cache_bytes"] / 2**20, per_flow) if per_flow else "–")
        rows.append("| %s | %s |" % ("{:,}".format(x), " | ".join(cells)))
    if not rows:
        return []
    return ["## Memory per flow (flows sweep)", "",
            "RSS at the end of the last window; *B/flow* = (RSS − RSS at the smallest point) / (flows − its "
            "flows), only between points whose mbuf pool is the same size (262,144 mbufs up to ~245k packets; "
            "the 1M point's pool is larger, so only flowpath's own accounting applies there). flowpath's caches = "
            "stats `cache.bytes` (exact cache, signature cache, megaflows with their index and actions) / flows.",
            "", "| flows | OVS-DPDK RSS | OVS-DPDK +SMC RSS | flowpath RSS | flowpath caches |",
            "|---|---|---|---|---|"] + rows + [""]


def _issue10_targets(results):
    """Issue 10's 'done when' figures, the measured ratios beside them."""
    def median(name, system, key="rx_pps"):
        s = ((results.get(name, {}).get("systems", {}).get(system) or {}).get("summary") or {}).get(key)
        return s["median"] if s else None

    def ratio_row(what, name, other, target):
        mine, theirs = median(name, "flowpath"), median(name, other)
        if mine is None or theirs is None:
            return None
        value = mine / theirs
        return (what, "≥ %g×" % target if target >= 1 else "≥ %.0f%%" % (100 * target),
                "%.2f×" % value if target >= 1 else "%.0f%%" % (100 * value),
                "met" if value >= target else "not met")

    rows = [ratio_row("emc: flowpath / OVS", "emc", "ovs", 2), ratio_row("emc: flowpath / testpmd io", "emc", "testpmd", 0.7),
            ratio_row("megaflow: flowpath / OVS", "megaflow", "ovs", 5),
            ratio_row("megaflow: flowpath / OVS +SMC", "megaflow", "ovs_smc", 3),
            ratio_row("tss: flowpath / OVS", "tss", "ovs", 20)]
    tss, mega = median("tss", "flowpath"), median("megaflow", "flowpath")
    if tss and mega:
        rows.append(("tss: flowpath / its own megaflow rate", "≥ 50%", "%.0f%%" % (100 * tss / mega),
                     "met" if tss >= 0.5 * mega else "not met"))
    tse = results.get("tse", {}).get("systems", {})
    share = ((tse.get("flowpath") or {}).get("summary") or {}).get("benign_share")
    if share is not None:
        others = ", ".join("%s %.0f%%" % (label, 100 * s) for system, label in (("ovs", "OVS"), ("ovs_smc", "OVS +SMC"))
                           for s in [((tse.get(system) or {}).get("summary") or {}).get("benign_share")] if s is not None)
        rows.append(("tse: benign rate under attack / calm", "≥ 80%", "%.0f%% (%s)" % (100 * share, others or "–"),
                     "met" if share >= 0.8 else "not met"))
    million = (results.get("flows-1000000", {}).get("systems", {}).get("flowpath") or {}).get("summary", {})
    if million.get("rx_pps"):
        per_flow = million.get("flows_memory", {}).get("cache_bytes_per_flow")
        rows.append(("flows-1000000: 1M flows run, memory per flow stated", "runs",
                     "%s Mpps, caches %s B/flow" % (_mpps(million["rx_pps"]["median"]),
                                                    "%.0f" % per_flow if per_flow else "?"), "met"))
    rows = [r for r in rows if r]
    if not rows:
        return []
    md = ["## Issue 10 targets", "", "| measurement | target | value | flowpath |", "|---|---|---|---|"]
    return md + ["| %s | %s | %s | %s |" % row for row in rows] + [""]


def write(out_dir, data):
    meta, results = data["meta"], data["results"]
    plots = make_plots(out_dir, results)
    workload_names = [n for n, r in results.items() if r["group"] == "workload"]
    md = ["# flowpath benchmark — %s (%s mode)" % (meta["date"], meta["mode"]), ""]
    md.append("flowpath `%s`%s vs Open vSwitch %s (DPDK %s) vs `dpdk-testpmd` io forwarding. "
              "One worker on lcore 1, main thread on lcore 0, `net_pcap` rx (infinite_rx) → `net_null` tx, "
              "64-byte frames. %d rounds per workload%s (%d per sweep point), systems alternating "
              "round by round; %.1f s warm-up, %.1f s window. CPU: %s, %d cores, kernel %s. "
              "Load average %.2f at start, %.2f at end. Wall time %.0f s." % (
                  meta.get("flowpath_commit"), " (with uncommitted changes)" if meta.get("flowpath_dirty") else "",
                  (meta.get("ovs") or ["?"])[0].split()[-1] if meta.get("ovs") else "?", meta.get("dpdk"),
                  meta["rounds"], (", spread over %d passes through the workloads" % meta["passes"]
                                   if meta.get("passes", 1) > 1 else ""), meta["sweep_rounds"], meta["warmup_s"], meta["window_s"], meta["cpu"],
                  meta["cores"], meta["kernel"], meta["loadavg_start"], meta.get("loadavg_end", 0),
                  meta.get("wall_seconds", 0)))
    md.append("")
    md.append("flowpath binary: `%s`." % meta.get("flowpath_binary"))
    md.append("")
    md += _versions_section(meta.get("versions"))
    if meta.get("loadavg_start", 0) > 1.0:
        md.append("**Load average %.2f at start: other work shared the two cores; expect noise.**"
                  % meta["loadavg_start"])
        md.append("")
    md.append("Cells are median (min–max) over rounds. *Processed* = packets taken from p0 per second "
              "(the rate the worker sustains: the pcap never runs dry); *forwarded* = packets sent on p1. "
              "A forwarded share that differs between OVS and flowpath means they did not apply the "
              "rules alike. See bench/README.md for how to read this and for the caveats of this machine.")
    md.append("")
    if workload_names:
        md += ["## Summary", ""] + _summary_table(results, workload_names) + [""]
        md += [line for note in FOOTNOTES if note[0] in "\n".join(md) for line in (note, "")]
        if "workloads.png" in plots:
            md += ["![throughput per workload](workloads.png)", ""]
    md += _targets_section(results)
    md += _issue10_targets(results)
    md += _conntrack_targets_section(results)
    for name in workload_names:
        result = results[name]
        w = result["workload"]
        md += ["## %s — %s" % (name, w["description"]), "",
               "%d packets in the pcap, %d %s; rules `%s`, load average before %s." % (
                   w["packets"], w["flows"], "connections" if w["kind"] == "conntrack" else "flows",
                   w["rules"], ", ".join("%.2f" % v for v in result.get("loadavg_passes")
                                         or [result.get("loadavg_before", 0)])), ""]
        md += _detail_table(result) + [""]
        if w["kind"] in ("conntrack", "ct_new"):
            md += _connection_memory_note(data.get("micro")) + [""]
    for group, label, plot in (("flows", "flows", "sweep_flows.png"), ("masks", "masks (prefix pairs)",
                                                                       "sweep_masks.png")):
        table = _sweep_table(results, group, label)
        if table:
            title = ("pps vs number of flows (megaflow ACL)" if group == "flows"
                     else "pps vs number of masks (tss rules, %s flows)" % "{:,}".format(
                         next(r for r in results.values() if r["group"] == "masks")["workload"]["flows"]))
            md += ["## Sweep: %s" % title, ""] + table + [""]
            md += [line for note in FOOTNOTES if note[0] in "\n".join(table) for line in (note, "")]
            if plot in plots:
                md += ["![%s](%s)" % (title, plot), ""]
    md += _flows_memory_section(results) + _tse_section(results)
    table = _conns_sweep_table(results)
    if table:
        md += ["## Sweep: rate and memory vs number of connections (conntrack)", ""] + table + [""]
        md += [line for note in FOOTNOTES if note[0] in "\n".join(table) for line in (note, "")]
        if "sweep_conns.png" in plots:
            md += ["![rate and memory vs connections](sweep_conns.png)", ""]
    md += _storm_section(results) + _rulechange_section(results)
    md += _ruleload_section(results)
    md += _flowmods_section(results)
    md += _reproducibility_section(data.get("reproducibility"))
    md += ["## Micro-benchmarks", ""] + _micro_section(data.get("micro")) + [""]
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(md))


# --------------------------------------------------------------------------
# Plots


def make_plots(out_dir, results):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    names = [n for n, r in results.items() if r["group"] == "workload"]
    if names:
        _workload_plot(plt, out_dir, results, names)
        made.append("workloads.png")
    for group, xlabel, filename, title in (
            ("flows", "distinct flows (5-tuples) in the pcap", "sweep_flows.png",
             "Throughput vs number of flows (megaflow ACL, 64-byte frames)"),
            ("masks", "distinct prefix-length pairs in the rules (masks)", "sweep_masks.png",
             "Throughput vs number of masks (tuple-space rules, 64-byte frames)")):
        if any(r["group"] == group for r in results.values()):
            _sweep_plot(plt, out_dir, results, group, xlabel, filename, title)
            made.append(filename)
    if any(r["group"] == "conns" for r in results.values()):
        _conns_plot(plt, out_dir, results)
        made.append("sweep_conns.png")
    return made


def _conns_plot(plt, out_dir, results):
    """Rate and bytes per connection against the number of connections."""
    points = sorted((r["x"], name) for name, r in results.items() if r["group"] == "conns")
    fig, (rate_ax, mem_ax) = plt.subplots(1, 2, figsize=(12, 4.8))
    for system, label in SYSTEMS[1:]:
        xs, ys, mx, my = [], [], [], []
        for x, name in points:
            s = results[name]["systems"].get(system, {}).get("summary", {})
            if s.get("rx_pps"):
                xs.append(x)
                ys.append(s["rx_pps"]["median"] / 1e6)
            per = s.get("memory", {}).get("per_connection", {}).get("bytes")
            if per:
                mx.append(x)
                my.append(per)
        if xs:
            rate_ax.plot(xs, ys, marker="o", color=COLORS[system], label=label)
        if mx:
            mem_ax.plot(mx, my, marker="o", color=COLORS[system], label=label)
    for ax, ylabel in ((rate_ax, "processed packets (Mpps)"), (mem_ax, "bytes per connection (RSS)")):
        ax.set_xscale("log")
        ax.set_xticks([x for x, _n in points])
        ax.set_xticklabels(["{:,}".format(x) for x, _n in points])
        ax.minorticks_off()
        ax.set_xlabel("tracked connections")
        ax.set_ylabel(ylabel)
        ax.grid(which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    rate_ax.set_title("conntrack rate vs connections", fontsize=10)
    mem_ax.set_title("memory per connection vs connections", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "sweep_conns.png"), dpi=110)
    plt.close(fig)


def _workload_plot(plt, out_dir, results, names):
    steady = names
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [3.2, 1]})
    ax = axes[0]
    width = 0.8 / len(SYSTEMS)
    for i, (system, label) in enumerate(SYSTEMS):
        for j, name in enumerate(steady):
            entry = results[name]["systems"].get(system, {})
            spread = entry.get("summary", {}).get("rx_pps")
            x = j + (i - (len(SYSTEMS) - 1) / 2) * width
            if not spread:
                # x in data units, y in axes units: stays inside whatever the y range is.
                ax.text(x, 0.02, entry.get("status", "not run"), rotation=90, transform=ax.get_xaxis_transform(),
                        ha="center", va="bottom", fontsize=8, color=COLORS[system])
                continue
            hatch = "//" if _flags(system, results[name]["systems"]).strip() else None
            ax.bar(x, spread["median"] / 1e6, width, color=COLORS[system], hatch=hatch, edgecolor="white",
                   label=label if j == next((k for k, n in enumerate(steady)
                                             if results[n]["systems"].get(system, {}).get("summary", {})
                                             .get("rx_pps")), -1) else None,
                   yerr=[[(spread["median"] - spread["min"]) / 1e6], [(spread["max"] - spread["median"]) / 1e6]],
                   capsize=2, ecolor="#444")
            ax.text(x, spread["max"] / 1e6 * 1.08, "%.2f" % (spread["median"] / 1e6), ha="center",
                    va="bottom", fontsize=7, rotation=90)
    ax.set_yscale("log")
    lows = [results[n]["systems"].get(s, {}).get("summary", {}).get("rx_pps", {}).get("min")
            for n in steady for s, _l in SYSTEMS]
    lows = [v / 1e6 for v in lows if v]
    ax.set_ylim(min(lows + [1.0]) / 4, 300)
    ax.set_xticks(range(len(steady)))
    ax.set_xticklabels([n + (" (after 1st pass)" if results[n]["workload"]["kind"] == "upcall" else "")
                        for n in steady], fontsize=9)
    ax.set_ylabel("processed packets (Mpps, log scale)")
    hatched = any(_flags("flowpath", results[n]["systems"]).strip() for n in steady)
    ax.set_title("Throughput per workload, one worker core (median, whiskers = min–max)"
                 + ("\nhatched: flowpath did not classify or forwarded a different share than OVS"
                    if hatched else ""), fontsize=10)
    ax.grid(axis="y", which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=9)

    ax = axes[1]
    upcall = next((n for n in names if results[n]["workload"]["kind"] == "upcall"), None)
    ax.set_title("Flow setups (upcall workload)")
    ax.set_ylabel("misses handled per second, first pass (thousands)")
    if upcall:
        for i, (system, label) in enumerate(LIVE_SYSTEMS):
            entry = results[upcall]["systems"].get(system, {})
            spread = entry.get("summary", {}).get("setups_per_s")
            if not spread:
                status = entry.get("status", "not run")
                ax.text(i, 0, "n/a:\nno slow-path\ncounters" if status == "ok" else status.replace(" ", "\n"),
                        ha="center", va="bottom", fontsize=8, color=COLORS[system])
                continue
            ax.bar(i, spread["median"] / 1e3, 0.6, color=COLORS[system],
                   yerr=[[(spread["median"] - spread["min"]) / 1e3], [(spread["max"] - spread["median"]) / 1e3]],
                   capsize=3, ecolor="#444")
            ax.text(i, spread["max"] / 1e3 * 1.02, "%.0fk" % (spread["median"] / 1e3), ha="center",
                    va="bottom", fontsize=8)
        ax.set_xticks([0, 1])
        ax.set_xticklabels([label for _s, label in LIVE_SYSTEMS])
        ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "workloads.png"), dpi=110)
    plt.close(fig)


def _sweep_plot(plt, out_dir, results, group, xlabel, filename, title):
    points = sorted((r["x"], name) for name, r in results.items() if r["group"] == group)
    fig, ax = plt.subplots(figsize=(8, 5))
    for system, label in SYSTEMS:
        xs, ys, lo, hi = [], [], [], []
        for x, name in points:
            spread = results[name]["systems"].get(system, {}).get("summary", {}).get("rx_pps")
            if spread:
                xs.append(x)
                ys.append(spread["median"] / 1e6)
                lo.append((spread["median"] - spread["min"]) / 1e6)
                hi.append((spread["max"] - spread["median"]) / 1e6)
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, color=COLORS[system], label=label)
            for x, y in zip(xs, ys):
                ax.annotate("%.2f" % y, (x, y), textcoords="offset points", ha="center",
                            xytext=(0, -13 if system == "flowpath" else 6), fontsize=7, color=COLORS[system])
    ax.set_xscale("log", base=2 if group == "masks" else 10)
    ax.set_xticks([x for x, _n in points])
    ax.set_xticklabels(["{:,}".format(x) for x, _n in points])
    ax.minorticks_off()
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("processed packets (Mpps, log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, filename), dpi=110)
    plt.close(fig)
