"""Rule changes under traffic, for flowpath and Open vSwitch-DPDK (issue 8).

Two measurements, each system run alone (one worker on lcore 1):

- Rule-change latency (workload `rulechange`): with the workload's
  megaflows installed (one per flow), a rule redirecting the marker flow
  to p2 is added (`flowpath-ctl add-flow` / `ovs-ofctl add-flow`); the
  latency is the time from starting the command until p2's tx counter moves,
  sampled every ~1 ms over a kept-open control connection. The command's own
  duration is reported beside it: flowpath-ctl returns only once every worker
  forwards by the new rules, which the first sample after its return checks
  (p2 already moving). `narrow` redirects by dl_src (one megaflow affected),
  `broad` by nw_dst (every megaflow may be affected). Each repetition removes
  the rule again (del-flows) and waits until p2 is still and the megaflows
  are back before the next.
- Rule load (workload `ruleload`): 100,000 rules over as many distinct
  masks, loaded at start (flowpath: time from exec to the control socket,
  minus the same with a one-rule file; OVS: `ovs-ofctl add-flows` before the
  ports carry traffic) and added to a running datapath with traffic flowing
  (`flowpath-ctl add-flows` / `ovs-ofctl add-flows`), then counted back
  (dump-flows / dump-aggregate).

Processes are only stopped by the pids the benchmark started (runners.py).
"""

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time

import runners

# ovs-vswitchd's unixctl JSON-RPC over one kept-open connection: the
# differential test's client (tests/diff/ovs_oracle.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "diff"))
from ovs_oracle import Unixctl  # noqa: E402


class FlowpathCtl:
    """flowpath's control protocol spoken directly (one connection per
    request, as flowpath-ctl does), without a process per sample."""

    def __init__(self, path):
        self.path = path

    def request(self, command, body="", timeout=30):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.path)
            s.sendall((command + "\n" + body).encode())
            s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        status, _, text = data.decode(errors="replace").partition("\n")
        return status == "OK", text

    def stats(self):
        ok, text = self.request("stats-json")
        if not ok:
            raise RuntimeError("flowpath stats-json: %s" % text.strip())
        return json.loads(text)


class Probe:
    """Fast reads of one system: p2's tx counter and its megaflow count."""

    def __init__(self, system):
        self.system = system
        if system.name == "flowpath":
            self.ctl = FlowpathCtl(system.socket)
        else:
            self.ctl = Unixctl("%s/ovs-vswitchd.ctl" % system.dir)

    def p2_tx(self):
        if self.system.name == "flowpath":
            ports = self.ctl.stats()["ports"]
            return next(p["tx_packets"] for p in ports if p["name"] == "p2")
        text = self.ctl.call("dpctl/show", "-s")
        m = re.search(r"port \d+: p2 \([^)]*\)\s*\n\s*RX packets:\d+[^\n]*\n\s*TX packets:(\d+)", text)
        if not m:
            raise RuntimeError("OVS: no p2 counters in dpctl/show -s")
        return int(m.group(1))

    def megaflows(self):
        if self.system.name == "flowpath":
            return self.ctl.stats()["cache"]["entries"]
        m = re.search(r"flows\s*:\s*\(current (\d+)\)", self.ctl.call("upcall/show"))
        return int(m.group(1)) if m else 0

    def close(self):
        if self.system.name != "flowpath":
            self.ctl.close()


def _built(name, config, entry):
    """False (and the entry says why) when flowpath's binary is missing."""
    if name == "flowpath" and not os.path.exists(config.flowpath):
        entry.update(status="not built", message="%s does not exist" % config.flowpath)
        return False
    return True


def _command(system, config, verb, *args):
    """The argv of a rule command for `system` (port names as it needs them)."""
    if system.name == "flowpath":
        return [config.flowpath_ctl, "--socket", system.socket, verb] + list(args)
    args = [runners.Ovs.numbered_ports(a) for a in args]
    return ["ovs-ofctl", "-O", "OpenFlow13", verb, "br0"] + args


def _env(system):
    return system._env() if system.name == "ovs" else None


def wait_megaflows(probe, target, timeout):
    """Waits until the megaflow count reaches 98% of `target`, stops growing
    for 10 s, or `timeout` passes; returns the count."""
    deadline = time.monotonic() + timeout
    best, best_at = 0, time.monotonic()
    while time.monotonic() < deadline:
        count = probe.megaflows()
        if count >= 0.98 * target:
            return count
        if count > best:
            best, best_at = count, time.monotonic()
        elif time.monotonic() - best_at > 10:
            return count
        time.sleep(0.25)
    return probe.megaflows()


def wait_p2_still(probe, timeout=10.0):
    """Waits until p2's counter holds for 100 ms; returns it."""
    deadline = time.monotonic() + timeout
    last = probe.p2_tx()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = probe.p2_tx()
        if now == last:
            return now
        last = now
    raise RuntimeError("p2 keeps moving without the redirect rule")


def one_change(system, probe, config, change):
    """Adds the redirect, measures, removes it; returns the measurement."""
    base = wait_p2_still(probe)
    t0 = time.monotonic()
    proc = subprocess.Popen(_command(system, config, "add-flow", change["add"]), env=_env(system),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = returned = None
    moving_at_return = None
    deadline = t0 + 60
    while seen is None or returned is None:
        if returned is None and proc.poll() is not None:
            returned = time.monotonic()
            if proc.returncode != 0:
                raise runners.StartFailure("unsupported", "add-flow: %s" % proc.stderr.read().strip()[:300])
            # The first read after the command returned: flowpath promises
            # every worker forwards by the new rule by now.
            moving_at_return = probe.p2_tx() > base
            if moving_at_return and seen is None:
                seen = time.monotonic()
        if seen is None and probe.p2_tx() > base:
            seen = time.monotonic()
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("p2 did not move within 60 s of add-flow")
        time.sleep(0.0005)
    result = {"latency_s": seen - t0, "command_s": returned - t0, "moving_at_return": moving_at_return,
              "megaflows_before": None}
    undo = subprocess.run(_command(system, config, "del-flows", change["del"]), env=_env(system),
                          capture_output=True, text=True, timeout=60)
    if undo.returncode != 0:
        raise RuntimeError("del-flows: %s" % undo.stderr.strip()[:300])
    wait_p2_still(probe, timeout=30)
    return result


def run_rule_change(workload, config, log):
    """{system: {"status", "megaflows", "changes": {name: [measurements]}}}."""
    results = {}
    for name in ("ovs", "flowpath"):
        if name not in config.systems:
            continue
        entry = results.setdefault(name, {"status": "ok", "changes": {}})
        if not _built(name, config, entry):
            continue
        system = runners.SYSTEMS[name](config)
        probe = None
        try:
            system.start(workload)
            system.resume()
            probe = Probe(system)
            t0 = time.monotonic()
            entry["megaflows"] = wait_megaflows(probe, workload.flows, config.megaflow_wait)
            entry["install_seconds"] = time.monotonic() - t0
            log("    %-8s %d megaflows installed (target %d) after %.1f s" % (
                name, entry["megaflows"], workload.flows, entry["install_seconds"]))
            for change_name, change in workload.meta["changes"].items():
                rounds = entry["changes"].setdefault(change_name, [])
                for _ in range(config.change_reps):
                    before = probe.megaflows()
                    measured = one_change(system, probe, config, change)
                    measured["megaflows_before"] = before
                    rounds.append(measured)
                    log("    %-8s %-6s latency %7.1f ms (command %7.1f ms, %s at return), %d megaflows" % (
                        name, change_name, measured["latency_s"] * 1e3, measured["command_s"] * 1e3,
                        "moving" if measured["moving_at_return"] else "not moving", before))
                    # Back to the workload's megaflows before the next change.
                    wait_megaflows(probe, min(entry["megaflows"], workload.flows), config.megaflow_wait)
        except runners.StartFailure as failure:
            entry.update(status=failure.status, message=failure.message)
            log("    %s: %s: %s" % (name, failure.status, failure.message))
        except Exception as error:  # one system failing must not stop the run
            entry.update(status="failed", message=str(error)[:300])
            log("    %s failed: %s" % (name, error))
        finally:
            if probe:
                probe.close()
            system.stop()
        entry["summary"] = summarize_changes(entry)
    return results


def summarize_changes(entry):
    """Per change: median/min/max of latency and command time."""
    out = {}
    for change_name, rounds in entry.get("changes", {}).items():
        if not rounds:
            continue
        out[change_name] = {key: {"median": statistics.median(r[key] for r in rounds),
                                  "min": min(r[key] for r in rounds), "max": max(r[key] for r in rounds),
                                  "n": len(rounds)} for key in ("latency_s", "command_s")}
        out[change_name]["moving_at_return"] = sum(1 for r in rounds if r["moving_at_return"])
    return out


def _count_rules(system, config):
    if system.name == "flowpath":
        ok, text = FlowpathCtl(system.socket).request("dump-flows", timeout=config.rules_timeout)
        return sum(1 for line in text.splitlines() if "actions=" in line) if ok else None
    text = system.ofctl("dump-aggregate", "br0")
    m = re.search(r"flow_count=(\d+)", text)
    return int(m.group(1)) if m else None


def run_rule_load(workload, config, log):
    """{system: {"status", "start_seconds", "start_base_seconds", "add_flows_seconds", ...}}."""
    base = os.path.join(os.path.dirname(workload.rules), "base.rules")
    with open(base, "w") as f:
        f.write(workload.meta["base_rules"])
    results = {}
    for name in ("ovs", "flowpath"):
        if name not in config.systems:
            continue
        entry = results.setdefault(name, {"status": "ok"})
        if not _built(name, config, entry):
            continue
        # 1. Into a running datapath, traffic flowing.
        system = runners.SYSTEMS[name](config)
        try:
            system.start(workload, rules=base)
            entry["start_base_seconds"] = getattr(system, "ready_seconds", None)
            system.resume()
            time.sleep(1.0)
            rx0 = system.sample()["rx"]
            argv = _command(system, config, "add-flows", workload.rules)
            if name == "ovs":
                numbered = os.path.join(system.dir, "ruleload.of")
                with open(workload.rules) as src, open(numbered, "w") as dst:
                    dst.write(runners.Ovs.numbered_ports(src.read()))
                argv[-1] = numbered
            t0 = time.monotonic()
            try:
                done = subprocess.run(argv, env=_env(system), capture_output=True, text=True,
                                      timeout=config.rules_timeout)
                entry["add_flows_seconds"] = time.monotonic() - t0
                if done.returncode != 0:
                    entry.update(add_flows_status="unsupported",
                                 add_flows_message=(done.stderr or done.stdout).strip()[:300])
                else:
                    entry["add_flows_rules"] = _count_rules(system, config)
                    entry["traffic_during_add"] = system.sample()["rx"] > rx0
            except subprocess.TimeoutExpired:
                entry.update(add_flows_status="timeout", add_flows_seconds=None,
                             add_flows_message="more than %d s" % config.rules_timeout)
            log("    %-8s add-flows of %d rules into the running datapath: %s" % (
                name, workload.meta["rules"], "%.2f s" % entry["add_flows_seconds"]
                if entry.get("add_flows_seconds") is not None and "add_flows_status" not in entry
                else "%s (%s)" % (entry.get("add_flows_status"), entry.get("add_flows_message"))))
        except runners.StartFailure as failure:
            entry.update(status=failure.status, message=failure.message)
        except Exception as error:
            entry.update(status="failed", message=str(error)[:300])
        finally:
            system.stop()
        # 2. At start.
        if name == "ovs" and entry.get("add_flows_status") == "timeout":
            # The same classifier work on a quiet bridge: it would time out too.
            entry.update(start_status="timeout", start_message="not tried: add-flows into the running "
                         "datapath took more than %d s" % config.rules_timeout)
            continue
        system = runners.SYSTEMS[name](config)
        try:
            system.start(workload)
            if name == "flowpath":
                entry["start_seconds"] = system.ready_seconds
                if entry.get("start_base_seconds") is not None:
                    entry["load_seconds"] = system.ready_seconds - entry["start_base_seconds"]
            else:
                entry["load_seconds"] = system.rules_load_seconds
            system.resume()
            entry["start_rules"] = _count_rules(system, config)
            log("    %-8s %d rules loaded at start: %.2f s (%s rules counted back)" % (
                name, workload.meta["rules"], entry["load_seconds"], entry["start_rules"]))
        except runners.StartFailure as failure:
            timed_out = "more than" in failure.message or "no socket" in failure.message
            entry.update(start_status="timeout" if timed_out else failure.status, start_message=failure.message)
            log("    %-8s load at start: %s: %s" % (name, entry["start_status"], failure.message))
        except Exception as error:
            entry.update(start_status="failed", start_message=str(error)[:300])
        finally:
            system.stop()
    return results
