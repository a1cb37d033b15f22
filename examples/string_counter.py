#!/usr/bin/env python3
"""Count how often each letter appears in text files sent to workers with `data_files`.

    python examples/string_counter.py [FILE ...]     (default: this example's own source)

Every task gets the same files unpacked in its working directory and counts one letter.
"""

import string
import sys
import time
from pathlib import Path

from pymw import interfaces, pymw


def count_letter(letter, file_names):
    count = 0
    for name in file_names:
        with open(name, encoding="utf-8", errors="replace") as handle:
            count += handle.read().lower().count(letter)
    return letter, count


def main():
    parser = interfaces.ArgumentParser(description=__doc__.splitlines()[0])
    options, files = interfaces.parse_options(parser)
    paths = [Path(name) for name in files] or [Path(__file__)]
    for path in paths:
        if not path.is_file():
            sys.exit(f"{parser.prog}: error: {path} is not a file")
    names = tuple(path.name for path in paths)
    interface = interfaces.get_interface(options)

    start = time.time()
    with pymw.PyMW_Master(interface=interface) as master:
        for letter in string.ascii_lowercase:
            master.submit_task(count_letter, input_data=(letter, names), data_files=paths)
        counts = dict(master.get_result()[1] for _ in string.ascii_lowercase)
    for letter, count in sorted(counts.items(), key=lambda item: -item[1])[:10]:
        print(f"{letter}: {count}")
    print(f"26 tasks over {len(paths)} file(s) in {time.time() - start:.2f} s")


if __name__ == "__main__":
    main()
