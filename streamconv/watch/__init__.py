"""`streamconv watch`: the drop-folder daemon (a package split by responsibility).

config    the configuration file and command line vocabulary (WatchConfig, InboxConfig)
jobs      what the daemon hands a worker (Job, Mode) and gets back (Result, ErrorInfo)
worker    the worker side: check, claim, convert one input (process_batch)
outputs   an input's outputs: names, writes by threads through sinks.write_atomic
outcome   done/, failed/ and its records, or claimed for a retry
claims    claim folders, their locks, recovery of dead daemons' inputs and temporaries
intake    the scheduler: which input next, and how (clock passed in)
events    the watchfiles watch, its probe, the scans
status    the log line per input, the systemd status, the metrics text
metrics   the counters and the Prometheus text file
daemon    the lifecycle: start-up, dispatch, results, pauses, reload, drain (serve)
command   the command line (main)
"""

from __future__ import annotations

from .command import main

__all__ = ["main"]
