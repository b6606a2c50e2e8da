"""Wire faults: a catalogue of what real servers got wrong, pure transforms, and a proxy that applies one.

`wirecheck proxy --upstream URL --fault NAME` puts one fault in front of any endpoint; the self-test
(tests/test_selftest.py) runs the suites through it to prove that every catalogued fault is caught.
"""

from .catalogue import Fault, get_fault, load_faults

__all__ = ["Fault", "get_fault", "load_faults"]
