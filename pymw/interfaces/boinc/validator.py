#!/usr/bin/env python3
"""PyMW's BOINC validator script: checks and compares `pymw` results for script_validator.

BOINCInterface installs this file as `<project>/bin/pymw_validator`, run by BOINC's
`script_validator --app pymw --init_script pymw_validator --compare_script pymw_validator`.
script_validator passes only its keywords (other tokens are dropped), and a bare name gets
`files` (init) or `files files2` (compare); a PyMW result has one output file, so:

    pymw_validator <output>             is this a PyMW output at all?      (init)
    pymw_validator <output> <output2>   do these two results agree?        (compare)

Exit 0 means valid or agreeing, 1 invalid or different, 3 (VAL_RESULT_TRANSIENT_ERROR)
"cannot tell now, ask again later" (a file it cannot read at the moment).

Outputs come from volunteers, so they are decoded with the worker contract's safe codec
(never unpickled or evaluated), capped at the batch's max_nbytes as the master caps them;
one that does not decode is invalid. The server has neither the program's classes nor,
perhaps, numpy, so the decoding is structural (contract.STRUCTURAL): an Enum member,
dataclass or NamedTuple becomes a neutral Record (its class key and fields; no class is
imported or instantiated), a numpy array or scalar an Array (dtype text, shape, bytes).
Two results agree when their values are equal and of the same types (records: same kind
and class key, equal fields; arrays: same dtype text and shape, equal elements), or, for
failed tasks, their error type and message are; captured stdout and tracebacks differ
between hosts and are not compared. A batch registered with validator="fuzzy" compares
floats (and complex numbers, also inside lists, tuples, dict values, record fields and
the elements of float and complex arrays of 2, 4 and 8-byte floats) with
math.isclose(rel_tol=rtol, abs_tol=atol); arrays of other dtypes (strings, datetimes,
long doubles) compare by their bytes. Batches nobody registered (remote submission) are
compared exactly. For a local master's batch, disagreements and rejected outputs are
appended to `validation.log` in its task directory, which get_status() reads.

Standard library only: it runs with the server's python3 and imports only the copies of
pyboinc/contract.py and registry.py that setup installs beside it.
"""

import math
import os
import sys

try:  # installed in the project's bin/, beside the copies setup puts there
    import pymw_contract as contract
    import pymw_registry as registry
except ImportError:  # imported as part of PyMW
    from pyboinc import contract
    from pymw.interfaces.boinc import registry

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_TRANSIENT = 3  # BOINC's VAL_RESULT_TRANSIENT_ERROR


class InvalidOutput(Exception):
    """An output that cannot be a PyMW result (undecodable, oversized, missing)."""


class Policy:
    """How a batch's results are compared, from its registry entry."""

    def __init__(self, entry):
        entry = entry or {}
        self.fuzzy = entry.get("compare") == registry.COMPARE_FUZZY
        self.rtol = float(entry.get("rtol", 0.0))
        self.atol = float(entry.get("atol", 0.0))
        self.max_nbytes = int(entry.get("max_nbytes", registry.DEFAULT_MAX_NBYTES))
        self.task_dir = entry.get("task_dir")

    def close(self, first, second):
        if math.isnan(first) or math.isnan(second):
            return math.isnan(first) and math.isnan(second)
        if self.fuzzy:
            return math.isclose(first, second, rel_tol=self.rtol, abs_tol=self.atol)
        return first == second


def same(first, second, policy):
    """Equal decoded values of the same types; floats as the policy says."""
    if type(first) is not type(second):
        return False
    if isinstance(first, contract.Record):
        return (first.kind, first.key) == (second.kind, second.key) and same(
            first.fields, second.fields, policy
        )
    if isinstance(first, contract.Array):
        return same_array(first, second, policy)
    if isinstance(first, float):
        return policy.close(first, second)
    if isinstance(first, complex):
        return policy.close(first.real, second.real) and policy.close(first.imag, second.imag)
    if isinstance(first, (list, tuple)):
        pairs = zip(first, second, strict=True) if len(first) == len(second) else None
        return pairs is not None and all(same(a, b, policy) for a, b in pairs)
    if isinstance(first, dict):
        return first.keys() == second.keys() and all(
            same(value, second[key], policy) for key, value in first.items()
        )
    return first == second  # None, bool, int, str, bytes, set, frozenset, datetimes...


def same_array(first, second, policy):
    """Same dtype text and shape; numbers element by element, other elements by bytes."""
    if (first.dtype, first.shape, first.scalar) != (second.dtype, second.shape, second.scalar):
        return False
    if first.data == second.data:
        return True
    numbers = first.values()  # None for dtypes whose elements are not Python numbers
    return numbers is not None and same(numbers, second.values(), policy)


def agree(first, second, policy):
    if first.ok != second.ok:
        return False
    if first.ok:
        try:
            return same(first.value, second.value, policy)
        except RecursionError:  # nested deeper than any honest result: no agreement
            return False
    return (first.error_type, first.error_message) == (second.error_type, second.error_message)


def load(path, max_nbytes):
    """Decode an output with the contract's safe codec; InvalidOutput if it is not one."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_nbytes + 1)
    except FileNotFoundError:
        raise InvalidOutput("no such file") from None
    if len(data) > max_nbytes:
        raise InvalidOutput(f"over the batch's max_nbytes {max_nbytes}")
    try:
        return contract.decode_output(data, classes=contract.STRUCTURAL)
    except contract.ContractError as error:
        raise InvalidOutput(str(error)) from None


def policy_for(path):
    """The registered policy of the batch an output belongs to (defaults if none)."""
    match = registry.RESULT_FILE.match(os.path.basename(path))
    if match is None:
        return Policy(None), None
    entry = registry.read_entry(registry.project_dir_of_script(__file__), match["batch"])
    return Policy(entry), match["wu"]


def record(policy, kind, wu_name, detail):
    """Append `<kind> <wu name> <detail>` to the batch's validation log, if it has one."""
    detail = " ".join(detail.split())  # one line, whatever a hostile output made of it
    print(f"pymw_validator: {kind} {wu_name}: {detail}", file=sys.stderr)
    if not policy.task_dir or wu_name is None:
        return
    try:
        with open(os.path.join(policy.task_dir, registry.VALIDATION_LOG), "a") as log:
            log.write(f"{kind} {wu_name} {detail}\n")
    except OSError as error:  # the verdict stands without its note
        print(f"pymw_validator: cannot write the validation log: {error}", file=sys.stderr)


def main(argv):
    if len(argv) not in (1, 2):
        print(f"pymw_validator: expected 1 or 2 output files, got {argv}", file=sys.stderr)
        return EXIT_INVALID
    policy, wu_name = policy_for(argv[0])
    outcomes = []
    for path in argv:
        try:
            outcomes.append(load(path, policy.max_nbytes))
        except InvalidOutput as error:
            record(policy, "rejected", wu_name, f"{os.path.basename(path)}: {error}")
            return EXIT_INVALID
        except OSError as error:  # unreadable now (permissions, I/O): BOINC asks again
            print(f"pymw_validator: {path}: {error}", file=sys.stderr)
            return EXIT_TRANSIENT
    if len(outcomes) == 1 or agree(outcomes[0], outcomes[1], policy):
        return EXIT_VALID
    record(policy, "disagreed", wu_name, " ".join(os.path.basename(p) for p in argv))
    return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
