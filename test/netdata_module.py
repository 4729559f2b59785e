#!/usr/bin/env python3
"""Runs netdata's python.d "trakx" module against a running trakx, as
netdata's python.d plugin would: load netdata/trakx.chart.py beside
go_expvar.chart.py, configure it from the job in netdata/trakx.conf (with
the url pointed at the tracker under test), check, create the charts and
collect. Every warning raised while trakx's module loads is an error, so
that a deprecated import path (importlib's load_module, gone in Python
3.12) fails now, not on the next Python. (netdata's own framework is not
held to that: on Python 3.11 it warns about distutils itself.)

Usage: python3 test/netdata_module.py STATS_ADDR
Needs netdata's python.d modules (Debian: netdata-plugins-python).
"""
import os
import shutil
import sys
import tempfile
import warnings

import yaml

NETDATA = "/usr/lib/netdata/python.d"
here = os.path.dirname(os.path.abspath(__file__))
stats_addr = sys.argv[1]

sys.path.insert(0, os.path.join(NETDATA, "python_modules"))
work = tempfile.mkdtemp()
try:
    shutil.copy(os.path.join(NETDATA, "go_expvar.chart.py"), work)
    shutil.copy(os.path.join(here, "..", "netdata", "trakx.chart.py"), work)

    import importlib.util

    spec = importlib.util.spec_from_file_location("trakx_chart", os.path.join(work, "trakx.chart.py"))
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec.loader.exec_module(module)

    with open(os.path.join(here, "..", "netdata", "trakx.conf")) as f:
        job = yaml.safe_load(f)["local"]
    job["url"] = "http://%s/debug/vars" % stats_addr
    # What python.d.plugin adds to a job before handing it to a module.
    job.update(job_name="local", override_name=job.pop("name", None), update_every=1,
               priority=60000, autodetection_retry=0, chart_cleanup=10, penalty=True)
    service = module.Service(configuration=job, name="local")
    if not service.check():
        sys.exit("the trakx module found no trakx at " + job["url"])
    service.create()
    data = service.get_data()
    for key in ("udp_announce", "seeders", "torrents"):
        if key not in data:
            sys.exit("collected data lacks %s: %s" % (key, sorted(data)))
    print("netdata trakx module: %d values collected from %s" % (len(data), job["url"]))
finally:
    shutil.rmtree(work)
