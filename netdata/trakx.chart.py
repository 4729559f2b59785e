# -*- coding: utf-8 -*-
# netdata python.d module "trakx": the go_expvar module's collector under a
# name of its own. netdata ships go_expvar disabled and owns its job file;
# a module of trakx's own is enabled by default and reads its job from
# trakx.conf, so installing trakx edits no file the administrator or the
# netdata package owns. Override the job in /etc/netdata/python.d/trakx.conf.

import os
import sys

try:
    import importlib.util

    def _load(name, path):
        # spec_from_file_location and exec_module: load_module is
        # deprecated and gone from Python 3.12.
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
except ImportError:  # Python 2
    from imp import load_source as _load

_go_expvar = _load(
    "pythond_trakx_go_expvar",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "go_expvar.chart.py"),
)


class Service(_go_expvar.Service):
    """go_expvar's collector, configured by trakx.conf."""
