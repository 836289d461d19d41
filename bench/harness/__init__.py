"""The resolution benchmark's parts (``bench/resolution.py`` runs them; ``make bench``).

* :mod:`harness.histogram`: latency histogram in logarithmic buckets (bounded memory).
* :mod:`harness.loadgen`: the UDP/TCP load generator for the Handle protocol and DNS.
* :mod:`harness.procs`: child processes, free ports, CPU time and memory from ``/proc``.
* :mod:`harness.datasets`: the identifiers as idnode databases, a Knot zone and JSON files.
* :mod:`harness.servers`: idnode, Knot DNS and nginx as child processes on 127.0.0.1.
* :mod:`harness.external`: ``wrk`` (with a Lua script) and ``dnsperf`` runs.
* :mod:`harness.report`: the tables, the targets, the machine and ``docs/performance.md``.

Nothing here fails on a figure: the benchmark prints what it measured.
"""
