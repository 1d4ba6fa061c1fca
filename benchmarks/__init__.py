"""Savina-style benchmarks of spaceactors, each against its raw-Trio reference in the same run.

Run them with ``python -m benchmarks`` (``--quick``, ``--repeat N``, ``--only NAME``). The targets
are the "Performance budget" of the design note; they are printed as PASS/MISS and never gate
anything: these are measurements on the real clock, not tests.
"""
