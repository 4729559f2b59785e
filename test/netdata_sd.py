"""Checks the go.d service-discovery file for netdata 2.x (netdata is 1.x
on Debian 12, so its go.d cannot be run here): it is the YAML go.d reads,
it classifies trakx's stats listener and not its tracker port, and the job
it composes is a prometheus job reading /metrics at the listener's
address. Usage: netdata_sd.py netdata/go.d/sd/trakx.conf"""
import re
import sys

import yaml


def render(template, fields):
    """Evaluates the few Go template forms the file uses, for one listener."""
    def expr(m):
        return str(fields[m.group(1)])
    return re.sub(r"\{\{\s*\.(\w+)\s*\}\}", expr, template)


def classify(expr, fields):
    """Evaluates the match expression: an and of eq/ne tests on fields."""
    inner = expr.strip()
    assert inner.startswith("{{ and ") and inner.endswith(" }}"), inner
    for op, field, value in re.findall(r'\((eq|ne) \.(\w+) "([^"]*)"\)', inner):
        if (fields[field] == value) != (op == "eq"):
            return False
    return True


conf = yaml.safe_load(open(sys.argv[1]))
assert conf["disabled"] is False or conf["disabled"] == "no", conf["disabled"]
assert conf["discover"][0]["discoverer"] == "net_listeners"
match = conf["classify"][0]["match"][0]
job_template = conf["compose"][0]["config"][0]["template"]

stats = {"Protocol": "TCP", "Comm": "trakx", "Port": "6880", "IPAddress": "127.0.0.1", "Address": "127.0.0.1:6880"}
tracker = dict(stats, Port="6969", IPAddress="::", Address="[::]:6969")
other = dict(stats, Comm="nginx", Port="80", Address="127.0.0.1:80")
assert classify(match["expr"], stats), "the stats listener is not matched"
assert not classify(match["expr"], tracker), "the tracker port is matched"
assert not classify(match["expr"], other), "another program is matched"

job = yaml.safe_load(render(job_template, stats))
assert job == {"module": "prometheus", "name": "trakx_6880", "url": "http://127.0.0.1:6880/metrics"}, job
print("go.d discovery: trakx's stats listener becomes", job)
