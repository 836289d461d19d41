"""Fuzzing harnesses (``make fuzz``; a bounded run is part of ``make test``): see
:mod:`fuzz.driver`."""
